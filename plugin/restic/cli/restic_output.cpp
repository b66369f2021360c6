#include "plugin/restic/cli/restic_output.hpp"

#include "common/strings.hpp"

#include <boost/json.hpp>

#include <charconv>
#include <cstring>
#include <limits>
#include <regex>

namespace oneds::restic {
namespace {

std::optional<boost::json::object> json_object(std::string_view line) {
    line = common::trim(line);
    if (line.empty() || line.front() != '{') return std::nullopt;
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) return std::nullopt;
    return std::move(v.as_object());
}

std::uint64_t u64(const boost::json::object &o, const char *key) {
    auto it = o.find(key);
    if (it == o.end()) return 0;
    if (it->value().is_uint64()) return it->value().as_uint64();
    if (it->value().is_int64())
        return it->value().as_int64() < 0 ? 0 : static_cast<std::uint64_t>(it->value().as_int64());
    if (it->value().is_double()) {
        // A double outside the range of uint64 (negative, 1e300) must not be
        // cast: undefined behaviour (found by the restic_output fuzzer).
        const double d = it->value().as_double();
        if (!(d >= 0)) return 0;
        if (d >= 18446744073709551616.0) return std::numeric_limits<std::uint64_t>::max();
        return static_cast<std::uint64_t>(d);
    }
    return 0;
}

double dbl(const boost::json::object &o, const char *key) {
    auto it = o.find(key);
    if (it == o.end()) return 0;
    if (it->value().is_double()) return it->value().as_double();
    if (it->value().is_int64()) return static_cast<double>(it->value().as_int64());
    if (it->value().is_uint64()) return static_cast<double>(it->value().as_uint64());
    return 0;
}

std::string str(const boost::json::object &o, const char *key) {
    auto it = o.find(key);
    if (it == o.end() || !it->value().is_string()) return {};
    return std::string(it->value().as_string());
}

bool contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

}  // namespace

std::string restic_version::str() const {
    return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

std::optional<restic_version> parse_version(std::string_view text) {
    std::string t(text);
    if (auto o = json_object(t)) t = "restic " + str(*o, "version");
    // The version is in the first words: a bounded text for std::regex, which
    // recurses per character (a long one overflowed the stack), and numbers
    // that do not fit an int are no version (std::stoi threw); both found by
    // the restic_output fuzzer (tests/fuzz).
    t = t.substr(0, 256);
    static const std::regex re(R"(restic\s+v?(\d+)\.(\d+)\.(\d+))");
    std::smatch m;
    if (!std::regex_search(t, m, re)) return std::nullopt;
    restic_version v;
    for (auto [i, field] : {std::pair{1, &v.major}, std::pair{2, &v.minor}, std::pair{3, &v.patch}}) {
        const auto [p, ec] = std::from_chars(&*m[i].first, &*m[i].first + m[i].length(), *field);
        if (ec != std::errc{}) return std::nullopt;
    }
    return v;
}

std::variant<std::monostate, backup_status, backup_summary> parse_backup_line(std::string_view line) {
    auto o = json_object(line);
    if (!o) return std::monostate{};
    const auto type = str(*o, "message_type");
    if (type == "status") {
        backup_status s;
        s.percent_done = dbl(*o, "percent_done");
        s.bytes_done = u64(*o, "bytes_done");
        s.total_bytes = u64(*o, "total_bytes");
        s.seconds_elapsed = dbl(*o, "seconds_elapsed");
        return s;
    }
    if (type == "summary") {
        backup_summary s;
        s.snapshot_id = str(*o, "snapshot_id");
        s.total_bytes_processed = u64(*o, "total_bytes_processed");
        s.data_added = u64(*o, "data_added");
        s.total_files_processed = u64(*o, "total_files_processed");
        return s;
    }
    return std::monostate{};
}

std::string lock_holder::describe() const {
    if (pid.empty()) return "a holder restic did not name";
    std::string d = "PID " + pid + " on " + host + " by " + user;
    if (!created_at.empty()) d += ", created " + created_at;
    if (!age.empty()) d += " (" + age + " ago)";
    return d;
}

namespace {

// Searches the lines of text, each cut to 1024 characters, for re; m then
// refers to line. std::regex recurses once per character matched and
// overflowed the stack on a long line (the holder's names come from the
// repository's lock file); found by the restic_output fuzzer (tests/fuzz).
bool search_lines(const std::string &text, const std::regex &re, std::string &line, std::smatch &m) {
    for (const auto &l : common::split(text, '\n')) {
        line = l.substr(0, 1024);
        if (std::regex_search(line, m, re)) return true;
    }
    return false;
}

}  // namespace

std::optional<lock_holder> parse_lock_conflict(std::string_view stderr_text) {
    const std::string t(stderr_text);
    static const std::regex holder_re(R"(already locked (exclusively )?by PID (\d+) on (\S+) by (.+?) \(UID)");
    std::smatch m;
    std::string line;
    if (!search_lines(t, holder_re, line, m)) {
        if (contains(t, "unable to create lock in backend") || contains(t, "repository is already locked"))
            return lock_holder{};
        return std::nullopt;
    }
    lock_holder h;
    h.exclusive = m[1].matched;
    // The lock file's words reach LOG lines and error texts: printable only.
    h.pid = m[2];
    h.host = common::printable(m[3].str(), 100);
    h.user = common::printable(m[4].str(), 100);
    static const std::regex created_re(R"(lock was created at ([0-9-]+ [0-9:]+) \((.+?) ago\))");
    std::string created_line;
    if (search_lines(t, created_re, created_line, m)) {
        h.created_at = m[1];
        h.age = common::printable(m[2].str(), 40);
    }
    return h;
}

namespace {

// Lines of a Go stack trace or panic dump: "github.com/.../x.go:12",
// "\t/path/x.go:12 +0x1f", "goroutine 1 [running]:", "main.main()".
bool stack_trace_line(std::string_view raw, std::string_view line) {
    if (!raw.empty() && raw.front() == '\t') return true;
    if (line.starts_with("goroutine ") || line.starts_with("created by ")) return true;
    const auto paren = line.find('(');
    const auto space = line.find(' ');
    // "pkg/path.Func(...)" or "github.com/a/b.(*T).M" without blanks before
    // the parenthesis or at all
    return space == std::string_view::npos && line.find('.') != std::string_view::npos &&
           (line.find('/') != std::string_view::npos || paren != std::string_view::npos ||
            line.starts_with("runtime.") || line.starts_with("main."));
}

}  // namespace

std::string restic_error_text(std::string_view stderr_text) {
    const std::string clean = common::strip_terminal_controls(stderr_text);
    std::string out;
    bool usage_seen = false;
    for (const auto &raw : common::split(clean, '\n')) {
        auto line = common::trim(raw);
        if (line.empty()) continue;
        if (auto o = json_object(line)) {
            const auto type = str(*o, "message_type");
            std::string msg = str(*o, "message");
            if (msg.empty()) {
                if (auto e = o->find("error"); e != o->end() && e->value().is_object())
                    msg = str(e->value().as_object(), "message");
            }
            if ((type == "error" || type == "exit_error") && !msg.empty()) {
                const auto item = str(*o, "item");
                out += (out.empty() ? "" : " ") + (item.empty() ? msg : item + ": " + msg);
            }
            continue;
        }
        // Noise that is not an error: the remote password hand-off, cache
        // notes, restic's own backend retries (the final error follows), stack
        // traces.
        if (line.rfind("reading repository password from stdin", 0) == 0 ||
            line.rfind("created new cache in", 0) == 0 ||
            (line.rfind("found ", 0) == 0 && line.find("old cache directories") != std::string_view::npos) ||
            line.find(" returned error, retrying after ") != std::string_view::npos || stack_trace_line(raw, line))
            continue;
        if (line.rfind("Fatal: ", 0) == 0) line.remove_prefix(7);
        // ssh's usage text (restic relays its ssh's stderr as "subprocess
        // ssh: ..."): one line saying so instead of the option summary.
        std::string_view bare = line;
        if (bare.starts_with("subprocess ssh: ")) bare.remove_prefix(16);
        bare = common::trim(bare);
        if (bare.starts_with("usage: ssh ")) {
            if (!usage_seen) out += (out.empty() ? "" : " ") + std::string("ssh refused the options it was given");
            usage_seen = true;
            continue;
        }
        if (usage_seen && (bare.starts_with("[") || bare.starts_with("destination ") || bare.starts_with("-")))
            continue;
        out += (out.empty() ? "" : " ") + std::string(line);
    }
    if (out.size() > 2000) out = out.substr(0, 2000) + "...";
    return out;
}

std::optional<permanent_failure> permanent_retry_failure(std::string_view stderr_line) {
    static constexpr std::string_view retrying = " returned error, retrying after ";
    const std::string_view original = common::trim(stderr_line);
    const std::string line = common::to_lower(original);
    const auto at = line.find(retrying);
    if (at == std::string::npos) return {};
    const auto has = [&line, at](std::string_view what) { return line.find(what, at) != std::string::npos; };
    std::optional<exit_kind> kind;
    if (has("read-only file system"))
        kind = exit_kind::read_only;
    else if (has("no space left on device") || has("disk quota exceeded"))
        kind = exit_kind::no_space;
    else if (has("permission denied") || has("operation not permitted"))
        kind = exit_kind::permission;
    else if ((line.starts_with("load(<data/") || line.starts_with("load(<index/")) &&
             (has("no such file or directory") || has("file does not exist") || has("key does not exist") ||
              has("invalid data returned")))
        kind = exit_kind::damaged;
    else if (line.starts_with("save(<") && has("(ssh_fx_failure)"))
        kind = exit_kind::failed;
    if (!kind) return {};
    // "Load(<data/1a2b3c4d5e>, 0, 0)" and the error after "retrying after 1.2s: "
    const auto colon = original.find(": ", at + retrying.size());
    std::string out(original.substr(0, at));
    if (colon != std::string_view::npos) out += ": " + std::string(original.substr(colon + 2));
    return permanent_failure{*kind, out};
}

std::string_view exit_kind_text(exit_kind kind) {
    switch (kind) {
        case exit_kind::read_only: return "the repository's storage is read-only";
        case exit_kind::no_space: return "no space left on the repository's storage";
        case exit_kind::permission: return "the repository's storage refused access";
        case exit_kind::damaged: return "the repository is damaged";
        case exit_kind::network: return "the connection to the repository's storage failed";
        case exit_kind::repo_missing: return "no repository";
        case exit_kind::wrong_password: return "wrong password";
        default: return {};
    }
}

exit_info classify_exit(int exit_code, std::string_view stderr_text) {
    exit_info info;
    info.message = restic_error_text(stderr_text);
    const std::string lower = common::to_lower(stderr_text);
    const auto has = [&lower](std::string_view what) { return lower.find(what) != std::string::npos; };
    const auto done = [&info](exit_kind k) {
        info.kind = k;
        return info;
    };
    if (exit_code == 0) return done(exit_kind::success);
    if (exit_code == 3) return done(exit_kind::partial);

    // A conflict names its holder; "unable to create lock in backend" alone
    // is a storage failure whose cause follows (restic 0.14: the last line).
    if (has("already locked") ||
        (exit_code == 11 && !has("read-only file system") && !has("no space left") && !has("permission denied"))) {
        info.lock = parse_lock_conflict(stderr_text);
        if (!info.lock) info.lock = lock_holder{};
        return done(exit_kind::locked);
    }
    if (exit_code == 12 || has("wrong password or no key found")) return done(exit_kind::wrong_password);
    if (has("config file already exists")) return done(exit_kind::already_exists);
    if (exit_code == 10 || has("is there a repository at the following location?") || has("repository does not exist"))
        return done(exit_kind::repo_missing);
    if (has("read-only file system")) return done(exit_kind::read_only);
    if (has("no space left on device") || has("disk quota exceeded")) return done(exit_kind::no_space);
    if (has("permission denied") || has("operation not permitted")) return done(exit_kind::permission);
    // A pack or index file missing or not matching its id (restic 0.14-0.19
    // wording: "ReadFull(<data/...>): open ...: no such file or directory",
    // "load <index/...>: invalid data returned", "ciphertext verification
    // failed", S3's "The specified key does not exist.").
    if (has("invalid data returned") || has("ciphertext verification failed") ||
        ((has("<data/") || has("<index/")) &&
         (has("no such file or directory") || has("file does not exist") || has("key does not exist"))))
        return done(exit_kind::damaged);
    for (const std::string_view text :
         {"connection refused", "connection reset", "connection closed", "connection lost", "broken pipe",
          "no route to host", "network is unreachable", "could not resolve hostname", "connection timed out",
          "unable to start the sftp session", "ssh command exited", "closed by remote host", "file already closed",
          "host key verification failed"})
        if (has(text)) return done(exit_kind::network);
    if (exit_code == 130) return done(exit_kind::interrupted);
    if (exit_code > 128 && exit_code < 128 + 65) {
        const int sig = exit_code - 128;
        if (info.message.empty()) {
            const char *name = ::strsignal(sig);
            info.message = "restic was killed by signal " + std::to_string(sig) +
                           (name != nullptr ? std::string(" (") + name + ")" : std::string());
        }
        return done(exit_kind::killed);
    }
    if (info.message.empty())
        info.message = "restic exited with status " + std::to_string(exit_code) + " and gave no reason";
    return done(exit_kind::failed);
}

}  // namespace oneds::restic
