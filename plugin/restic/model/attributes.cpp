#include "plugin/restic/model/attributes.hpp"

#include "plugin/restic/model/names.hpp"

#include <iterator>

#include "common/strings.hpp"

#include <pugixml.hpp>

#include <cctype>
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

// RESTIC_S3_FORCE_PATH_STYLE, RESTIC_S3_INSECURE_TLS: stock takes "yes" as
// yes and anything else as no; a value that is neither yes nor no is refused
// here (a typo would otherwise silently turn the option off).
bool yes_no_attribute(const pugi::xml_node &tmpl, const char *name) {
    const std::string v = common::to_upper(common::trim(text_of(tmpl, name)));
    if (v.empty() || v == "NO") return false;
    if (v == "YES") return true;
    throw attribute_error(std::string(name) + " must be yes or no, got '" + common::printable(text_of(tmpl, name)) +
                          "'");
}

// A key is a secret: never shown, only how it is wrong. It travels as one
// line on a hypervisor's stdin, so no control character may be in it.
void check_s3_key(const char *name, const std::string &key) {
    if (key.empty()) throw attribute_error(std::string("Missing ") + name);
    for (const unsigned char c : key)
        if (c < 0x20 || c == 0x7f)
            throw attribute_error(std::string(name) + " must not contain control characters or line breaks");
}

// "[http[s]://]host[:port]" with host a DNS name, an IPv4 address or a
// bracketed IPv6 literal; "" when it is one, else what is wrong.
std::string s3_endpoint_problem(std::string_view ep) {
    if (ep.empty()) return "must not be empty";
    if (ep.starts_with("http://"))
        ep.remove_prefix(7);
    else if (ep.starts_with("https://"))
        ep.remove_prefix(8);
    else if (ep.find("://") != std::string_view::npos)
        return "must start with http:// or https:// when it names a scheme";
    if (ep.find('/') != std::string_view::npos) return "must be [http[s]://]host[:port] without a path";
    std::string_view host = ep;
    std::string_view port;
    if (ep.starts_with('[')) {
        const auto close = ep.find(']');
        if (close == std::string_view::npos) return "has an unclosed '[' around its IPv6 address";
        host = ep.substr(0, close + 1);
        const auto rest = ep.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return "must be [http[s]://]host[:port]";
            port = rest.substr(1);
        }
        if (!is_ipv6_literal(host)) return "does not hold a valid IPv6 address between '[' and ']'";
    } else if (const auto colon = ep.rfind(':'); colon != std::string_view::npos) {
        host = ep.substr(0, colon);
        port = ep.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) return "must put an IPv6 address in brackets";
    }
    if (host.empty()) return "must name a host";
    if (!ep.starts_with('['))
        if (auto p = host_name_problem(host); !p.empty()) return "has a host name that " + p;
    if (ep.find(':') != std::string_view::npos && !ep.starts_with('[') && port.empty()) return "has an empty port";
    if (!port.empty()) {
        unsigned v = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
        if (ec != std::errc{} || end != port.data() + port.size() || v == 0 || v > 65535)
            return "has a port that is not a number from 1 to 65535";
    }
    return {};
}

void parse_s3(const pugi::xml_node &tmpl, datastore_attributes &a) {
    // Verbatim, as stock exports them (no trimming of a secret).
    a.s3_access_key_id = text_of(tmpl, "RESTIC_S3_ACCESS_KEY_ID");
    check_s3_key("RESTIC_S3_ACCESS_KEY_ID", a.s3_access_key_id);
    a.s3_secret_access_key = text_of(tmpl, "RESTIC_S3_SECRET_ACCESS_KEY");
    check_s3_key("RESTIC_S3_SECRET_ACCESS_KEY", a.s3_secret_access_key);

    a.s3_bucket = common::trim(text_of(tmpl, "RESTIC_S3_BUCKET"));
    if (a.s3_bucket.empty()) throw attribute_error("Missing RESTIC_S3_BUCKET");
    // S3's bucket grammar, loosened to what older buckets and Ceph allow
    // (upper case, '_'): it becomes part of the repository URL, where a '/'
    // or a blank would change what restic opens.
    {
        bool ok = a.s3_bucket.size() >= 3 && a.s3_bucket.size() <= 255 && a.s3_bucket.front() != '-' &&
                  a.s3_bucket.front() != '.';
        for (const unsigned char c : a.s3_bucket) ok = ok && (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_');
        if (!ok)
            check("RESTIC_S3_BUCKET", a.s3_bucket,
                  "must be 3 to 255 letters, digits, '-', '.' or '_', not starting with '-' or '.'");
    }

    if (auto r = std::string(common::trim(text_of(tmpl, "RESTIC_S3_REGION"))); !r.empty()) {
        bool ok = r.size() <= 64;
        for (const unsigned char c : r) ok = ok && (std::isalnum(c) != 0 || c == '-' || c == '_');
        if (!ok) check("RESTIC_S3_REGION", r, "must be letters, digits, '-' or '_' (e.g. us-east-1)");
        a.s3_region = r;
    }

    if (auto ep = std::string(common::trim(text_of(tmpl, "RESTIC_S3_ENDPOINT"))); !ep.empty()) {
        const std::string given = ep;
        // As stock: an "s3:" prefix is not doubled, a trailing '/' dropped.
        if (ep.starts_with("s3:")) ep.erase(0, 3);
        while (!ep.empty() && ep.back() == '/') ep.pop_back();
        check("RESTIC_S3_ENDPOINT", given, s3_endpoint_problem(ep));
        a.s3_endpoint = ep;
    }
    a.s3_path_style = yes_no_attribute(tmpl, "RESTIC_S3_FORCE_PATH_STYLE");
    a.s3_insecure_tls = yes_no_attribute(tmpl, "RESTIC_S3_INSECURE_TLS");
    if (auto ca = std::string(common::trim(text_of(tmpl, "RESTIC_S3_CACERT"))); !ca.empty()) {
        check("RESTIC_S3_CACERT", ca, absolute_path_problem(ca));
        a.s3_cacert = ca;
    }
    if (auto v = ranged_attribute(tmpl, "TOTAL_MB", false, 1, std::int64_t{1} << 50)) a.total_mb = *v;
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
    else if (backend == "S3")
        a.backend = backend_kind::s3;
    else
        throw attribute_error("Unknown RESTIC_BACKEND: " + common::printable(text_of(tmpl, "RESTIC_BACKEND")) +
                              " (expected SFTP, S3 or LOCAL)");

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
    if (a.backend == backend_kind::s3) parse_s3(tmpl, a);
    return a;
}

std::vector<std::string> confined_argv(const datastore_attributes &a, std::vector<std::string> argv) {
    std::vector<std::string> out;
    if (a.nice != -1) out.insert(out.end(), {"nice", "-n", std::to_string(a.nice)});
    if (a.ionice != -1) out.insert(out.end(), {"ionice", "-c2", "-n" + std::to_string(a.ionice)});
    out.insert(out.end(), std::make_move_iterator(argv.begin()), std::make_move_iterator(argv.end()));
    return out;
}

std::string s3_repo_key(const datastore_attributes &a, const std::string &repo_path) {
    const std::string p = clean_path(repo_path);
    if (p == a.base_path) return {};
    if (p.starts_with(a.base_path + "/")) return p.substr(a.base_path.size() + 1);
    return p.substr(p.rfind('/') + 1);
}

std::string repository_url(const datastore_attributes &a, const std::string &repo_path) {
    if (a.backend == backend_kind::local) return clean_path(repo_path);
    if (a.backend == backend_kind::s3) {
        // s3:<endpoint>/<bucket>/<repo id>, empty components dropped (stock).
        std::string url = "s3:" + a.s3_endpoint + "/" + a.s3_bucket;
        if (auto key = s3_repo_key(a, repo_path); !key.empty()) url += "/" + key;
        return url;
    }
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
