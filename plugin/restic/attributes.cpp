#include "attributes.hpp"

#include <iterator>

#include <oneds_common/strings.hpp>

#include <pugixml.hpp>

#include <charconv>
#include <vector>

namespace oneds::restic {
namespace {

std::string text_of(const pugi::xml_node &tmpl, const char *name) {
    return tmpl.child(name).text().as_string();
}

std::optional<std::int64_t> integer_attribute(const pugi::xml_node &tmpl, const char *name, const char *expected) {
    const auto node = tmpl.child(name);
    if (!node) return std::nullopt;
    const std::string raw(common::trim(node.text().as_string()));
    std::int64_t v = 0;
    const auto *end = raw.data() + raw.size();
    const auto [p, ec] = std::from_chars(raw.data(), end, v);
    if (raw.empty() || ec != std::errc{} || p != end)
        throw attribute_error(std::string(name) + " must be " + expected + ", got '" + raw + "'");
    return v;
}

}  // namespace

datastore_attributes parse_datastore(const pugi::xml_node &ds) {
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
    a.base_path = clean_path(a.base_path);

    const std::string backend = common::to_upper(common::trim(text_of(tmpl, "RESTIC_BACKEND")));
    if (backend.empty() || backend == "SFTP") a.backend = backend_kind::sftp;
    else if (backend == "LOCAL") a.backend = backend_kind::local;
    else
        throw attribute_error("Unknown RESTIC_BACKEND: " + std::string(text_of(tmpl, "RESTIC_BACKEND")) +
                              " (expected SFTP or LOCAL)");

    if (!tmpl.child("RESTIC_PASSWORD")) throw attribute_error("RESTIC_PASSWORD is required");
    a.password = text_of(tmpl, "RESTIC_PASSWORD");
    // Exactly one pair of surrounding quotes is stripped (stock, since #6666).
    if (a.password.size() >= 2 && (a.password.front() == '"' || a.password.front() == '\'') &&
        a.password.back() == a.password.front())
        a.password = a.password.substr(1, a.password.size() - 2);
    if (a.password.empty()) throw attribute_error("RESTIC_PASSWORD must not be empty");

    a.sftp_server = common::trim(text_of(tmpl, "RESTIC_SFTP_SERVER"));
    if (a.backend == backend_kind::sftp && a.sftp_server.empty())
        throw attribute_error("RESTIC_SFTP_SERVER is required when RESTIC_BACKEND is SFTP");
    if (auto u = std::string(common::trim(text_of(tmpl, "RESTIC_SFTP_USER"))); !u.empty()) a.sftp_user = u;

    a.bwlimit = integer_attribute(tmpl, "RESTIC_BWLIMIT", "an integer in KiB/s (-1 for no limit)");
    if (auto v = integer_attribute(tmpl, "RESTIC_MAXPROC", "an integer (-1 for no limit)")) {
        if (*v != -1 && *v < 1) throw attribute_error("RESTIC_MAXPROC must be -1 or a positive integer, got '" + std::to_string(*v) + "'");
        a.maxproc = *v;
    }
    if (tmpl.child("RESTIC_COMPRESSION")) {
        const std::string c(common::trim(text_of(tmpl, "RESTIC_COMPRESSION")));
        if (c != "auto" && c != "off" && c != "max")
            throw attribute_error("RESTIC_COMPRESSION must be auto, off or max, got '" + c + "'");
        a.compression = c;
    }
    if (auto v = integer_attribute(tmpl, "RESTIC_CONNECTIONS", "a positive integer")) {
        if (*v < 1) throw attribute_error("RESTIC_CONNECTIONS must be a positive integer, got '" + std::to_string(*v) + "'");
        a.connections = *v;
    }
    if (auto t = std::string(common::trim(text_of(tmpl, "RESTIC_TMP_DIR"))); !t.empty()) a.tmp_dir = t;
    if (auto v = integer_attribute(tmpl, "RESTIC_LOCK_RETRIES", "a non-negative integer")) {
        if (*v < 0) throw attribute_error("RESTIC_LOCK_RETRIES must be a non-negative integer, got '" + std::to_string(*v) + "'");
        a.lock_retries = v;
    }
    if (auto v = integer_attribute(tmpl, "RESTIC_NICE", "an integer from -20 to 19 (-1 for none)")) {
        if (*v < -20 || *v > 19)
            throw attribute_error("RESTIC_NICE must be an integer from -20 to 19 (-1 for none), got '" +
                                  std::to_string(*v) + "'");
        a.nice = *v;
    }
    if (auto v = integer_attribute(tmpl, "RESTIC_IONICE", "an integer from 0 to 7 (-1 for none)")) {
        if (*v != -1 && (*v < 0 || *v > 7))
            throw attribute_error("RESTIC_IONICE must be an integer from 0 to 7 (-1 for none), got '" +
                                  std::to_string(*v) + "'");
        a.ionice = *v;
    }
    for (const char *name : {"RESTIC_MAX_RIOPS", "RESTIC_MAX_WIOPS", "RESTIC_CPU_QUOTA", "RESTIC_MEMORY_MAX_MB"})
        if (auto v = integer_attribute(tmpl, name, "an integer (-1 for no limit)"); v && *v != -1)
            a.slice_limits_set.emplace_back(name);
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
    return "sftp:" + a.sftp_user + "@" + a.sftp_server + ":" + clean_path(repo_path);
}

std::string clean_path(const std::string &path) {
    const bool absolute = !path.empty() && path.front() == '/';
    std::vector<std::string> parts;
    for (auto &p : common::split(path, '/')) {
        if (p.empty() || p == ".") continue;
        if (p == "..") {
            if (!parts.empty() && parts.back() != "..") parts.pop_back();
            else if (!absolute) parts.push_back(p);
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
