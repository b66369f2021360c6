// The stock driver behind the host, for every DS_MAD no plugin serves:
// starts it (settings.fallback, with the host's -t/-d/-s/-w unless extra
// arguments were given), forwards oned's lines to it unchanged, relays its
// replies and LOG lines to oned unchanged, and remembers which requests it has
// not answered yet, so that each gets a FAILURE when it exits first or the
// host is stopped (oned would otherwise keep their objects LOCKED).
#pragma once

#include "host/config.hpp"
#include "host/fallback_driver.hpp"
#include "host/line_writer.hpp"

#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>

namespace oneds::host {

class fallback_relay {
public:
    using pending = std::multiset<std::pair<std::string, std::int64_t>>;  // (ACTION, oned id)

    // Starts the fallback when s names one. A failure to start is logged and
    // kept (error()); the host still serves its plugins.
    fallback_relay(const settings &s, std::shared_ptr<spdlog::logger> log, line_writer &out);
    fallback_relay(const fallback_relay &) = delete;
    fallback_relay &operator=(const fallback_relay &) = delete;

    // Whether a fallback runs (was started and has not exited).
    [[nodiscard]] bool running() const;
    // Why the configured fallback could not start ("" when it did or none is configured).
    [[nodiscard]] const std::string &error() const noexcept { return error_; }

    // Forwards oned's line for (action, id). False when the fallback is gone:
    // nobody will answer, the caller must.
    bool forward(const std::string &action, std::int64_t id, const std::string &line);
    // FINALIZE to it, then killed at deadline. Idempotent.
    void finalize(std::chrono::steady_clock::time_point deadline);
    // What it still owes an answer to, handed over (and forgotten here).
    pending take_unanswered();

private:
    void on_line(const std::string &line);
    void on_exit();

    std::shared_ptr<spdlog::logger> log_;
    line_writer &out_;
    std::string error_;
    mutable std::mutex mutex_;  // guards forwarded_ and gone_; never held while writing to oned
    pending forwarded_;
    bool gone_ = true;
    std::unique_ptr<fallback_driver> driver_;  // last: its thread calls back into the above
};

}  // namespace oneds::host
