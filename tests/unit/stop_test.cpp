#define BOOST_TEST_MODULE stop
// ports/stop.hpp: the cancellation helpers every port call and action uses.
#include "plugin/ports/stop.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

using namespace std::chrono_literals;
using oneds::ports::deadline_stop_source;
using oneds::ports::linked_stop_source;
using oneds::ports::parallel_for;
using oneds::ports::sleep_for;

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

BOOST_AUTO_TEST_SUITE(stop_helpers)

BOOST_AUTO_TEST_CASE(sleep_for_waits_the_full_time_unless_stopped) {
    auto t0 = std::chrono::steady_clock::now();
    BOOST_TEST(sleep_for({}, 30ms));
    BOOST_TEST(seconds_since(t0) >= 0.029);

    std::stop_source source;
    std::jthread stopper([&] {
        std::this_thread::sleep_for(50ms);
        source.request_stop();
    });
    t0 = std::chrono::steady_clock::now();
    BOOST_TEST(!sleep_for(source.get_token(), 60s));
    BOOST_TEST(seconds_since(t0) < 10.0);
    BOOST_TEST(!sleep_for(source.get_token(), 60s));  // already stopped: at once
}

BOOST_AUTO_TEST_CASE(a_linked_source_stops_with_its_parent_or_alone) {
    std::stop_source parent;
    linked_stop_source a(parent.get_token()), b(parent.get_token());
    a.request_stop();
    BOOST_TEST(a.token().stop_requested());
    BOOST_TEST(!b.token().stop_requested());
    BOOST_TEST(!parent.stop_requested());
    parent.request_stop();
    BOOST_TEST(b.token().stop_requested());
    // Made from a parent that has stopped already: stopped at once.
    linked_stop_source late(parent.get_token());
    BOOST_TEST(late.stop_requested());
}

BOOST_AUTO_TEST_CASE(a_deadline_source_stops_by_itself_and_with_its_parent) {
    const auto t0 = std::chrono::steady_clock::now();
    {
        const deadline_stop_source d(50ms);
        BOOST_TEST(!d.token().stop_requested());
        BOOST_TEST(!sleep_for(d.token(), 60s));
    }
    BOOST_TEST(seconds_since(t0) < 10.0);
    std::stop_source parent;
    const deadline_stop_source d(1h, parent.get_token());
    parent.request_stop();
    BOOST_TEST(d.token().stop_requested());
    // Destroying one whose time has not come ends its timer at once.
    const auto t1 = std::chrono::steady_clock::now();
    { const deadline_stop_source unused(1h); }
    BOOST_TEST(seconds_since(t1) < 10.0);
}

BOOST_AUTO_TEST_CASE(parallel_for_runs_every_index_once_within_the_bound) {
    std::mutex m;
    std::multiset<std::size_t> seen;
    std::atomic<int> running{0}, peak{0};
    parallel_for(20, 3, {}, [&](std::size_t i, const std::stop_token &) {
        const int now = ++running;
        for (int p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {}
        std::this_thread::sleep_for(5ms);
        --running;
        const std::lock_guard lock(m);
        seen.insert(i);
    });
    BOOST_TEST(seen.size() == 20U);
    for (std::size_t i = 0; i < 20; ++i) BOOST_TEST(seen.count(i) == 1U);
    BOOST_TEST(peak.load() <= 3);
    BOOST_TEST(peak.load() >= 2);
}

BOOST_AUTO_TEST_CASE(parallel_for_passes_the_callers_stop_and_rethrows_the_first_error) {
    std::stop_source caller;
    std::atomic<int> stopped_seen{0};
    parallel_for(4, 4, caller.get_token(), [&](std::size_t i, const std::stop_token &stop) {
        if (i == 0) caller.request_stop();
        if (!sleep_for(stop, 60s)) ++stopped_seen;
    });
    BOOST_TEST(stopped_seen.load() == 4);

    std::atomic<int> others_stopped{0};
    BOOST_CHECK_THROW(parallel_for(3, 3, {},
                                   [&](std::size_t i, const std::stop_token &stop) {
                                       if (i == 1) throw std::runtime_error("boom");
                                       if (!sleep_for(stop, 60s)) ++others_stopped;
                                   }),
                      std::runtime_error);
    BOOST_TEST(others_stopped.load() == 2);
    parallel_for(0, 4, {}, [](std::size_t, const std::stop_token &) { BOOST_FAIL("no index to run"); });
}

BOOST_AUTO_TEST_SUITE_END()
