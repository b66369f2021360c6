// rm, stat, ls: docs/stock-driver.md#rm, #stat, #ls.
#include "plugin/restic/repo_ops.hpp"

#include "common/base64.hpp"
#include "common/strings.hpp"

#include <boost/json.hpp>
#include <pugixml.hpp>

namespace oneds::restic {
namespace {

using runtime::outcome;

// Digits with an optional k/M/G/T; by hand, not std::regex (tests/fuzz).
bool size_value(const std::string &v) {
    const auto digits = v.find_first_not_of("0123456789");
    if (digits == 0) return false;
    if (digits == std::string::npos) return !v.empty();
    return digits + 1 == v.size() && std::string_view("kKmMgGtT").find(v[digits]) != std::string_view::npos;
}

}  // namespace

outcome rm_action(action_env &env) {
    request_doc d;
    if (auto id = id_argument(env, "rm"); !id) return outcome::from(id.err());
    if (auto loaded = load_request(env, "rm", d, true); !loaded) return outcome::from(loaded.err());
    const auto &img = d.image;
    if (img.chain.empty()) return outcome::ok();  // nothing was ever stored for it
    const auto repo_id = img.repo_id();
    if (repo_id.empty())
        return outcome::fail("Missing datastore or image attributes: cannot tell the image's VM or backup job");

    const auto tmpl = d.doc.select_node("/DS_DRIVER_ACTION_DATA/DATASTORE/TEMPLATE").node();
    const auto max_unused = prune_max_unused(d);
    if (!max_unused) return outcome::from(max_unused.err());
    const std::string max_repack(common::trim(tmpl.child("RESTIC_PRUNE_MAX_REPACK").text().as_string()));
    if (!max_repack.empty() && !size_value(max_repack))
        return outcome::fail(
            wrong_configuration("RESTIC_PRUNE_MAX_REPACK must be a size (digits with an optional k/M/G/T), got '" +
                                common::printable(max_repack) + "'"));

    const auto site = maintenance_site(env, d.attrs, d.attrs.base_path + "/" + repo_id);
    std::vector<std::string> ids;
    for (const auto &i : img.chain) ids.push_back(i.snapshot);
    // Only snapshots that still exist are forgotten: removing one that is
    // already gone is not an error (the image must stay deletable), and restic
    // versions disagree on the exit code of forget for an unknown id.
    auto snaps = query_snapshots(env, d.attrs, site, ids);
    if (!snaps) {
        if (snaps.err().kind == ports::error_kind::not_found) {
            env.log('W', "rm: repository " + site.describe() + " does not exist; nothing to remove");
            return outcome::ok();
        }
        return outcome::from(snaps.err(), "Unable to remove snapshots: ");
    }
    std::vector<std::string> present;
    for (const auto &id : ids)
        if (find_snapshot(*snaps, id) != nullptr)
            present.push_back(id);
        else
            env.log('I', "rm: snapshot " + id + " is already gone");
    if (present.empty()) return outcome::ok();

    std::vector<std::string> options = {"--prune", "--max-unused=" + *max_unused};
    if (!max_repack.empty()) options.push_back("--max-repack-size=" + max_repack);
    auto r = run_restic(env, d.attrs, site, options, "forget", present, "removal of " + chain_text(img.chain));
    if (!r) return outcome::from(r.err(), "Unable to remove snapshots: ");
    return outcome::ok();
}

outcome stat_action(action_env &env) {
    request_doc d;
    if (auto id = id_argument(env, "stat"); !id) return outcome::from(id.err());
    if (auto loaded = load_request(env, "stat", d, false); !loaded) return outcome::from(loaded.err());
    const std::string path(
        common::trim(d.doc.select_node("/DS_DRIVER_ACTION_DATA/IMAGE/PATH").node().text().as_string()));
    restic_url url;
    try {
        url = parse_restic_url(path);
    } catch (const std::exception &e) {
        return outcome::fail(e.what());
    }
    // The image's path must be in this (backup) datastore (stock does not check).
    if (url.ds_id != std::to_string(d.attrs.ds_id))
        return outcome::fail("stat: the image's path names datastore " + url.ds_id + ", the request's datastore is " +
                             std::to_string(d.attrs.ds_id));
    const std::string disk_id = disk_id_of(base_name(url.path));
    if (disk_id.empty()) return outcome::fail("Wrong format for disk filename: " + dir_name(url.path));
    const std::string vm_xml_path = dir_name(url.path) + "/vm.xml";
    const auto site = frontend_site(env, d.attrs, d.attrs.base_path + "/" + url.repo_id());
    std::string b64;
    auto r = run_restic(env, d.attrs, site, {"--quiet"}, "dump", {url.chain.back().snapshot, vm_xml_path},
                        "stat of " + path, [&b64](std::string_view line) {
                            b64 += line;
                            b64 += '\n';
                        });
    if (!r) return outcome::from(r.err());
    const auto xml = common::base64_decode(b64);
    pugi::xml_document vm;
    if (!xml || !vm.load_buffer(xml->data(), xml->size()))
        return outcome::fail("Cannot read VM backup info: vm.xml in snapshot " + url.chain.back().snapshot +
                             " is not base64 XML");
    const auto disk = vm.select_node(("/VM/TEMPLATE/DISK[DISK_ID=" + disk_id + "]").c_str()).node();
    if (!disk) return outcome::fail("Cannot find disk " + disk_id + " in VM backup info");
    const std::string size(common::trim(disk.child("SIZE").text().as_string()));
    if (size.empty()) return outcome::fail("Cannot find size for disk " + disk_id + " in VM backup info");
    return outcome::ok(size + "\n");
}

outcome ls_action(action_env &env) {
    request_doc d;
    if (auto loaded = load_request(env, "ls", d, true); !loaded) return outcome::from(loaded.err());
    const auto &img = d.image;
    std::optional<int> inc;
    const auto &args = env.ctx.req().args;
    for (std::size_t i = 0; i < args.size(); i += 2) {  // "-i <id>"
        if (args[i] != "-i")
            return outcome::fail("ls: unknown argument '" + common::printable(args[i]) +
                                 "' (usage: ls [-i <increment_id>])");
        if (i + 1 >= args.size()) return outcome::fail("ls: -i needs an increment id");
        try {
            std::size_t used = 0;
            inc = std::stoi(args[i + 1], &used);
            if (used != args[i + 1].size()) throw std::invalid_argument("x");
        } catch (const std::exception &) {
            return outcome::fail("ls: -i needs an integer increment id, got '" + common::printable(args[i + 1]) + "'");
        }
    }
    // -1 means the whole chain, as stock.
    const auto chain = img.up_to(inc);
    if (chain.empty())
        return outcome::fail("ls: no increment up to " + std::to_string(inc.value_or(-1)) + " in the image");
    const auto repo_id = img.repo_id();
    if (repo_id.empty())
        return outcome::fail("Missing datastore or image attributes: cannot tell the image's VM or backup job");
    // The stock driver lists the LAST snapshot's files even with -i; the files
    // of the chain's last increment are the truthful answer (downstream only
    // reads the disk index and the VM id from the path, so both work).
    const std::string snap = chain.back().snapshot;
    const auto site = frontend_site(env, d.attrs, d.attrs.base_path + "/" + repo_id);
    auto snaps = query_snapshots(env, d.attrs, site, {snap});
    if (!snaps) return outcome::fail("Unable to list backup " + snap + ": " + snaps.err().message);
    const auto *info = find_snapshot(*snaps, snap);
    if (info == nullptr) return outcome::fail("No such snapshot: " + snap);
    const auto disks = info->disk_paths();
    if (disks.empty()) return outcome::fail("Backup does not contain any disks");
    const std::string base = restic_url_base(img.format == "rbd", std::to_string(d.attrs.ds_id), img.bj_id, chain);
    boost::json::object out;
    for (const auto &p : disks) out[disk_index_of(p)] = base + p;
    for (const auto &p : info->other_paths())
        if (base_name(p) == "disk.tpm.0") out["tpm"] = base + p;
    return outcome::ok(boost::json::serialize(out) + "\n");
}

}  // namespace oneds::restic
