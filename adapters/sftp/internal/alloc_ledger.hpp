// The memory libssh2 allocates for one session, tracked so that the session's
// end frees all of it. libssh2 frees an SFTP handle only when its close
// completes; neither libssh2_sftp_shutdown nor libssh2_session_free frees a
// handle still open. A request abandoned halfway (a stop, a deadline or a
// lost connection between the open and the close) leaves its handle, about
// 400 bytes, which a MAD-mode host running for months would otherwise lose
// each time. Internal to the sftp adapter.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_set>

namespace oneds::adapters::sftp::internal {

class alloc_ledger {
public:
    alloc_ledger() = default;
    alloc_ledger(const alloc_ledger &) = delete;
    alloc_ledger &operator=(const alloc_ledger &) = delete;
    ~alloc_ledger() { release_all(); }

    // libssh2_session_init_ex's allocator, reallocator and deallocator; the
    // session's abstract pointer is the ledger. A block that did not come
    // from the ledger is freed all the same.
    static void *allocate(std::size_t count, void **abstract) noexcept;
    static void *reallocate(void *block, std::size_t count, void **abstract) noexcept;
    static void deallocate(void *block, void **abstract) noexcept;

    // Frees every block still recorded. Only once libssh2 is done with the
    // session (after libssh2_session_free): no libssh2 object may point at
    // them any more.
    void release_all() noexcept;

    [[nodiscard]] std::size_t live_blocks() const;
    // Blocks release_all freed in this process, over all ledgers: what
    // libssh2 would have leaked (for the tests).
    [[nodiscard]] static std::uint64_t reclaimed_total() noexcept;

private:
    // Keyed by address as a number: a block's old address is looked up
    // after realloc has moved it.
    void record(std::uintptr_t block) noexcept;
    void forget(std::uintptr_t block) noexcept;

    mutable std::mutex mutex_;
    std::unordered_set<std::uintptr_t> blocks_;
    static std::atomic<std::uint64_t> reclaimed_;
};

}  // namespace oneds::adapters::sftp::internal
