// MAD mode: oned's DATASTORE_MAD line protocol on stdin/stdout.
//
//   oned -> host:  INIT | FINALIZE | <ACTION>  <id> <base64 DS_DRIVER_ACTION_DATA>
//   host -> oned:  INIT SUCCESS | <ACTION> SUCCESS|FAILURE <id> <info> | LOG <E|W|I|D> <id> <text>
//
// Requests are routed by /DS_DRIVER_ACTION_DATA/DATASTORE/DS_MAD (TM_MAD for
// system datastores) to the plugin of that name, or to the fallback driver.
// At most settings.threads plugin requests run at once; the rest wait in FIFO
// order. Replies leave in completion order, each line in one write.
#pragma once

#include "config.hpp"
#include "fallback_driver.hpp"
#include "line_writer.hpp"
#include "loaded_plugin.hpp"

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

namespace oneds::host {

// SIGKILL to every descendant of this process (its children, theirs, ...),
// found by their parent pids; returns how many were signalled.
std::size_t kill_descendants();

class mad_server {
public:
    mad_server(settings s, std::shared_ptr<spdlog::logger> log, int in_fd, int out_fd);
    ~mad_server();
    mad_server(const mad_server &) = delete;
    mad_server &operator=(const mad_server &) = delete;

    // Serves until FINALIZE or EOF on in_fd; returns the process exit code.
    int run();

private:
    struct request {
        std::string action;       // as oned sent it, e.g. "MONITOR"
        std::string lower;        // "monitor"
        std::int64_t oned_id = 0;
        std::string document;
        std::string driver;
        loaded_plugin *plugin = nullptr;
        std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
        bool timed_out = false;
    };

    void load_plugins();
    void start_fallback();
    void handle_line(const std::string &line);
    void route(std::string action, std::int64_t oned_id, const std::string &payload, const std::string &line);
    void enqueue(request r);
    void pump();
    void submit_now(std::uint64_t id);
    void on_complete(std::uint64_t id, std::int32_t status, const char *info, const char *error);
    void on_log(std::uint64_t id, std::int32_t level, const char *text);
    void reply(const std::string &action, std::int64_t oned_id, bool success, const std::string &text);
    void watch_deadlines();
    void shut_down();
    // The last resort before oned's SIGKILL: every request still without a
    // reply (queued, running or forwarded to the fallback) gets FAILURE, every
    // process this host started (its descendants) gets SIGKILL, and the
    // process exits. Never returns.
    [[noreturn]] void cut_short();

    settings settings_;
    std::shared_ptr<spdlog::logger> log_;
    int in_fd_;
    line_writer out_;
    std::map<std::string, std::unique_ptr<loaded_plugin>> plugins_;
    std::map<std::string, std::string> plugin_errors_;  // name -> why it is not loaded
    std::unique_ptr<fallback_driver> fallback_;
    std::string fallback_error_;
    // Requests forwarded to the fallback and not yet answered by it, as
    // (ACTION, id): answered with a FAILURE if it exits first (oned would
    // otherwise keep their objects LOCKED).
    std::mutex fallback_mutex_;
    std::multiset<std::pair<std::string, std::int64_t>> forwarded_;
    bool fallback_gone_ = false;
    void fallback_replied(const std::string &line);
    void fallback_exited();

    std::mutex mutex_;
    std::condition_variable changed_;
    std::unordered_map<std::uint64_t, request> requests_;  // queued and running
    std::deque<std::uint64_t> queue_;
    std::size_t running_ = 0;
    std::uint64_t next_id_ = 1;
    bool stopping_ = false;
    std::atomic<bool> watcher_stop_{false};
};

}  // namespace oneds::host
