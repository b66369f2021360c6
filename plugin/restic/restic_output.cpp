#include "restic_output.hpp"

#include <oneds_common/strings.hpp>

#include <boost/json.hpp>

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
    if (it->value().is_int64()) return it->value().as_int64() < 0 ? 0 : static_cast<std::uint64_t>(it->value().as_int64());
    if (it->value().is_double()) return static_cast<std::uint64_t>(it->value().as_double());
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
    static const std::regex re(R"(restic\s+v?(\d+)\.(\d+)\.(\d+))");
    std::smatch m;
    if (!std::regex_search(t, m, re)) return std::nullopt;
    return restic_version{std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3])};
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
    std::string d = "PID " + pid + " on " + host + " by " + user;
    if (!created_at.empty()) d += ", created " + created_at;
    if (!age.empty()) d += " (" + age + " ago)";
    return d;
}

std::optional<lock_holder> parse_lock_conflict(std::string_view stderr_text) {
    const std::string t(stderr_text);
    static const std::regex holder_re(R"(already locked (exclusively )?by PID (\d+) on (\S+) by (.+?) \(UID)");
    std::smatch m;
    if (!std::regex_search(t, m, holder_re)) {
        if (contains(t, "unable to create lock in backend") || contains(t, "repository is already locked"))
            return lock_holder{};
        return std::nullopt;
    }
    lock_holder h;
    h.exclusive = m[1].matched;
    h.pid = m[2];
    h.host = m[3];
    h.user = m[4];
    static const std::regex created_re(R"(lock was created at ([0-9-]+ [0-9:]+) \((.+?) ago\))");
    if (std::regex_search(t, m, created_re)) {
        h.created_at = m[1];
        h.age = m[2];
    }
    return h;
}

std::string restic_error_text(std::string_view stderr_text) {
    std::string out;
    for (const auto &raw : common::split(stderr_text, '\n')) {
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
        // Noise that is not an error: the remote password hand-off, cache notes.
        if (line.rfind("reading repository password from stdin", 0) == 0 ||
            line.rfind("created new cache in", 0) == 0 ||
            (line.rfind("found ", 0) == 0 && line.find("old cache directories") != std::string_view::npos))
            continue;
        if (line.rfind("Fatal: ", 0) == 0) line.remove_prefix(7);
        out += (out.empty() ? "" : " ") + std::string(line);
    }
    if (out.size() > 2000) out = out.substr(0, 2000) + "...";
    return out;
}

exit_info classify_exit(int exit_code, std::string_view stderr_text) {
    exit_info info;
    info.message = restic_error_text(stderr_text);
    if (exit_code == 0) {
        info.kind = exit_kind::success;
        return info;
    }
    if (exit_code == 3) {
        info.kind = exit_kind::partial;
        return info;
    }
    if (exit_code == 11 || contains(stderr_text, "unable to create lock in backend") ||
        contains(stderr_text, "repository is already locked")) {
        info.kind = exit_kind::locked;
        info.lock = parse_lock_conflict(stderr_text);
        if (!info.lock) info.lock = lock_holder{};
        return info;
    }
    if (exit_code == 12 || contains(stderr_text, "wrong password or no key found")) {
        info.kind = exit_kind::wrong_password;
        return info;
    }
    if (contains(stderr_text, "config file already exists")) {
        info.kind = exit_kind::already_exists;
        return info;
    }
    if (exit_code == 10 || contains(stderr_text, "Is there a repository at the following location?") ||
        contains(stderr_text, "repository does not exist")) {
        info.kind = exit_kind::repo_missing;
        return info;
    }
    if (exit_code == 130) {
        info.kind = exit_kind::interrupted;
        return info;
    }
    info.kind = exit_kind::failed;
    return info;
}

}  // namespace oneds::restic
