// The plugin requests of the MAD channel between oned's line and its reply:
// at most `threads` submitted to plugins at once (-t), the rest waiting in
// FIFO order; a deadline per running request (-w, 0 = none) after which it is
// cancelled, its FAILURE then starting "Timeout after N s: "; and exactly one
// reply each, in completion order. Thread-safe: requests come from the
// reading thread, completions from plugin threads, deadlines from a watcher.
#pragma once

#include "host/loaded_plugin.hpp"

#include <spdlog/logger.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace oneds::host {

class request_queue {
public:
    struct request {
        std::string action;  // as oned sent it, e.g. "MONITOR"
        std::string lower;   // "monitor", as plugins name actions
        std::int64_t oned_id = 0;
        std::string document;
        std::string driver;
        loaded_plugin *plugin = nullptr;
        std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
        bool timed_out = false;
    };
    // Writes a request's one reply to oned.
    using reply_fn =
        std::function<void(const std::string &action, std::int64_t oned_id, bool success, const std::string &text)>;

    request_queue(std::size_t threads, unsigned timeout_s, reply_fn reply, std::shared_ptr<spdlog::logger> log);
    ~request_queue();  // stops the deadline watcher
    request_queue(const request_queue &) = delete;
    request_queue &operator=(const request_queue &) = delete;

    // Queues r and submits what the limit allows. Ignored once stopped.
    void enqueue(request r);

    // The plugin's completion of host request id (from a plugin thread).
    void on_complete(std::uint64_t id, std::int32_t status, const char *info, const char *error);
    // oned's id for host request id (for its LOG lines), -1 when unknown.
    [[nodiscard]] std::int64_t oned_id_of(std::uint64_t id) const;

    // Shutdown, in this order: no more submissions, and the queued requests
    // handed back (not started); wait for the running ones until deadline;
    // cancel what still runs; take what still has no reply (the last resort).
    std::vector<request> stop();
    bool wait_idle_until(std::chrono::steady_clock::time_point deadline);
    void cancel_running();
    std::vector<request> take_unanswered();

private:
    void pump();
    void submit_now(std::uint64_t id);
    void watch_deadlines();

    const std::size_t threads_;
    const unsigned timeout_s_;
    reply_fn reply_;
    std::shared_ptr<spdlog::logger> log_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::unordered_map<std::uint64_t, request> requests_;  // queued and running
    std::deque<std::uint64_t> queue_;
    std::size_t running_ = 0;
    std::uint64_t next_id_ = 1;
    bool stopping_ = false;
    bool watcher_stop_ = false;
    std::thread watcher_;  // last: started once the rest exists
};

}  // namespace oneds::host
