#include "plugin/restic/model/attributes.hpp"

#include "plugin/restic/model/names.hpp"

#include <iterator>

#include "common/strings.hpp"

#include <pugixml.hpp>

#include <charconv>
#include <functional>
#include <vector>

namespace oneds::restic {
namespace {

std::string text_of(const pugi::xml_node &tmpl, const char *name) { return tmpl.child(name).text().as_string(); }

std::optional<std::int64_t> integer_attribute(const pugi::xml_node &tmpl, const char *name,
                                              const std::string &expected) {
    const auto node = tmpl.child(name);
    if (!node) return std::nullopt;
    const std::string raw(common::trim(node.text().as_string()));
    std::int64_t v = 0;
    const auto *end = raw.data() + raw.size();
    const auto [p, ec] = std::from_chars(raw.data(), end, v);
    if (raw.empty() || ec != std::errc{} || p != end)
        throw attribute_error(std::string(name) + " must be " + expected + ", got '" + common::printable(raw) + "'");
    return v;
}

// An integer attribute that is -1 (when minus_one) or within [min, max]. No
// value escapes the range: restic panics on a bandwidth limit whose bytes per
// second overflow, and a cast to a narrower type would wrap silently.
std::optional<std::int64_t> ranged_attribute(const pugi::xml_node &tmpl, const char *name, bool minus_one,
                                             std::int64_t min, std::int64_t max) {
    const std::string expected =
        "an integer from " + std::to_string(min) + " to " + std::to_string(max) + (minus_one ? " (-1 for none)" : "");
    const auto v = integer_attribute(tmpl, name, expected);
    if (v && !(minus_one && *v == -1) && (*v < min || *v > max))
        throw attribute_error(std::string(name) + " must be " + expected + ", got '" + std::to_string(*v) + "'");
    return v;
}

void check(const char *name, const std::string &value, const std::string &problem) {
    if (!problem.empty())
        throw attribute_error(std::string(name) + " " + problem + ", got '" + common::printable(value) + "'");
}

}  // namespace

datastore_attributes parse_datastore(const pugi::xml_node &ds,
                                     const std::function<bool(std::string_view)> &is_ssh_alias) {
    if (!ds) throw attribute_error("DATASTORE element missing from the driver action data");
    datastore_attributes a;
    a.ds_id = ds.child("ID").text().as_llong(-1);
    const auto tmpl = ds.child("TEMPLATE");

    a.base_path = common::trim(ds.child("BASE_PATH").text().as_string());
    if (a.base_path.empty()) a.base_path = common::trim(text_of(tmpl, "BASE_PATH"));
    if (a.base_path.empty()) {
        if (a.ds_id < 0) throw attribute_error("BASE_PATH missing and datastore ID unknown");
        a.base_path = "/var/lib/one/datastores/" + std::to_string(a.ds_id);
    }
    check("BASE_PATH", a.base_path, absolute_path_problem(a.base_path));
    a.base_path = clean_path(a.base_path);

    const std::string backend = common::to_upper(common::trim(text_of(tmpl, "RESTIC_BACKEND")));
    if (backend.empty() || backend == "SFTP")
        a.backend = backend_kind::sftp;
    else if (backend == "LOCAL")
        a.backend = backend_kind::local;
    else
        throw attribute_error("Unknown RESTIC_BACKEND: " + common::printable(text_of(tmpl, "RESTIC_BACKEND")) +
                              " (expected SFTP or LOCAL)");

    if (!tmpl.child("RESTIC_PASSWORD")) throw attribute_error("RESTIC_PASSWORD is required");
    a.password = text_of(tmpl, "RESTIC_PASSWORD");
    // Exactly one pair of surrounding quotes is stripped (stock, since #6666).
    if (a.password.size() >= 2 && (a.password.front() == '"' || a.password.front() == '\'') &&
        a.password.back() == a.password.front())
        a.password = a.password.substr(1, a.password.size() - 2);
    if (a.password.empty()) throw attribute_error("RESTIC_PASSWORD must not be empty");

    // Whitelisted, not blacklisted (names.hpp): these become words of ssh's and
    // restic's command lines, and restic splits sftp.command on any Unicode
    // white space. Checked whatever the backend, so that a value that would be
    // dangerous is refused even while it is unused. Not trimmed beyond ASCII
    // blanks: a Unicode separator at either end is refused too.
    a.sftp_server = common::trim(text_of(tmpl, "RESTIC_SFTP_SERVER"));
    if (a.backend == backend_kind::sftp && a.sftp_server.empty())
        throw attribute_error("RESTIC_SFTP_SERVER is required when RESTIC_BACKEND is SFTP");
    if (!a.sftp_server.empty())
        check("RESTIC_SFTP_SERVER", a.sftp_server, host_name_problem(a.sftp_server, is_ssh_alias));
    if (auto u = std::string(common::trim(text_of(tmpl, "RESTIC_SFTP_USER"))); !u.empty()) {
        check("RESTIC_SFTP_USER", u, user_name_problem(u));
        a.sftp_user = u;
    }

    // Upper bound: restic computes bytes/s = KiB/s * 1024 and panics when
    // that overflows; 2^30 KiB/s (1 TiB/s) is no limit in practice.
    a.bwlimit = ranged_attribute(tmpl, "RESTIC_BWLIMIT", true, 0, std::int64_t{1} << 30);
    if (auto v = ranged_attribute(tmpl, "RESTIC_MAXPROC", true, 1, 65536)) a.maxproc = *v;
    if (tmpl.child("RESTIC_COMPRESSION")) {
        const std::string c(common::trim(text_of(tmpl, "RESTIC_COMPRESSION")));
        if (c != "auto" && c != "off" && c != "max")
            throw attribute_error("RESTIC_COMPRESSION must be auto, off or max, got '" + common::printable(c) + "'");
        a.compression = c;
    }
    if (auto v = ranged_attribute(tmpl, "RESTIC_CONNECTIONS", false, 1, 1024)) a.connections = *v;
    if (auto t = std::string(common::trim(text_of(tmpl, "RESTIC_TMP_DIR"))); !t.empty()) {
        check("RESTIC_TMP_DIR", t, absolute_path_problem(t));
        a.tmp_dir = clean_path(t);
    }
    if (auto v = ranged_attribute(tmpl, "RESTIC_LOCK_RETRIES", false, 0, 100000)) a.lock_retries = v;
    if (auto v = ranged_attribute(tmpl, "RESTIC_NICE", true, -20, 19)) a.nice = *v;
    if (auto v = ranged_attribute(tmpl, "RESTIC_IONICE", true, 0, 7)) a.ionice = *v;
    // The systemd slice (docs/confinement.md): IOPS, CPU percent (may exceed
    // 100 with several CPUs), MiB. As stock, an empty value is -1 (unset); a
    // value that is not a decimal integer is refused here where stock's
    // Integer() would raise (or take 0x10 and 1_000).
    const struct {
        const char *name;
        std::int64_t max;
        std::int64_t *field;
    } slice[] = {{"RESTIC_MAX_RIOPS", 1000000000, &a.max_riops},
                 {"RESTIC_MAX_WIOPS", 1000000000, &a.max_wiops},
                 {"RESTIC_CPU_QUOTA", 100000, &a.cpu_quota},
                 {"RESTIC_MEMORY_MAX_MB", std::int64_t{1} << 30, &a.memory_max_mb}};
    for (const auto &[name, max, field] : slice) {
        if (common::trim(text_of(tmpl, name)).empty()) continue;
        if (auto v = ranged_attribute(tmpl, name, true, 1, max); v && *v != -1) {
            *field = *v;
            a.slice_limits_set.emplace_back(name);
        }
    }
    return a;
}

std::vector<std::string> confined_argv(const datastore_attributes &a, std::vector<std::string> argv) {
    std::vector<std::string> out;
    if (a.nice != -1) out.insert(out.end(), {"nice", "-n", std::to_string(a.nice)});
    if (a.ionice != -1) out.insert(out.end(), {"ionice", "-c2", "-n" + std::to_string(a.ionice)});
    out.insert(out.end(), std::make_move_iterator(argv.begin()), std::make_move_iterator(argv.end()));
    return out;
}

std::string repository_url(const datastore_attributes &a, const std::string &repo_path) {
    if (a.backend == backend_kind::local) return clean_path(repo_path);
    // restic cuts "sftp:user@host:path" at the first ':', which an IPv6
    // literal holds; its URL form takes the brackets ("//" = absolute path).
    if (is_ipv6_literal(a.sftp_server))
        return "sftp://" + a.sftp_user + "@" + a.sftp_server + "/" + clean_path(repo_path);
    return "sftp:" + a.sftp_user + "@" + a.sftp_server + ":" + clean_path(repo_path);
}

std::string clean_path(const std::string &path) {
    const bool absolute = !path.empty() && path.front() == '/';
    std::vector<std::string> parts;
    for (auto &p : common::split(path, '/')) {
        if (p.empty() || p == ".") continue;
        if (p == "..") {
            if (!parts.empty() && parts.back() != "..")
                parts.pop_back();
            else if (!absolute)
                parts.push_back(p);
            continue;
        }
        parts.push_back(p);
    }
    std::string out = absolute ? "/" : "";
    for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? "/" : "") + parts[i];
    if (out.empty()) out = ".";
    return out;
}

}  // namespace oneds::restic
