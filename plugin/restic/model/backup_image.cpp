#include "plugin/restic/model/backup_image.hpp"

#include "common/strings.hpp"

#include <boost/json.hpp>
#include <pugixml.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string_view>
#include <stdexcept>

namespace oneds::restic {
namespace {

std::string text(const pugi::xml_document &doc, const char *xpath) {
    return std::string(common::trim(doc.select_node(xpath).node().text().as_string()));
}

std::optional<int> int_at(const pugi::xml_document &doc, const char *xpath) {
    const auto t = text(doc, xpath);
    if (t.empty()) return std::nullopt;
    int v = 0;
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc{} || p != t.data() + t.size())
        throw std::runtime_error(std::string(xpath) + " must be an integer, got '" + t + "'");
    return v;
}

bool is_snapshot_id(const std::string &s) {
    return s.size() >= 8 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// ".../<vm>/backup/<file>" -> "<vm>". By hand, not with std::regex:
// libstdc++'s regex recurses once per character and overflowed the stack on
// a long path (found by the restic_url fuzzer, tests/fuzz).
std::string vm_from_path(const std::string &path) {
    constexpr std::string_view backup = "/backup";
    const auto slash = path.rfind('/');
    if (slash == std::string::npos || slash + 1 == path.size() || slash < backup.size() + 1 ||
        path.compare(slash - backup.size(), backup.size(), backup) != 0)
        return {};
    const auto end = slash - backup.size();  // the '/' before "backup"
    const auto start = path.rfind('/', end - 1);
    if (start == std::string::npos || start + 1 == end) return {};
    std::string vm = path.substr(start + 1, end - start - 1);
    return vm.find_first_not_of("0123456789") == std::string::npos ? vm : std::string();
}

// A disk's file name: "disk.<digits>..." (not disk.tpm.0). By hand for the
// same reason as vm_from_path.
bool is_disk_file(const std::string &name) {
    return name.starts_with("disk.") && name.size() > 5 && name[5] >= '0' && name[5] <= '9';
}

}  // namespace

namespace {

// "%" and two hex digits anywhere (by hand, as vm_from_path).
bool has_percent_escape(const std::string &s) {
    const auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
    for (auto at = s.find('%'); at != std::string::npos && at + 2 < s.size(); at = s.find('%', at + 1))
        if (hex(s[at + 1]) && hex(s[at + 2])) return true;
    return false;
}

}  // namespace

std::string vm_of_backup_path(const std::string &path) { return vm_from_path(path); }

std::string disk_id_of(const std::string &file_name) {
    for (auto at = file_name.find("disk."); at != std::string::npos; at = file_name.find("disk.", at + 1)) {
        const auto first = at + 5;
        auto end = first;
        while (end < file_name.size() && file_name[end] >= '0' && file_name[end] <= '9') ++end;
        if (end > first) return file_name.substr(first, end - first);
    }
    return {};
}

std::string base_name(const std::string &path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string dir_name(const std::string &path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string disk_index_of(const std::string &path) {
    const auto parts = common::split(base_name(path), '.');
    return parts.size() >= 2 ? parts[1] : std::string();
}

std::string backup_image::repo_id() const {
    if (!bj_id.empty()) return "job_" + bj_id;
    if (!vm_id.empty()) return vm_id;
    return vm_from_path(path);
}

std::string backup_image::selected() const {
    if (!increment_id) return {};
    for (const auto &i : chain)
        if (i.id == *increment_id) return i.snapshot;
    return {};
}

std::vector<increment> backup_image::ordered() const {
    auto c = chain;
    std::stable_sort(c.begin(), c.end(), [](const increment &a, const increment &b) { return a.id < b.id; });
    return c;
}

std::vector<increment> backup_image::up_to(std::optional<int> n) const {
    auto c = ordered();
    if (n && *n >= 0)
        c.erase(std::remove_if(c.begin(), c.end(), [&](const increment &i) { return i.id > *n; }), c.end());
    return c;
}

backup_image parse_backup_image(const pugi::xml_document &doc) {
    backup_image img;
    const auto image = doc.select_node("/DS_DRIVER_ACTION_DATA/IMAGE").node();
    if (!image) throw std::runtime_error("IMAGE element missing from the driver action data");
    for (const auto &inc : image.select_nodes("BACKUP_INCREMENTS/INCREMENT")) {
        increment i;
        const std::string id(common::trim(inc.node().child("ID").text().as_string()));
        const auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), i.id);
        if (id.empty() || ec != std::errc{} || p != id.data() + id.size())
            throw std::runtime_error("BACKUP_INCREMENTS/INCREMENT/ID must be an integer, got '" + id + "'");
        i.snapshot = common::trim(inc.node().child("SOURCE").text().as_string());
        if (!is_snapshot_id(i.snapshot))
            throw std::runtime_error("increment " + id + " has no valid SOURCE snapshot id: '" + i.snapshot + "'");
        img.chain.push_back(i);
    }
    if (img.chain.empty()) {
        const std::string source(common::trim(image.child("SOURCE").text().as_string()));
        if (!source.empty()) {
            if (!is_snapshot_id(source))
                throw std::runtime_error("image SOURCE is not a restic snapshot id: '" + source + "'");
            img.chain.push_back({0, source});
        }
    }
    img.vm_id = common::trim(image.select_node("VMS/ID").node().text().as_string());
    img.bj_id = common::trim(image.select_node("TEMPLATE/BACKUP_JOB_ID").node().text().as_string());
    if (img.bj_id.empty()) img.bj_id = common::trim(image.child("BACKUP_JOB_ID").text().as_string());
    // Both name a repository folder (<BASE_PATH>/<vm> or job_<bj>): numbers
    // only, so that nothing like "../" can point restic elsewhere.
    for (const auto &[what, v] : {std::pair{"VMS/ID", &img.vm_id}, std::pair{"BACKUP_JOB_ID", &img.bj_id}})
        if (!v->empty() && (v->size() > 10 || v->find_first_not_of("0123456789") != std::string::npos))
            throw std::runtime_error(std::string(what) + " must be a number, got '" + common::printable(*v) + "'");
    img.format = common::trim(image.child("FORMAT").text().as_string());
    img.path = common::trim(image.child("PATH").text().as_string());
    img.keep_last = int_at(doc, "/DS_DRIVER_ACTION_DATA/EXTRA_DATA/KEEP_LAST");
    img.increment_id = int_at(doc, "/DS_DRIVER_ACTION_DATA/TEMPLATE/INCREMENT_ID");
    return img;
}

std::string chain_text(const std::vector<increment> &chain) {
    std::string out;
    for (const auto &i : chain) out += (out.empty() ? "" : ",") + std::to_string(i.id) + ":" + i.snapshot;
    return out;
}

std::string chain_keep_last(const std::vector<increment> &ordered_chain, int keep, const std::string &new_snapshot) {
    if (keep <= 0 || ordered_chain.empty()) return {};
    const auto first = ordered_chain.size() > static_cast<std::size_t>(keep)
                           ? ordered_chain.size() - static_cast<std::size_t>(keep)
                           : 0;
    std::vector<increment> kept(ordered_chain.begin() + static_cast<std::ptrdiff_t>(first), ordered_chain.end());
    kept.front().snapshot = new_snapshot;
    return chain_text(kept);
}

std::string restic_url_base(bool rbd, const std::string &ds_id, const std::string &bj_id,
                            const std::vector<increment> &chain) {
    return std::string(rbd ? "restic+rbd://" : "restic://") + ds_id + "/" + bj_id + "/" + chain_text(chain);
}

std::string restic_url::str() const { return restic_url_base(rbd, ds_id, bj_id, chain) + path; }

restic_url parse_restic_url(const std::string &url) {
    restic_url u;
    std::string rest;
    if (url.rfind("restic://", 0) == 0)
        rest = url.substr(9);
    else if (url.rfind("restic+rbd://", 0) == 0) {
        rest = url.substr(13);
        u.rbd = true;
    } else
        throw std::runtime_error("not a restic:// URL: '" + common::printable(url) + "'");
    // ds / bj / chain / path-without-leading-slash
    std::vector<std::string> parts;
    for (int i = 0; i < 3; ++i) {
        const auto slash = rest.find('/');
        if (slash == std::string::npos)
            throw std::runtime_error("restic URL needs <ds>/<bj>/<chain>/<path>: '" + common::printable(url) + "'");
        parts.push_back(rest.substr(0, slash));
        rest = rest.substr(slash + 1);
    }
    u.ds_id = parts[0];
    u.bj_id = parts[1];
    if (u.ds_id.empty() || u.ds_id.find_first_not_of("0123456789") != std::string::npos)
        throw std::runtime_error("restic URL datastore id must be a number: '" + common::printable(url) + "'");
    if (!u.bj_id.empty() && u.bj_id.find_first_not_of("0123456789") != std::string::npos)
        throw std::runtime_error("restic URL backup job id must be a number or empty: '" + common::printable(url) +
                                 "'");
    for (const auto &item : common::split(parts[2], ',')) {
        const auto colon = item.find(':');
        increment i;
        const std::string id = colon == std::string::npos ? "" : item.substr(0, colon);
        const auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), i.id);
        if (id.empty() || ec != std::errc{} || p != id.data() + id.size())
            throw std::runtime_error("restic URL chain entry must be <increment>:<snapshot>, got '" +
                                     common::printable(item) + "'");
        i.snapshot = item.substr(colon + 1);
        if (!is_snapshot_id(i.snapshot))
            throw std::runtime_error("restic URL chain entry has no snapshot id: '" + common::printable(item) + "'");
        u.chain.push_back(i);
    }
    u.path = "/" + rest;
    if (rest.empty()) throw std::runtime_error("restic URL has no file path: '" + common::printable(url) + "'");
    // The path is a file's path inside a snapshot, as restic stored it: clean
    // and absolute. No '.', '..' or empty component, and no percent-encoding
    // (stock never encodes; "%2e%2e" would only be a disguised ".."). Refused
    // here, before any repository is opened.
    for (const auto &part : common::split(rest, '/'))
        if (part.empty() || part == "." || part == "..")
            throw std::runtime_error(
                "restic URL file path must be a clean absolute path (no '.', '..' or empty "
                "component): '" +
                common::printable(url) + "'");
    if (has_percent_escape(url))
        throw std::runtime_error("restic URL must not be percent-encoded: '" + common::printable(url) + "'");
    u.disk_index = disk_index_of(u.path);
    u.vm_id = vm_from_path(u.path);
    if (u.bj_id.empty() && u.vm_id.empty())
        throw std::runtime_error("restic URL path must be .../<vm_id>/backup/<file>: '" + common::printable(url) + "'");
    return u;
}

std::vector<std::string> snapshot_info::disk_paths() const {
    std::vector<std::string> out;
    for (const auto &p : paths)
        if (is_disk_file(base_name(p))) out.push_back(p);
    return out;
}

std::vector<std::string> snapshot_info::other_paths() const {
    std::vector<std::string> out;
    for (const auto &p : paths)
        if (!is_disk_file(base_name(p))) out.push_back(p);
    return out;
}

std::vector<snapshot_info> parse_snapshots_json(const std::string &json) {
    // restic 0.14 may print a plain-text line before the JSON (cache notes).
    const auto start = json.find('[');
    if (start == std::string::npos) throw std::runtime_error("restic snapshots printed no JSON array");
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(std::string_view(json).substr(start), ec);
    if (ec || !v.is_array()) throw std::runtime_error("cannot parse restic snapshots output: " + ec.message());
    std::vector<snapshot_info> out;
    for (const auto &e : v.as_array()) {
        if (!e.is_object()) continue;
        const auto &o = e.as_object();
        snapshot_info s;
        if (auto it = o.find("id"); it != o.end() && it->value().is_string())
            s.id = std::string(it->value().as_string());
        s.short_id = s.id.substr(0, 8);
        if (auto it = o.find("time"); it != o.end() && it->value().is_string())
            s.time = std::string(it->value().as_string());
        if (auto it = o.find("paths"); it != o.end() && it->value().is_array())
            for (const auto &p : it->value().as_array())
                if (p.is_string()) s.paths.emplace_back(p.as_string());
        if (auto it = o.find("tags"); it != o.end() && it->value().is_array())
            for (const auto &t : it->value().as_array())
                if (t.is_string()) s.tags.emplace_back(t.as_string());
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace oneds::restic
