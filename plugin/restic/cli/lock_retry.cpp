#include "plugin/restic/cli/lock_retry.hpp"

#include "plugin/ports/stop.hpp"

#include <set>

namespace oneds::restic {

std::string redact(std::string text, const std::string &secret) {
    if (secret.empty()) return text;
    for (std::size_t pos = 0; (pos = text.find(secret, pos)) != std::string::npos;) {
        text.replace(pos, secret.size(), "[REDACTED]");
        pos += 10;
    }
    return text;
}

namespace {
std::string seconds_text(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
    return std::to_string(d.count()) + " ms";
}
}  // namespace

ports::result<ports::command_result> lock_retrying_runner::run(const std::string &host, const ports::command &cmd,
                                                               const ports::run_options &opts) {
    attempts_ = 0;
    std::set<std::string> inspected;  // holders already looked at
    const std::string what = s_.what.empty() ? std::string("restic") : s_.what;
    for (;;) {
        ++attempts_;
        auto res = inner_.run(host, cmd, opts);
        if (!res || res->cancelled || opts.stop.stop_requested()) return res;
        const exit_info exit = classify_exit(res->exit_code, redact(res->stderr_text, s_.secret));
        if (exit.kind != exit_kind::locked || attempts_ > s_.policy.retries) return res;

        const lock_holder holder = exit.lock ? *exit.lock : lock_holder{};
        lock_check check;
        if (s_.inspect && !holder.pid.empty() &&
            inspected.insert(holder.pid + "@" + holder.host + "@" + holder.created_at).second)
            check = s_.inspect(holder, opts.stop);
        if (opts.stop.stop_requested()) {
            res->cancelled = true;
            return res;
        }
        if (check.result == lock_check::verdict::removed) {
            if (s_.log) s_.log('I', what + ": removed the stale lock of " + holder.describe() + ": " + check.detail);
            continue;
        }
        if (s_.log)
            s_.log('I', what + ": repository is locked by " + holder.describe() +
                            (check.detail.empty() ? std::string() : " (" + check.detail + ")") + "; retry " +
                            std::to_string(attempts_) + "/" + std::to_string(s_.policy.retries) + " in " +
                            seconds_text(s_.policy.interval));
        if (!ports::sleep_for(opts.stop, s_.policy.interval)) {
            res->cancelled = true;
            return res;
        }
    }
}

}  // namespace oneds::restic
