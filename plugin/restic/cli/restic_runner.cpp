#include "plugin/restic/cli/restic_runner.hpp"

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

std::string failure_text(const restic_outcome &o) {
    std::string why = o.exit.message;
    switch (o.exit.kind) {
        case exit_kind::partial:
            return "some files could not be read (restic exit 3)" + (why.empty() ? std::string() : ": " + why);
        case exit_kind::locked:
            return "repository still locked by " +
                   (o.exit.lock ? o.exit.lock->describe() : std::string("another restic")) + " after " +
                   std::to_string(o.attempts) + " attempt" + (o.attempts == 1 ? "" : "s");
        case exit_kind::interrupted: return why.empty() ? std::string("restic was interrupted") : why;
        default: break;
    }
    const auto kind = exit_kind_text(o.exit.kind);
    if (why.empty()) why = "restic exited with status " + std::to_string(o.raw.exit_code);
    if (kind.empty() || o.exit.kind == exit_kind::repo_missing || o.exit.kind == exit_kind::wrong_password) return why;
    return std::string(kind) + ": " + why;
}

namespace {
std::string seconds_text(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
    return std::to_string(d.count()) + " ms";
}
}  // namespace

restic_runner::restic_runner(ports::process_runner &runner, lock_policy locks, std::chrono::milliseconds kill_grace,
                             log_fn log)
    : runner_(runner), locks_(locks), kill_grace_(kill_grace), log_(std::move(log)) {}

ports::result<restic_outcome> restic_runner::run(const restic_command &r, const datastore_attributes &a,
                                                 const std::stop_token &stop) {
    ports::command cmd;
    try {
        cmd = process_command(r, a);
    } catch (const attribute_error &e) {
        return ports::error{ports::error_kind::invalid,
                            std::string("Wrong restic datastore configuration: ") + e.what()};
    }
    const std::string &password = a.password;
    const std::string &host = r.site.host;
    ports::run_options opts;
    opts.on_stdout_line = r.on_stdout_line;
    opts.stop = stop;
    opts.kill_grace = kill_grace_;

    restic_outcome out;
    std::set<std::string> inspected;  // holders already looked at
    for (;;) {
        ++out.attempts;
        auto res = runner_.run(host, cmd, opts);
        if (!res) {
            auto e = res.err();
            e.message = redact(e.message, password);
            return e;
        }
        out.raw = std::move(res.value());
        out.raw.stderr_text = redact(out.raw.stderr_text, password);
        out.raw.stdout_text = redact(out.raw.stdout_text, password);
        out.exit = classify_exit(out.raw.exit_code, out.raw.stderr_text);
        // ssh exits 255 without a word when the remote command was killed by
        // a signal (OpenSSH's client ignores "exit-signal"); a connection
        // that broke says so on its stderr and is classified by that text.
        if (!host.empty() && out.raw.exit_code == 255 && out.exit.kind == exit_kind::failed &&
            out.exit.message.starts_with("restic exited with status")) {
            out.exit.kind = exit_kind::killed;
            out.exit.message = "restic on " + host +
                               " ended without an exit status: killed by a signal, or its ssh connection was cut";
        }
        out.cancelled = out.raw.cancelled || stop.stop_requested();
        if (out.cancelled) {
            out.exit.kind = exit_kind::interrupted;
            return out;
        }
        if (out.exit.kind != exit_kind::locked || !r.retry_on_lock || out.attempts > locks_.retries) return out;
        const lock_holder holder = out.exit.lock ? *out.exit.lock : lock_holder{};
        const std::string what = r.what.empty() ? std::string("restic") : r.what;
        lock_check check;
        if (r.inspect_lock && !holder.pid.empty() &&
            inspected.insert(holder.pid + "@" + holder.host + "@" + holder.created_at).second)
            check = r.inspect_lock(holder, stop);
        if (stop.stop_requested()) {
            out.cancelled = true;
            out.exit.kind = exit_kind::interrupted;
            return out;
        }
        if (check.result == lock_check::verdict::removed) {
            if (log_) log_('I', what + ": removed the stale lock of " + holder.describe() + ": " + check.detail);
            continue;
        }
        if (log_)
            log_('I', what + ": repository is locked by " + holder.describe() +
                          (check.detail.empty() ? std::string() : " (" + check.detail + ")") + "; retry " +
                          std::to_string(out.attempts) + "/" + std::to_string(locks_.retries) + " in " +
                          seconds_text(locks_.interval));
        if (!ports::sleep_for(stop, locks_.interval)) {
            out.cancelled = true;
            out.exit.kind = exit_kind::interrupted;
            return out;
        }
    }
}

}  // namespace oneds::restic
