// Cancellation at the ports: C++20's std::stop_token. Every port call that
// can take long takes one; a default-constructed token never stops.
//
// Why the standard one: any number of std::stop_callback registrations may
// watch one token at once (several port calls of one request, the workers of
// a parallel pull), registration is RAII, and a callback's destructor waits
// for a callback that is running on another thread, so what it touches may
// live on the caller's stack.
//
// What is here: a cancellable sleep, a stop source linked to a parent token
// (a worker that can be stopped alone or with its request), one that stops
// by itself after a time (a clean-up that must run even after a cancel, within
// a budget), and parallel_for for bounded pools of workers.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

namespace oneds::ports {

// Sleeps up to d; returns false at once when token is (or gets) stopped,
// true after the full wait.
inline bool sleep_for(const std::stop_token &token, std::chrono::milliseconds d) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    cv.wait_for(lock, token, d, [] { return false; });  // returns the predicate: always false
    return !token.stop_requested();
}

// A stop source that also stops when parent stops: for one of several calls
// of a request that must be stoppable on its own.
class linked_stop_source {
public:
    explicit linked_stop_source(const std::stop_token &parent)
        : on_parent_(parent, [this] { source_.request_stop(); }) {}
    linked_stop_source(const linked_stop_source &) = delete;
    linked_stop_source &operator=(const linked_stop_source &) = delete;

    std::stop_token token() const noexcept { return source_.get_token(); }
    void request_stop() noexcept { source_.request_stop(); }
    bool stop_requested() const noexcept { return source_.stop_requested(); }

private:
    std::stop_source source_;  // before the callback, which may fire at once
    std::stop_callback<std::function<void()>> on_parent_;
};

// A stop source that stops by itself `limit` after it is made (or when
// parent, if given, stops). Its destructor ends the timer.
class deadline_stop_source {
public:
    explicit deadline_stop_source(std::chrono::milliseconds limit, const std::stop_token &parent = {})
        : linked_(parent), timer_([this, limit](std::stop_token done) {
              if (sleep_for(done, limit)) linked_.request_stop();
          }) {}
    deadline_stop_source(const deadline_stop_source &) = delete;
    deadline_stop_source &operator=(const deadline_stop_source &) = delete;
    ~deadline_stop_source() = default;  // jthread: stops and joins the timer

    std::stop_token token() const noexcept { return linked_.token(); }

private:
    linked_stop_source linked_;
    std::jthread timer_;  // last: starts once the rest exists
};

// Runs fn(i, token) for i in [0, n) on at most max_workers threads (the
// calling thread is not one of them). token stops when the caller's token
// stops or when fn threw for another index (the first exception is rethrown
// here after every worker has ended).
inline void parallel_for(std::size_t n, std::size_t max_workers, const std::stop_token &stop,
                         const std::function<void(std::size_t, std::stop_token)> &fn) {
    if (n == 0) return;
    linked_stop_source all(stop);
    std::atomic<std::size_t> next{0};
    std::mutex error_mutex;
    std::exception_ptr error;
    const std::size_t workers = std::clamp<std::size_t>(max_workers, 1, n);
    {
        std::vector<std::jthread> pool;
        pool.reserve(workers);
        for (std::size_t w = 0; w < workers; ++w)
            pool.emplace_back([&] {
                for (std::size_t i; (i = next++) < n;) {
                    try {
                        fn(i, all.token());
                    } catch (...) {
                        const std::lock_guard lock(error_mutex);
                        if (!error) error = std::current_exception();
                        all.request_stop();
                    }
                }
            });
    }  // joins
    if (error) std::rethrow_exception(error);
}

}  // namespace oneds::ports
