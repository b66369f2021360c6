// Checking a store's capacity() against the filesystem's own figures while
// other processes write to the same filesystem (the local and SFTP stores'
// tests). Boost.Test programs only.
#pragma once

#include <boost/test/unit_test.hpp>

#include <sys/statvfs.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <thread>

namespace oneds::test {

// statvfs(2) of a path in bytes, as a store's capacity() reports it: used is
// what the filesystem holds (blocks - bfree), free what an unprivileged user
// may still write (bavail), so used + free may be less than total.
struct statvfs_numbers {
    std::uint64_t total = 0;
    std::uint64_t free = 0;
    std::uint64_t used = 0;
    bool operator==(const statvfs_numbers &) const = default;
};

inline statvfs_numbers statvfs_of(const std::filesystem::path &path) {
    struct statvfs st {};
    BOOST_REQUIRE(::statvfs(path.c_str(), &st) == 0);
    const std::uint64_t unit = st.f_frsize;
    return {st.f_blocks * unit, st.f_bavail * unit, (st.f_blocks - st.f_bfree) * unit};
}

// Other processes write to the filesystem a test measures, so a store's figure
// can only be compared with a measurement taken at the same moment: this calls
// measure(), observe() (the store's call) and measure() again, up to 50 times
// 20 ms apart, until both measurements agree; then check(observed, measured)
// and true. False when the filesystem never held still: the caller fails the
// test with that.
template <typename Measure, typename Observe, typename Check>
bool check_while_still(Measure measure, Observe observe, Check check) {
    for (int attempt = 0; attempt < 50; ++attempt) {
        const auto before = measure();
        auto observed = observe();
        const auto after = measure();
        if (!(before == after)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;
        }
        check(observed, before);
        return true;
    }
    return false;
}

// A store's capacity() against statvfs(2) of the same path, by
// check_while_still: total, free and used must be statvfs's figures. capacity
// calls the store and returns its result, after BOOST_REQUIRE that it has a
// value.
template <typename Capacity>
void check_capacity_equals_statvfs(const std::filesystem::path &path, Capacity capacity) {
    const auto equals_statvfs = [](const auto &reported, const statvfs_numbers &fs_says) {
        BOOST_TEST(reported->total_bytes == fs_says.total);
        BOOST_TEST(reported->free_bytes == fs_says.free);
        BOOST_TEST(reported->used_bytes == fs_says.used);
    };
    const bool compared = check_while_still([&] { return statvfs_of(path); }, capacity, equals_statvfs);
    BOOST_TEST(compared, "the filesystem never held still for two statvfs calls");
}

}  // namespace oneds::test
