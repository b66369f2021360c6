#include "adapters/sftp/internal/alloc_ledger.hpp"

#include <cstdlib>

namespace oneds::adapters::sftp::internal {

std::atomic<std::uint64_t> alloc_ledger::reclaimed_{0};

namespace {
alloc_ledger *ledger_of(void **abstract) noexcept {
    return abstract != nullptr ? static_cast<alloc_ledger *>(*abstract) : nullptr;
}
// GCC 12 moves reallocate's read of the old address after the realloc, then
// warns (-Wuse-after-free) where this conversion is: only the number is
// used after it, never the block.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif
std::uintptr_t address(const void *block) noexcept { return reinterpret_cast<std::uintptr_t>(block); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
}  // namespace

void alloc_ledger::record(std::uintptr_t block) noexcept {
    try {
        const std::lock_guard lock(mutex_);
        blocks_.insert(block);
    } catch (...) {
        // Out of memory for the record: the block stays usable, only
        // untracked (freed by libssh2 as usual, or lost as before).
    }
}

void alloc_ledger::forget(std::uintptr_t block) noexcept {
    const std::lock_guard lock(mutex_);
    blocks_.erase(block);
}

void *alloc_ledger::allocate(std::size_t count, void **abstract) noexcept {
    void *block = std::malloc(count);
    if (block != nullptr)
        if (auto *l = ledger_of(abstract)) l->record(address(block));
    return block;
}

void *alloc_ledger::reallocate(void *block, std::size_t count, void **abstract) noexcept {
    if (count == 0) {  // glibc's realloc would free the block behind the record's back
        deallocate(block, abstract);
        return nullptr;
    }
    const std::uintptr_t old = address(block);
    void *moved = std::realloc(block, count);
    // A failed realloc leaves the old block as it was, and recorded.
    if (auto *l = ledger_of(abstract); l != nullptr && moved != nullptr && address(moved) != old) {
        if (old != 0) l->forget(old);
        l->record(address(moved));
    }
    return moved;
}

void alloc_ledger::deallocate(void *block, void **abstract) noexcept {
    if (block == nullptr) return;
    if (auto *l = ledger_of(abstract)) l->forget(address(block));
    std::free(block);
}

void alloc_ledger::release_all() noexcept {
    std::unordered_set<std::uintptr_t> left;
    {
        const std::lock_guard lock(mutex_);
        left.swap(blocks_);
    }
    for (const std::uintptr_t block : left) std::free(reinterpret_cast<void *>(block));
    reclaimed_.fetch_add(left.size(), std::memory_order_relaxed);
}

std::size_t alloc_ledger::live_blocks() const {
    const std::lock_guard lock(mutex_);
    return blocks_.size();
}

std::uint64_t alloc_ledger::reclaimed_total() noexcept { return reclaimed_.load(std::memory_order_relaxed); }

}  // namespace oneds::adapters::sftp::internal
