#include "plugin/restic/cli/restic_runner.hpp"

#include <set>

namespace oneds::restic {

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

ports::error_kind error_kind_of(exit_kind k) {
    switch (k) {
        case exit_kind::repo_missing: return ports::error_kind::not_found;
        case exit_kind::wrong_password:
        case exit_kind::permission: return ports::error_kind::permission;
        case exit_kind::network: return ports::error_kind::unreachable;
        case exit_kind::interrupted: return ports::error_kind::cancelled;
        default: return ports::error_kind::io;
    }
}

namespace {

// Takes the picker's lines (restic_words) out of stderr: the path of the
// restic taken from PATH, and whether there was none.
struct picker_report {
    std::string from_path;
    bool missing = false;
};

picker_report take_picker_lines(std::string &stderr_text) {
    picker_report rep;
    std::string kept;
    std::size_t pos = 0;
    while (pos < stderr_text.size()) {
        auto end = stderr_text.find('\n', pos);
        const std::size_t next = end == std::string::npos ? stderr_text.size() : end + 1;
        const std::string_view line(stderr_text.data() + pos,
                                    (end == std::string::npos ? stderr_text.size() : end) - pos);
        if (line.starts_with(restic_from_path_marker))
            rep.from_path = std::string(line.substr(restic_from_path_marker.size()));
        else if (line.starts_with(restic_missing_marker))
            rep.missing = true;
        else
            kept.append(stderr_text, pos, next - pos);
        pos = next;
    }
    stderr_text = std::move(kept);
    return rep;
}

}  // namespace

restic_runner::restic_runner(ports::process_runner &runner, lock_policy locks, std::chrono::milliseconds kill_grace,
                             log_fn log)
    : runner_(runner), locks_(locks), kill_grace_(kill_grace), log_(std::move(log)) {}

ports::result<restic_outcome> restic_runner::run(const restic_command &r, const datastore_attributes &a,
                                                 const std::stop_token &stop) {
    if (!r.site.unavailable.empty()) return ports::error{ports::error_kind::not_found, r.site.unavailable};
    ports::command cmd;
    try {
        cmd = process_command(r, a);
    } catch (const attribute_error &e) {
        return ports::error{ports::error_kind::invalid, wrong_configuration(e.what())};
    }
    const std::string &password = a.password;
    // Every secret of the datastore, should restic or a tool ever echo one.
    const auto scrub = [&a](std::string text) {
        for (const auto *secret : {&a.password, &a.s3_secret_access_key, &a.s3_access_key_id})
            text = redact(std::move(text), *secret);
        return text;
    };
    const std::string &host = r.site.host;
    ports::run_options opts;
    opts.on_stdout_line = r.on_stdout_line;
    // restic retries what cannot get better (a missing or corrupt pack, a
    // read-only, full or forbidden storage) ten times, for about 45 s, and a
    // missing pack again for each of its blobs: such a run is stopped at its
    // first retry and reported as what it is (restic gets SIGINT, removes its
    // lock where it can, and exits).
    std::stop_source own_stop;
    std::stop_callback forward(stop, [&own_stop] { own_stop.request_stop(); });
    // Data that does not match its hash ("invalid data returned") may be a
    // fault in transit that a retry cures: such a file is given up on only
    // when its retry fails the same way a second time.
    std::optional<permanent_failure> hopeless;
    std::set<std::string> invalid_once;
    opts.on_stderr_line = [&hopeless, &own_stop, &invalid_once](std::string_view line) {
        if (hopeless) return;
        auto found = permanent_retry_failure(line);
        if (!found) return;
        if (found->kind == exit_kind::damaged && line.find("invalid data returned") != std::string_view::npos) {
            const std::string handle(line.substr(0, line.find(" returned error")));
            if (invalid_once.insert(handle).second) return;
        }
        hopeless = std::move(found);
        own_stop.request_stop();
    };
    opts.stop = own_stop.get_token();
    opts.kill_grace = kill_grace_;

    lock_retrying_runner retrying(runner_, {locks_, r.inspect_lock, r.what, log_, password});
    ports::process_runner &via = r.retry_on_lock ? static_cast<ports::process_runner &>(retrying) : runner_;
    auto res = via.run(host, cmd, opts);
    if (!res) {
        auto e = res.err();
        e.message = scrub(std::move(e.message));
        return e;
    }
    restic_outcome out;
    out.attempts = r.retry_on_lock ? retrying.attempts() : 1;
    out.raw = std::move(res.value());
    out.raw.stderr_text = scrub(std::move(out.raw.stderr_text));
    out.raw.stdout_text = scrub(std::move(out.raw.stdout_text));
    if (r.site.path_fallback) {
        const std::string where = host.empty() ? std::string("this host") : host;
        const auto picked = take_picker_lines(out.raw.stderr_text);
        const std::string hint = r.site.fallback_hint.empty() ? std::string() : " (" + r.site.fallback_hint + ")";
        if (picked.missing && out.raw.exit_code == 127)
            return ports::error{ports::error_kind::not_found, "no restic on " + where + ": " + r.site.restic_bin +
                                                                  " is not an executable file and restic is not "
                                                                  "on its PATH" +
                                                                  hint};
        if (!picked.from_path.empty() && log_)
            log_('W', "restic on " + where + ": " + r.site.restic_bin + " is not an executable file there, using " +
                          picked.from_path + " from its PATH" + hint);
    }
    out.exit = classify_exit(out.raw.exit_code, out.raw.stderr_text);
    if (hopeless && !stop.stop_requested() && out.exit.kind != exit_kind::success) {
        out.exit.kind = hopeless->kind;
        out.exit.message = scrub(hopeless->message);
        out.raw.cancelled = false;
        out.stopped_early = true;
    }
    // ssh exits 255 without a word when the remote command was killed by a
    // signal (OpenSSH's client ignores "exit-signal"); a connection that
    // broke says so on its stderr and is classified by that text.
    if (!host.empty() && out.raw.exit_code == 255 && out.exit.kind == exit_kind::failed &&
        out.exit.message.starts_with("restic exited with status")) {
        out.exit.kind = exit_kind::killed;
        out.exit.message =
            "restic on " + host + " ended without an exit status: killed by a signal, or its ssh connection was cut";
    }
    // A stop that comes after restic succeeded does not undo the snapshot:
    // the run counts as the success it was.
    out.cancelled = (out.raw.cancelled || stop.stop_requested()) && out.exit.kind != exit_kind::success;
    if (out.cancelled) out.exit.kind = exit_kind::interrupted;
    return out;
}

}  // namespace oneds::restic
