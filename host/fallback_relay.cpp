#include "host/fallback_relay.hpp"

#include "host/mad_protocol.hpp"

#include <charconv>

namespace oneds::host {
namespace {

// How long the stock driver may take to answer INIT (it is a Ruby program).
constexpr auto fallback_init_timeout = std::chrono::seconds(8);

std::vector<std::string> fallback_argv(const settings &s) {
    std::vector<std::string> argv = s.fallback;
    if (s.fallback_args_given) {
        argv.insert(argv.end(), s.fallback_args_extra.begin(), s.fallback_args_extra.end());
    } else if (argv.size() == 1) {
        // Default: the stock driver gets the same -t/-d/-s/-w as we did.
        argv.insert(argv.end(), {"-t", std::to_string(s.threads)});
        const auto joined = [](const std::vector<std::string> &v) {
            std::string out;
            for (const auto &n : v) out += (out.empty() ? "" : ",") + n;
            return out;
        };
        if (!s.drivers.empty()) argv.insert(argv.end(), {"-d", joined(s.drivers)});
        if (!s.system_tms.empty()) argv.insert(argv.end(), {"-s", joined(s.system_tms)});
        if (s.timeout_s > 0) argv.insert(argv.end(), {"-w", std::to_string(s.timeout_s)});
    }
    return argv;
}

}  // namespace

fallback_relay::fallback_relay(const settings &s, std::shared_ptr<spdlog::logger> log, line_writer &out)
    : log_(std::move(log)), out_(out) {
    if (s.fallback.empty()) return;
    const auto argv = fallback_argv(s);
    try {
        {
            const std::lock_guard lock(mutex_);
            gone_ = false;
        }
        driver_ = std::make_unique<fallback_driver>(
            argv, log_, [this](const std::string &line) { on_line(line); }, fallback_init_timeout,
            [this] { on_exit(); });
        log_->info("fallback driver '{}' started (pid {})", argv[0], driver_->pid());
    } catch (const std::exception &e) {
        const std::lock_guard lock(mutex_);
        gone_ = true;
        error_ = e.what();
        log_->error("{}", error_);
    }
}

bool fallback_relay::running() const {
    const std::lock_guard lock(mutex_);
    return driver_ != nullptr && !gone_;
}

bool fallback_relay::forward(const std::string &action, std::int64_t id, const std::string &line) {
    // Noted before it is sent, so that on_exit() answers it if the fallback
    // goes away first; not under the lock while writing (a full pipe must not
    // stop the relay thread, which takes the lock per reply).
    {
        const std::lock_guard lock(mutex_);
        if (driver_ == nullptr || gone_) return false;
        forwarded_.emplace(action, id);
    }
    if (driver_->forward(line)) return true;
    const std::lock_guard lock(mutex_);
    // Still noted: nobody answered it yet (else on_exit() did).
    if (auto it = forwarded_.find({action, id}); it != forwarded_.end()) {
        forwarded_.erase(it);
        return false;
    }
    return true;
}

void fallback_relay::finalize(std::chrono::steady_clock::time_point deadline) {
    if (driver_ != nullptr) driver_->finalize(deadline);
}

fallback_relay::pending fallback_relay::take_unanswered() {
    pending out;
    const std::lock_guard lock(mutex_);
    out.swap(forwarded_);
    gone_ = true;
    return out;
}

// "<ACTION> SUCCESS|FAILURE <id> ...": that request is answered. Everything
// goes to oned unchanged.
void fallback_relay::on_line(const std::string &line) {
    const auto first = line.find(' ');
    const auto second = first == std::string::npos ? std::string::npos : line.find(' ', first + 1);
    if (second != std::string::npos) {
        const std::string_view result(line.data() + first + 1, second - first - 1);
        const auto third = line.find(' ', second + 1);
        const std::string_view id_text(line.data() + second + 1,
                                       (third == std::string::npos ? line.size() : third) - second - 1);
        std::int64_t id = 0;
        if ((result == "SUCCESS" || result == "FAILURE") &&
            std::from_chars(id_text.data(), id_text.data() + id_text.size(), id).ec == std::errc{}) {
            const std::lock_guard lock(mutex_);
            if (auto it = forwarded_.find({line.substr(0, first), id}); it != forwarded_.end()) forwarded_.erase(it);
        }
    }
    out_.write_line(line);
}

void fallback_relay::on_exit() {
    const auto lost = take_unanswered();
    log_->error("fallback driver exited unexpectedly; {} request(s) it had not answered fail", lost.size());
    for (const auto &[action, id] : lost)
        out_.write_line(mad::reply_line(action, id, false,
                                        "Datastore driver not available: fallback driver exited before answering"));
}

}  // namespace oneds::host
