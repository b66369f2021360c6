// alloc_ledger (adapters/sftp/internal/alloc_ledger.hpp): the allocator the
// SFTP adapter gives libssh2, which frees with the session what libssh2 left.
#define BOOST_TEST_MODULE sftp_alloc_ledger_test
#include <boost/test/unit_test.hpp>

#include "adapters/sftp/internal/alloc_ledger.hpp"

#include <cstring>

using oneds::adapters::sftp::internal::alloc_ledger;

namespace {
// What libssh2 passes: the address of the session's abstract pointer.
struct session_like {
    alloc_ledger ledger;
    void *abstract = &ledger;
};
}  // namespace

BOOST_AUTO_TEST_CASE(blocks_freed_by_libssh2_are_forgotten_and_the_rest_freed_with_the_session) {
    const auto before = alloc_ledger::reclaimed_total();
    {
        session_like s;
        void *a = alloc_ledger::allocate(100, &s.abstract);
        void *b = alloc_ledger::allocate(392, &s.abstract);
        BOOST_REQUIRE(a != nullptr);
        BOOST_REQUIRE(b != nullptr);
        std::memset(a, 1, 100);
        std::memset(b, 2, 392);
        BOOST_TEST(s.ledger.live_blocks() == 2U);
        alloc_ledger::deallocate(a, &s.abstract);
        BOOST_TEST(s.ledger.live_blocks() == 1U);
        // b is left, as a handle whose close never completed is.
    }
    // The session's end freed it (ASan would report it as leaked otherwise).
    BOOST_TEST(alloc_ledger::reclaimed_total() == before + 1);
}

BOOST_AUTO_TEST_CASE(a_moved_block_is_recorded_at_its_new_address) {
    session_like s;
    void *p = alloc_ledger::reallocate(nullptr, 16, &s.abstract);  // realloc(NULL) allocates
    BOOST_REQUIRE(p != nullptr);
    BOOST_TEST(s.ledger.live_blocks() == 1U);
    std::memset(p, 7, 16);
    void *q = alloc_ledger::reallocate(p, 1 << 20, &s.abstract);  // large enough to move
    BOOST_REQUIRE(q != nullptr);
    BOOST_TEST(static_cast<unsigned char *>(q)[15] == 7);
    BOOST_TEST(s.ledger.live_blocks() == 1U);
    alloc_ledger::deallocate(q, &s.abstract);
    BOOST_TEST(s.ledger.live_blocks() == 0U);
    // A size of 0 frees, and forgets, the block.
    void *r = alloc_ledger::allocate(8, &s.abstract);
    BOOST_TEST(alloc_ledger::reallocate(r, 0, &s.abstract) == nullptr);
    BOOST_TEST(s.ledger.live_blocks() == 0U);
}

BOOST_AUTO_TEST_CASE(release_all_frees_everything_once) {
    const auto before = alloc_ledger::reclaimed_total();
    session_like s;
    for (int i = 0; i < 50; ++i) BOOST_REQUIRE(alloc_ledger::allocate(64, &s.abstract) != nullptr);
    s.ledger.release_all();
    BOOST_TEST(s.ledger.live_blocks() == 0U);
    BOOST_TEST(alloc_ledger::reclaimed_total() == before + 50);
    s.ledger.release_all();  // nothing twice (ASan: no double free)
    BOOST_TEST(alloc_ledger::reclaimed_total() == before + 50);
}

BOOST_AUTO_TEST_CASE(a_block_from_elsewhere_is_freed_and_without_a_ledger_it_works_as_malloc) {
    session_like s;
    void *foreign = std::malloc(32);
    alloc_ledger::deallocate(foreign, &s.abstract);  // not recorded: freed all the same
    BOOST_TEST(s.ledger.live_blocks() == 0U);
    void *none = nullptr;
    void *p = alloc_ledger::allocate(10, &none);
    BOOST_REQUIRE(p != nullptr);
    alloc_ledger::deallocate(p, &none);
    alloc_ledger::deallocate(nullptr, &s.abstract);
}
