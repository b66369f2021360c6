#include "plugin/restic/model/ds_state.hpp"

#include "common/strings.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace oneds::restic::ds_state {
namespace {

namespace json = boost::json;
using ports::error;
using ports::error_kind;

error sys_error(const std::string &what, const std::string &path) {
    return error{errno == EACCES || errno == EPERM ? error_kind::permission : error_kind::io,
                 what + " " + path + ": " + std::strerror(errno), 0};
}

// The file's text; nullopt when it is absent.
ports::result<std::optional<std::string>> read_text(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        if (errno == ENOENT) return std::optional<std::string>();
        return sys_error("cannot read", path);
    }
    std::ostringstream text;
    text << in.rdbuf();
    return std::optional<std::string>(text.str());
}

std::string str(const json::object &o, const char *key) {
    const auto *v = o.if_contains(key);
    return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

double num(const json::object &o, const char *key) {
    const auto *v = o.if_contains(key);
    if (v == nullptr) return 0;
    if (v->is_int64()) return static_cast<double>(v->as_int64());
    if (v->is_uint64()) return static_cast<double>(v->as_uint64());
    if (v->is_double()) return v->as_double();
    return 0;
}

// The object under top (e.g. "vms") of a parsed file.
ports::result<json::object> top_object(const std::string &text, const char *top, const char *file) {
    json::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object())
        return error{error_kind::invalid, std::string(file) + " is not a JSON object" + (ec ? ": " + ec.message() : ""),
                     0};
    const auto *inner = v.as_object().if_contains(top);
    if (inner == nullptr) return json::object();
    if (!inner->is_object())
        return error{error_kind::invalid, std::string(file) + ": \"" + top + "\" is not an object", 0};
    return inner->as_object();
}

json::object monitor_json(const monitor_record &r) {
    json::object sizes;
    for (const auto &[id, bytes] : r.repository_bytes) sizes[id] = bytes;
    return json::object{{"time", r.time},
                        {"ok", r.ok},
                        {"error", r.error},
                        {"used_mb", r.used_mb},
                        {"total_mb", r.total_mb},
                        {"free_mb", r.free_mb},
                        {"health_state", r.health_state},
                        {"health_reason", r.health_reason},
                        {"stale_locks", r.stale_locks},
                        {"repository_bytes", std::move(sizes)},
                        {"repository_bytes_time", r.repository_bytes_time}};
}

}  // namespace

ports::status make_dir(const std::string &path) {
    if (::mkdir(path.c_str(), 0700) == 0) return ports::ok();
    struct stat st {};
    if (errno == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return ports::ok();
    return sys_error("cannot create the state directory", path);
}

dir_lock::dir_lock(const std::string &dir) {
    const std::string path = dir + "/.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
        problem_ = sys_error("cannot open", path);
        return;
    }
    while (::flock(fd_, LOCK_EX) != 0)
        if (errno != EINTR) {
            problem_ = sys_error("cannot lock", path);
            return;
        }
}

dir_lock::~dir_lock() {
    if (fd_ >= 0) ::close(fd_);  // releases the flock
}

ports::status write_atomically(const std::string &path, const std::string &text, unsigned mode) {
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? std::string(".") : path.substr(0, slash);
    const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    std::string temp = dir + "/." + name + ".XXXXXX";
    const int fd = ::mkstemp(temp.data());
    if (fd < 0) return sys_error("cannot write", path);
    bool good = ::fchmod(fd, mode) == 0;
    for (std::size_t done = 0; good && done < text.size();) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            good = false;
        else
            done += static_cast<std::size_t>(n);
    }
    if (good && ::fsync(fd) != 0) good = false;
    const auto failed = good ? std::optional<error>() : sys_error("cannot write", temp);
    ::close(fd);
    if (!good || ::rename(temp.c_str(), path.c_str()) != 0) {
        auto why = failed ? *failed : sys_error("cannot rename to", path);
        ::unlink(temp.c_str());
        return why;
    }
    return ports::ok();
}

ports::result<std::map<std::string, backup_record>> parse_backups(const std::string &text) {
    auto vms = top_object(text, "vms", "backups.json");
    if (!vms) return vms.err();
    std::map<std::string, backup_record> out;
    for (const auto &[id, v] : *vms) {
        if (!v.is_object()) continue;
        const auto &o = v.as_object();
        backup_record r;
        r.time = static_cast<std::int64_t>(num(o, "time"));
        r.duration_s = num(o, "duration_s");
        r.bytes_added = static_cast<std::uint64_t>(num(o, "bytes_added"));
        r.ok = str(o, "result") == "ok";
        r.message = str(o, "message");
        r.repository = str(o, "repository");
        r.last_ok_time = static_cast<std::int64_t>(num(o, "last_ok_time"));
        if (r.ok && r.last_ok_time == 0) r.last_ok_time = r.time;
        out.emplace(std::string(id), std::move(r));
    }
    return out;
}

ports::result<std::map<std::string, verify_record>> parse_verify(const std::string &text) {
    auto repos = top_object(text, "repositories", "verify.json");
    if (!repos) return repos.err();
    std::map<std::string, verify_record> out;
    for (const auto &[id, v] : *repos) {
        if (!v.is_object()) continue;
        const auto &o = v.as_object();
        verify_record r;
        r.time = static_cast<std::int64_t>(num(o, "time"));
        r.subset = str(o, "subset");
        r.result = str(o, "result");
        r.message = str(o, "message");
        r.vm = str(o, "vm");
        out.emplace(std::string(id), std::move(r));
    }
    return out;
}

store::store(std::string state_dir, std::int64_t ds_id) : dir_(std::move(state_dir) + "/" + std::to_string(ds_id)) {}

ports::status store::record_backup(const std::string &vm_id, const backup_record &r) const {
    const std::string parent = dir_.substr(0, dir_.rfind('/'));
    if (auto made = make_dir(parent); !made) return made;
    if (auto made = make_dir(dir_); !made) return made;
    dir_lock lock(dir_);
    if (lock.problem()) return *lock.problem();
    const std::string path = dir_ + "/backups.json";
    auto text = read_text(path);
    if (!text) return text.err();
    json::object vms;
    if (*text) {
        json::error_code ec;
        json::value old = json::parse(**text, ec);
        // A damaged file is replaced rather than blocking every later record.
        if (!ec && old.is_object())
            if (const auto *v = old.as_object().if_contains("vms"); v != nullptr && v->is_object())
                vms = v->as_object();
    }
    json::object entry{{"time", r.time},
                       {"duration_s", r.duration_s},
                       {"bytes_added", r.bytes_added},
                       {"result", r.ok ? "ok" : "failed"},
                       {"repository", r.repository}};
    if (!r.ok) entry["message"] = common::one_line(r.message);
    std::int64_t last_ok = r.ok ? r.time : 0;
    if (!r.ok)
        if (const auto *old = vms.if_contains(vm_id); old != nullptr && old->is_object())
            last_ok = static_cast<std::int64_t>(
                num(old->as_object(), str(old->as_object(), "result") == "ok" ? "time" : "last_ok_time"));
    entry["last_ok_time"] = last_ok;
    vms[vm_id] = std::move(entry);
    return write_atomically(path, json::serialize(json::object{{"vms", std::move(vms)}}) + "\n", 0600);
}

ports::status store::forget_backups(const std::set<std::string> &vm_ids) const {
    if (vm_ids.empty()) return ports::ok();
    dir_lock lock(dir_);
    if (lock.problem()) return *lock.problem();
    const std::string path = dir_ + "/backups.json";
    auto text = read_text(path);
    if (!text) return text.err();
    if (!*text) return ports::ok();
    json::error_code ec;
    json::value old = json::parse(**text, ec);
    if (ec || !old.is_object()) return ports::ok();
    const auto *v = old.as_object().if_contains("vms");
    if (v == nullptr || !v->is_object()) return ports::ok();
    json::object vms = v->as_object();
    bool dropped = false;
    for (const auto &id : vm_ids) dropped = vms.erase(id) > 0 || dropped;
    if (!dropped) return ports::ok();
    return write_atomically(path, json::serialize(json::object{{"vms", std::move(vms)}}) + "\n", 0600);
}

ports::result<std::map<std::string, backup_record>> store::backups() const {
    auto text = read_text(dir_ + "/backups.json");
    if (!text) return text.err();
    if (!*text) return std::map<std::string, backup_record>();
    auto parsed = parse_backups(**text);
    if (!parsed) return error{parsed.err().kind, dir_ + "/" + parsed.err().message, 0};
    return parsed;
}

ports::result<std::map<std::string, verify_record>> store::verifications() const {
    auto text = read_text(dir_ + "/verify.json");
    if (!text) return text.err();
    if (!*text) return std::map<std::string, verify_record>();
    auto parsed = parse_verify(**text);
    if (!parsed) return error{parsed.err().kind, dir_ + "/" + parsed.err().message, 0};
    return parsed;
}

ports::status store::record_monitor(const monitor_record &r) const {
    const std::string parent = dir_.substr(0, dir_.rfind('/'));
    if (auto made = make_dir(parent); !made) return made;
    if (auto made = make_dir(dir_); !made) return made;
    dir_lock lock(dir_);
    if (lock.problem()) return *lock.problem();
    return write_atomically(dir_ + "/monitor.json", json::serialize(monitor_json(r)) + "\n", 0600);
}

ports::result<std::optional<monitor_record>> store::last_monitor() const {
    auto text = read_text(dir_ + "/monitor.json");
    if (!text) return text.err();
    if (!*text) return std::optional<monitor_record>();
    json::error_code ec;
    json::value v = json::parse(**text, ec);
    if (ec || !v.is_object()) return error{error_kind::invalid, dir_ + "/monitor.json is not a JSON object", 0};
    const auto &o = v.as_object();
    monitor_record r;
    r.time = static_cast<std::int64_t>(num(o, "time"));
    if (const auto *ok = o.if_contains("ok"); ok != nullptr && ok->is_bool()) r.ok = ok->as_bool();
    r.error = str(o, "error");
    r.used_mb = static_cast<std::uint64_t>(num(o, "used_mb"));
    r.total_mb = static_cast<std::uint64_t>(num(o, "total_mb"));
    r.free_mb = static_cast<std::uint64_t>(num(o, "free_mb"));
    r.health_state = str(o, "health_state");
    r.health_reason = str(o, "health_reason");
    r.stale_locks = static_cast<std::int64_t>(o.contains("stale_locks") ? num(o, "stale_locks") : -1);
    if (const auto *s = o.if_contains("repository_bytes"); s != nullptr && s->is_object())
        for (const auto &[id, b] : s->as_object())
            if (b.is_int64() || b.is_uint64())
                r.repository_bytes[std::string(id)] =
                    b.is_uint64() ? b.as_uint64() : static_cast<std::uint64_t>(b.as_int64());
    r.repository_bytes_time = static_cast<std::int64_t>(num(o, "repository_bytes_time"));
    return std::optional<monitor_record>(std::move(r));
}

std::vector<std::int64_t> datastores(const std::string &state_dir) {
    std::vector<std::int64_t> ids;
    std::error_code ec;
    for (const auto &e : std::filesystem::directory_iterator(state_dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.empty() || name.size() > 12 || name.find_first_not_of("0123456789") != std::string::npos) continue;
        if (!e.is_directory(ec)) continue;
        ids.push_back(std::stoll(name));
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

}  // namespace oneds::restic::ds_state
