// The stock driver (one_datastore) run as a child: oned loads only one
// DATASTORE_MAD, so requests for datastores no plugin serves (fs, ceph, ...)
// are forwarded to it and its replies relayed to oned unchanged.
#pragma once

#include "common/child.hpp"
#include "common/unique_fd.hpp"

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace oneds::host {

class fallback_driver {
public:
    using line_handler = std::function<void(const std::string &)>;
    using exit_handler = std::function<void()>;

    // Starts argv (no shell; argv[0] is looked up in PATH), sends INIT and waits
    // up to init_timeout for "INIT SUCCESS". Throws std::runtime_error on any
    // failure (the child is then gone). Lines it writes after the handshake go
    // to on_line, from a thread of this object; when its output ends other than
    // through finalize() (it exited or crashed), on_exit runs on that thread.
    fallback_driver(const std::vector<std::string> &argv, std::shared_ptr<spdlog::logger> log, line_handler on_line,
                    std::chrono::milliseconds init_timeout, exit_handler on_exit = {});
    ~fallback_driver();
    fallback_driver(const fallback_driver &) = delete;
    fallback_driver &operator=(const fallback_driver &) = delete;

    // Sends one request line as oned sent it. False when the child is gone.
    bool forward(const std::string &line);
    // Sends FINALIZE, closes its stdin, waits until deadline for it to exit,
    // then kills it. Idempotent.
    void finalize(std::chrono::steady_clock::time_point deadline);

    pid_t pid() const noexcept { return child_.pid(); }

private:
    void relay();
    void reap(std::chrono::steady_clock::time_point deadline);

    std::shared_ptr<spdlog::logger> log_;
    line_handler on_line_;
    exit_handler on_exit_;
    std::atomic<bool> finalizing_{false};
    common::child child_;
    common::unique_fd to_child_;
    common::unique_fd from_child_;
    std::string pending_;  // bytes read past the INIT reply
    std::mutex write_mutex_;
    std::thread reader_;
    bool finalized_ = false;
    std::atomic<bool> stop_{false};
};

}  // namespace oneds::host
