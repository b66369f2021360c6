#include "host/fallback_driver.hpp"

#include "common/fd_io.hpp"

#include <cerrno>
#include <stdexcept>

#include <poll.h>
#include <unistd.h>

namespace oneds::host {

fallback_driver::fallback_driver(const std::vector<std::string> &argv, std::shared_ptr<spdlog::logger> log,
                                 line_handler on_line, std::chrono::milliseconds init_timeout, exit_handler on_exit)
    : log_(std::move(log)), on_line_(std::move(on_line)), on_exit_(std::move(on_exit)) {
    if (argv.empty()) throw std::runtime_error("fallback driver: empty command");
    common::child_spec spec;
    spec.argv = argv;
    spec.in = common::child_stream::pipe();
    spec.out = common::child_stream::pipe();
    // The driver keeps what exec leaves of the host's signal state (its mask,
    // SIGPIPE ignored), as the host got it from oned.
    spec.reset_signals = false;
    try {
        child_ = common::spawn(spec);
    } catch (const std::exception &e) {
        throw std::runtime_error(std::string("fallback driver: ") + e.what());
    }
    to_child_ = std::move(child_.stdin_pipe());
    from_child_ = std::move(child_.stdout_pipe());

    // Handshake, as oned does it: INIT, then wait for "INIT SUCCESS".
    const auto deadline = std::chrono::steady_clock::now() + init_timeout;
    std::string got;
    bool ok = common::write_all(to_child_.get(), "INIT\n");
    while (ok && got.find('\n') == std::string::npos) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ok = false;
            break;
        }
        pollfd p{from_child_.get(), POLLIN, 0};
        const int pr = ::poll(&p, 1, static_cast<int>(left.count()));
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) {
            ok = false;
            break;
        }
        char buf[512];
        const ssize_t n = ::read(from_child_.get(), buf, sizeof buf);
        if (n <= 0) {
            ok = false;
            break;
        }
        got.append(buf, static_cast<std::size_t>(n));
    }
    const auto nl = got.find('\n');
    const std::string first = nl == std::string::npos ? got : got.substr(0, nl);
    if (!ok || first.rfind("INIT SUCCESS", 0) != 0) {
        to_child_.reset();
        reap(std::chrono::steady_clock::now() + std::chrono::seconds(1));
        from_child_.reset();
        throw std::runtime_error("fallback driver '" + argv[0] + "' did not answer INIT with INIT SUCCESS" +
                                 (first.empty() ? std::string(" in time") : ": got '" + first + "'"));
    }
    pending_ = got.substr(nl + 1);
    reader_ = std::thread([this] { relay(); });
}

fallback_driver::~fallback_driver() { finalize(std::chrono::steady_clock::now() + std::chrono::seconds(2)); }

bool fallback_driver::forward(const std::string &line) {
    std::lock_guard lock(write_mutex_);
    if (!to_child_) return false;
    return common::write_all(to_child_.get(), line + "\n");
}

void fallback_driver::relay() {
    common::line_splitter lines;
    lines.append(pending_);
    for (;;) {
        while (auto line = lines.next())
            if (!line->empty()) on_line_(*line);
        // Poll so that finalize() can stop the relay even when a grandchild
        // still holds the pipe open.
        pollfd p{from_child_.get(), POLLIN, 0};
        const int pr = ::poll(&p, 1, 200);
        if (pr == 0 || (pr < 0 && errno == EINTR)) {
            if (stop_) break;
            continue;
        }
        if (pr < 0) break;
        char chunk[4096];
        const ssize_t n = ::read(from_child_.get(), chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        lines.append(std::string_view(chunk, static_cast<std::size_t>(n)));
    }
    if (auto rest = lines.take_rest(); !rest.empty()) on_line_(rest);
    if (!finalizing_ && on_exit_) on_exit_();
}

void fallback_driver::reap(std::chrono::steady_clock::time_point deadline) {
    if (child_.reaped()) return;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (child_.wait_for(std::max(left, std::chrono::milliseconds(0)))) return;
    log_->warn("fallback driver (pid {}) did not exit in time; killing it", child_.pid());
    child_.kill();
}

void fallback_driver::finalize(std::chrono::steady_clock::time_point deadline) {
    {
        std::lock_guard lock(write_mutex_);
        if (finalized_) return;
        finalized_ = true;
        finalizing_ = true;
        if (to_child_) common::write_all(to_child_.get(), "FINALIZE\n");
        to_child_.reset();
    }
    reap(deadline);
    stop_ = true;
    if (reader_.joinable()) reader_.join();
    from_child_.reset();
}

}  // namespace oneds::host
