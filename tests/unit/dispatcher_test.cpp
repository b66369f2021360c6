// Specification of the request runtime (plugin/runtime/dispatcher.hpp): exactly
// one completion per accepted request, whatever happens to it.
#define BOOST_TEST_MODULE dispatcher
#include <boost/test/unit_test.hpp>

#include "plugin/runtime/dispatcher.hpp"
#include "tests/unit/recording_host.hpp"

#include <atomic>
#include <chrono>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using oneds::runtime::dispatcher;
using oneds::runtime::outcome;
using oneds::runtime::request_context;
using oneds::test::recording_host;

// Long enough that a test only finishes in time if cancellation works, short
// enough that a broken build fails instead of hanging until the ctest timeout.
constexpr auto k_forever = 10s;
constexpr auto k_wait = 5s;
constexpr auto k_prompt = 3s;

oneds::sdk::request make_request(std::uint64_t id, std::string action = "work") {
    oneds::sdk::request r;
    r.id = id;
    r.action = std::move(action);
    return r;
}

// A handler that parks until its request is cancelled, then fails (as real
// work does when its child process is killed).
outcome park_until_cancelled(request_context &ctx) {
    ctx.sleep_for(k_forever);
    return outcome::fail("interrupted");
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(dispatcher_spec)

BOOST_AUTO_TEST_CASE(every_started_request_completes_exactly_once_under_concurrent_load) {
    constexpr int k_threads = 4;
    constexpr int k_per_thread = 50;
    constexpr std::uint64_t k_total = k_threads * k_per_thread;
    recording_host host;
    std::atomic<int> refused{0};
    {
        dispatcher d(host.link(), 8);
        std::vector<std::thread> submitters;
        for (int t = 0; t < k_threads; ++t)
            submitters.emplace_back([&, t] {
                for (int i = 0; i < k_per_thread; ++i) {
                    const std::uint64_t id = 1 + static_cast<std::uint64_t>(t * k_per_thread + i);
                    const auto rc = d.start(make_request(id), [](request_context &ctx) {
                        // Some requests take a while so cancels and completions
                        // interleave with other threads' starts.
                        if (ctx.id() % 7 == 0) ctx.sleep_for(2ms);
                        return outcome::ok(std::to_string(ctx.id()));
                    });
                    if (rc != ONEDS_OK) ++refused;
                    // Cancel some, racing with their completion: still one each.
                    if (i % 5 == 0) d.cancel(id);
                }
            });
        for (auto &s : submitters) s.join();
        BOOST_TEST(host.wait_for_count(k_total, k_wait));
    }
    BOOST_TEST(refused.load() == 0);
    BOOST_TEST(host.completions().size() == k_total);
    for (std::uint64_t id = 1; id <= k_total; ++id) {
        const auto got = host.completions_of(id);
        BOOST_TEST_REQUIRE(got.size() == 1u, "request " << id << " completed " << got.size() << " times");
        BOOST_TEST((got[0].status == ONEDS_OK || got[0].status == ONEDS_ERR_CANCELLED));
        if (got[0].status == ONEDS_OK) BOOST_TEST(got[0].info == std::to_string(id));
    }
}

BOOST_AUTO_TEST_CASE(a_duplicate_id_in_flight_is_refused_as_invalid) {
    recording_host host;
    dispatcher d(host.link(), 2);
    std::latch started(1);
    BOOST_TEST_REQUIRE(d.start(make_request(7), [&](request_context &ctx) {
        started.count_down();
        return park_until_cancelled(ctx);
    }) == ONEDS_OK);
    started.wait();

    std::atomic<bool> duplicate_ran{false};
    BOOST_TEST(d.start(make_request(7), [&](request_context &) {
        duplicate_ran = true;
        return outcome::ok();
    }) == ONEDS_ERR_INVALID);

    BOOST_TEST(d.cancel(7) == ONEDS_OK);
    BOOST_TEST(host.wait_for(7, k_wait).has_value());
    d.shutdown();
    BOOST_TEST(!duplicate_ran.load());
    BOOST_TEST(host.completions_of(7).size() == 1u);
}

BOOST_AUTO_TEST_CASE(cancel_stops_the_token_runs_its_callbacks_and_wakes_sleep_for_with_false) {
    recording_host host;
    dispatcher d(host.link(), 2);
    std::latch started(1), checked(1);
    std::atomic<int> hook_runs{0};
    std::atomic<int> slept_fully{-1};
    BOOST_TEST_REQUIRE(d.start(make_request(1), [&](request_context &ctx) {
        // Two port calls watching one request at once: both hear the cancel.
        // (They stay registered until the test has looked: a callback that is
        // destroyed before the cancel reaches it rightly never runs.)
        const std::stop_callback first(ctx.stop_token(), [&] { ++hook_runs; });
        const std::stop_callback second(ctx.stop_token(), [&] { ++hook_runs; });
        started.count_down();
        slept_fully = ctx.sleep_for(k_forever) ? 1 : 0;
        checked.wait();
        return outcome::fail("child killed");
    }) == ONEDS_OK);
    started.wait();

    const auto t0 = std::chrono::steady_clock::now();
    BOOST_TEST(d.cancel(1) == ONEDS_OK);
    // request_stop() runs every registered callback before it returns.
    BOOST_TEST(hook_runs.load() == 2);
    checked.count_down();
    const auto c = host.wait_for(1, k_wait);
    BOOST_TEST(seconds_since(t0) < std::chrono::duration<double>(k_prompt).count());
    BOOST_TEST_REQUIRE(c.has_value());
    BOOST_TEST(c->status == ONEDS_ERR_CANCELLED);
    BOOST_TEST(slept_fully.load() == 0);
}

BOOST_AUTO_TEST_CASE(sleep_for_returns_true_after_the_full_wait_when_not_cancelled) {
    recording_host host;
    request_context ctx(make_request(1), host.link());
    const auto t0 = std::chrono::steady_clock::now();
    BOOST_TEST(ctx.sleep_for(30ms));
    BOOST_TEST(seconds_since(t0) >= 0.029);
}

BOOST_AUTO_TEST_CASE(sleep_for_after_cancellation_returns_false_at_once) {
    recording_host host;
    request_context ctx(make_request(1), host.link());
    ctx.request_cancel();
    const auto t0 = std::chrono::steady_clock::now();
    BOOST_TEST(!ctx.sleep_for(k_forever));
    BOOST_TEST(seconds_since(t0) < 1.0);
    BOOST_TEST(ctx.cancelled());
}

BOOST_AUTO_TEST_CASE(a_callback_registered_after_cancellation_runs_at_once) {
    recording_host host;
    request_context ctx(make_request(1), host.link());
    ctx.request_cancel();
    int runs = 0;
    const std::stop_callback cb(ctx.stop_token(), [&] { ++runs; });
    BOOST_TEST(runs == 1);
}

BOOST_AUTO_TEST_CASE(a_callback_runs_once_however_often_cancel_is_requested) {
    recording_host host;
    request_context ctx(make_request(1), host.link());
    int runs = 0;
    const std::stop_callback cb(ctx.stop_token(), [&] { ++runs; });
    ctx.request_cancel();
    ctx.request_cancel();
    BOOST_TEST(runs == 1);
}

BOOST_AUTO_TEST_CASE(a_callback_that_is_gone_does_not_run) {
    recording_host host;
    request_context ctx(make_request(1), host.link());
    int runs = 0;
    {
        const std::stop_callback cb(ctx.stop_token(), [&] { ++runs; });
    }
    ctx.request_cancel();
    BOOST_TEST(runs == 0);
    BOOST_TEST(ctx.cancelled());
}

BOOST_AUTO_TEST_CASE(a_handler_that_throws_completes_with_internal_and_the_what_text) {
    recording_host host;
    dispatcher d(host.link(), 1);
    BOOST_TEST_REQUIRE(d.start(make_request(3), [](request_context &) -> outcome {
        throw std::runtime_error("restic vanished");
    }) == ONEDS_OK);
    const auto c = host.wait_for(3, k_wait);
    BOOST_TEST_REQUIRE(c.has_value());
    BOOST_TEST(c->status == ONEDS_ERR_INTERNAL);
    BOOST_TEST(c->error == "restic vanished");
}

BOOST_AUTO_TEST_CASE(a_handler_that_throws_a_non_exception_completes_with_internal) {
    recording_host host;
    dispatcher d(host.link(), 1);
    BOOST_TEST_REQUIRE(d.start(make_request(3), [](request_context &) -> outcome { throw 42; }) == ONEDS_OK);
    const auto c = host.wait_for(3, k_wait);
    BOOST_TEST_REQUIRE(c.has_value());
    BOOST_TEST(c->status == ONEDS_ERR_INTERNAL);
    BOOST_TEST(!c->error.empty());
}

BOOST_AUTO_TEST_CASE(a_failed_outcome_of_a_cancelled_request_is_reported_as_cancelled) {
    recording_host host;
    dispatcher d(host.link(), 1);
    std::latch started(1);
    BOOST_TEST_REQUIRE(d.start(make_request(4), [&](request_context &ctx) {
        started.count_down();
        ctx.sleep_for(k_forever);
        // What a handler sees when its child dies of the cancel hook's SIGTERM.
        return outcome::fail("restic exited with signal 15", ONEDS_ERR_FAILED);
    }) == ONEDS_OK);
    started.wait();
    BOOST_TEST(d.cancel(4) == ONEDS_OK);
    const auto c = host.wait_for(4, k_wait);
    BOOST_TEST_REQUIRE(c.has_value());
    BOOST_TEST(c->status == ONEDS_ERR_CANCELLED);
    BOOST_TEST(c->error == "restic exited with signal 15");
}

BOOST_AUTO_TEST_CASE(a_successful_outcome_of_a_cancelled_request_is_reported_as_success) {
    // plugin.h: after cancel the completion carries the real outcome when the
    // work finished meanwhile.
    recording_host host;
    dispatcher d(host.link(), 1);
    std::latch started(1);
    BOOST_TEST_REQUIRE(d.start(make_request(5), [&](request_context &ctx) {
        started.count_down();
        // Work that does not look at cancellation until it is done.
        while (!ctx.cancelled()) std::this_thread::sleep_for(1ms);
        return outcome::ok("finished anyway");
    }) == ONEDS_OK);
    started.wait();
    BOOST_TEST(d.cancel(5) == ONEDS_OK);
    const auto c = host.wait_for(5, k_wait);
    BOOST_TEST_REQUIRE(c.has_value());
    BOOST_TEST(c->status == ONEDS_OK);
    BOOST_TEST(c->info == "finished anyway");
}

BOOST_AUTO_TEST_CASE(a_request_cancelled_before_it_starts_completes_as_cancelled_without_running) {
    recording_host host;
    dispatcher d(host.link(), 1);
    std::latch started(1);
    BOOST_TEST_REQUIRE(d.start(make_request(1), [&](request_context &ctx) {
        started.count_down();
        return park_until_cancelled(ctx);
    }) == ONEDS_OK);
    started.wait();  // the only pool thread is busy, so request 2 stays queued
    std::atomic<bool> queued_ran{false};
    BOOST_TEST_REQUIRE(d.start(make_request(2), [&](request_context &) {
        queued_ran = true;
        return outcome::ok();
    }) == ONEDS_OK);
    BOOST_TEST(d.cancel(2) == ONEDS_OK);
    BOOST_TEST(d.cancel(1) == ONEDS_OK);
    const auto c = host.wait_for(2, k_wait);
    BOOST_TEST_REQUIRE(c.has_value());
    BOOST_TEST(c->status == ONEDS_ERR_CANCELLED);
    BOOST_TEST(!queued_ran.load());
}

BOOST_AUTO_TEST_CASE(cancel_of_an_unknown_id_is_not_found) {
    recording_host host;
    dispatcher d(host.link(), 1);
    BOOST_TEST(d.cancel(99) == ONEDS_ERR_NOT_FOUND);
    d.shutdown();
    BOOST_TEST(host.completions().empty());
}

BOOST_AUTO_TEST_CASE(shutdown_cancels_in_flight_requests_and_waits_for_their_completions) {
    constexpr int k_running = 3;
    constexpr int k_queued = 2;
    recording_host host;
    dispatcher d(host.link(), k_running);
    std::latch started(k_running);
    std::atomic<int> runs{0};
    for (int i = 1; i <= k_running + k_queued; ++i)
        BOOST_TEST_REQUIRE(d.start(make_request(static_cast<std::uint64_t>(i)), [&](request_context &ctx) {
            ++runs;
            started.count_down();
            ctx.sleep_for(k_forever);
            // Cleanup after the cancel that shutdown must wait for.
            std::this_thread::sleep_for(50ms);
            return outcome::fail("interrupted");
        }) == ONEDS_OK);
    started.wait();

    const auto t0 = std::chrono::steady_clock::now();
    d.shutdown();
    BOOST_TEST(seconds_since(t0) < std::chrono::duration<double>(k_prompt).count());
    // No waiting: every completion must already have been delivered.
    const auto all = host.completions();
    BOOST_TEST_REQUIRE(all.size() == static_cast<std::size_t>(k_running + k_queued));
    for (const auto &c : all) BOOST_TEST(c.status == ONEDS_ERR_CANCELLED);
    BOOST_TEST(runs.load() == k_running);
}

BOOST_AUTO_TEST_CASE(start_after_shutdown_is_refused_as_shutting_down) {
    recording_host host;
    dispatcher d(host.link(), 1);
    d.shutdown();
    std::atomic<bool> ran{false};
    BOOST_TEST(d.start(make_request(1), [&](request_context &) {
        ran = true;
        return outcome::ok();
    }) == ONEDS_ERR_SHUTTING_DOWN);
    BOOST_TEST(d.cancel(1) == ONEDS_ERR_NOT_FOUND);
    d.shutdown();  // idempotent, as the destructor calls it again
    BOOST_TEST(!ran.load());
    BOOST_TEST(host.completions().empty());
}

BOOST_AUTO_TEST_CASE(a_handler_logs_to_the_host_under_its_request_id) {
    recording_host host;
    dispatcher d(host.link(), 1);
    BOOST_TEST_REQUIRE(d.start(make_request(8), [](request_context &ctx) {
        ctx.log(ONEDS_LOG_INFO, "progress 1/1");
        return outcome::ok();
    }) == ONEDS_OK);
    BOOST_TEST_REQUIRE(host.wait_for(8, k_wait).has_value());
    const auto logs = host.logs();
    BOOST_TEST_REQUIRE(logs.size() == 1u);
    BOOST_TEST(logs[0].id == 8u);
    BOOST_TEST(logs[0].level == ONEDS_LOG_INFO);
    BOOST_TEST(logs[0].text == "progress 1/1");
}

BOOST_AUTO_TEST_SUITE_END()
