// restore (to new images and a VM template): docs/stock-driver.md#restore.
//
//   stdin   base64 DS_DRIVER_ACTION_DATA: IMAGE, DATASTORE, DESTINATION_DS_ID,
//           TEMPLATE{USERNAME, NAME, NO_IP, NO_NIC, INCREMENT_ID, DISK_ID}
//   stdout  <template_id or -1> <image_id> <image_id>...
//
// As the stock script, every oned call runs as USERNAME, logged in with a
// server_cipher token made from the cipher auth file (onegate_auth by
// default; docs/oned-protocol.md#restore-as-the-requesting-user): oned checks
// USERNAME's ACLs, quotas and restricted attributes, and the images and the
// template belong to USERNAME and USERNAME's group from the start.
#include "plugin/restic/repo_ops.hpp"
#include "plugin/restic/model/vm_template.hpp"

#include "common/base64.hpp"
#include "common/strings.hpp"

#include <pugixml.hpp>

#include <limits>

namespace oneds::restic {
namespace {

using runtime::outcome;

std::string restored_note(const std::vector<int> &ids) {
    if (ids.empty()) return {};
    std::string s = " The following images were restored:";
    for (int id : ids) s += " " + std::to_string(id);
    return s;
}

std::optional<int> rpc_int(const ports::rpc_result &r) {
    if (const auto *i = std::get_if<std::int32_t>(&r.body)) return *i;
    if (const auto *l = std::get_if<std::int64_t>(&r.body)) return static_cast<int>(*l);
    return std::nullopt;
}

}  // namespace

outcome restore_action(action_env &env) {
    request_doc d;
    if (auto id = id_argument(env, "restore"); !id) return outcome::from(id.err());
    if (auto loaded = load_request(env, "restore", d, true); !loaded) return outcome::from(loaded.err());
    const auto &doc = d.doc;
    const auto &attrs = d.attrs;
    const auto &img = d.image;
    if (img.chain.empty()) return outcome::fail("Missing datastore or image attributes: the image has no SOURCE");
    const auto opt = [&](const char *name) {
        return std::string(
            common::trim(doc.select_node((std::string("/DS_DRIVER_ACTION_DATA/TEMPLATE/") + name).c_str())
                             .node()
                             .text()
                             .as_string()));
    };
    const std::string username = opt("USERNAME");
    const std::string dst_ds(
        common::trim(doc.select_node("/DS_DRIVER_ACTION_DATA/DESTINATION_DS_ID").node().text().as_string()));
    if (username.empty() || dst_ds.empty() || dst_ds.find_first_not_of("0123456789") != std::string::npos)
        return outcome::fail("Cannot find USERNAME / DESTINATION_DS_ID");
    // oned's ids are 32-bit: a longer number is no datastore.
    if (dst_ds.size() > 10 || std::stoll(dst_ds) > std::numeric_limits<std::int32_t>::max())
        return outcome::fail("DESTINATION_DS_ID " + dst_ds + " is not a datastore id (at most " +
                             std::to_string(std::numeric_limits<std::int32_t>::max()) + ")");
    if (env.oned_users == nullptr)
        return outcome::fail(
            "restore: the oned XML-RPC endpoint is needed to create images (set oned_endpoint / one_cipher_auth)");
    // Before anything starts: a missing or malformed cipher auth file stops
    // the restore here.
    auto as_user = env.oned_users->as_user(username);
    if (!as_user) return outcome::fail("Cannot log in to oned as " + username + ": " + as_user.err().message);
    ports::one_api &oned = **as_user;
    const std::string disk_filter = opt("DISK_ID");

    const std::string selected = img.selected();
    const std::string snap = selected.empty() ? img.last() : selected;
    const auto repo_id = img.repo_id();
    if (repo_id.empty())
        return outcome::fail("Missing datastore or image attributes: cannot tell the image's VM or backup job");
    const auto site = maintenance_site(env, attrs, attrs.base_path + "/" + repo_id);

    // The snapshot's files and its vm.xml.
    auto snaps = query_snapshots(env, attrs, site, {snap});
    if (!snaps) return outcome::from(snaps.err(), "Unable to fetch vm.xml document: ");
    const auto *info = find_snapshot(*snaps, snap);
    if (info == nullptr) return outcome::fail("Unable to fetch vm.xml document: No such snapshot: " + snap);
    std::string vm_xml_path, tpm_path;
    for (const auto &p : info->other_paths()) {
        if (base_name(p) == "vm.xml") vm_xml_path = p;
        if (base_name(p) == "disk.tpm.0") tpm_path = p;
    }
    if (vm_xml_path.empty())
        return outcome::fail("Unable to fetch vm.xml document: snapshot " + snap + " has no vm.xml");
    const auto dump = [&](const std::string &path) -> ports::result<std::string> {
        auto r = run_restic(env, attrs, site, {"--quiet"}, "dump", {snap, path}, "dump of " + base_name(path));
        if (!r) return r.err();
        return std::move(r->raw.stdout_text);
    };
    const auto dumped_vm = dump(vm_xml_path);
    if (!dumped_vm) return outcome::from(dumped_vm.err(), "Unable to fetch vm.xml document: ");
    const std::string &vm_b64 = *dumped_vm;
    const auto vm_xml = common::base64_decode(vm_b64);
    if (!vm_xml) return outcome::fail("Unable to fetch vm.xml document: vm.xml is not base64");
    pugi::xml_document vm;
    if (!vm.load_buffer(vm_xml->data(), vm_xml->size()) || !vm.child("VM"))
        return outcome::fail("Unable to fetch vm.xml document: vm.xml is not a VM document");

    const std::string vm_id = vm.child("VM").child("ID").text().as_string();
    std::string base_name_opt = opt("NAME");
    const std::string name = base_name_opt.empty() ? vm_id + "-" + snap : base_name_opt;
    const auto chain = img.increment_id ? img.up_to(img.increment_id) : img.ordered();
    const std::string base_url = restic_url_base(img.format == "rbd", std::to_string(attrs.ds_id), img.bj_id, chain);

    std::map<std::string, int> image_ids;
    std::vector<int> restored;
    for (const auto &p : info->disk_paths()) {
        const std::string disk_id = disk_id_of(base_name(p));
        if (disk_id.empty()) continue;
        if (!disk_filter.empty() && disk_filter != disk_id) continue;
        std::string tmpl = "NAME = " + template_value(name + "-disk-" + disk_id) +
                           "\nTYPE = " + template_value(disk_id == "0" ? "OS" : "DATABLOCK") +
                           "\nPATH = " + template_value(base_url + p) +
                           "\nFROM_BACKUP_DS = " + template_value(std::to_string(attrs.ds_id)) + "\n";
        if (!img.bj_id.empty()) tmpl += "BACKUP_JOB_ID = " + template_value(img.bj_id) + "\n";
        auto r =
            oned.call("one.image.allocate", {tmpl, static_cast<std::int32_t>(std::stoi(dst_ds)), false}, env.stop());
        if (!r) return outcome::from(r.err(), "Error restoring disk image: ", restored_note(restored));
        const auto id = rpc_int(*r);
        if (!id)
            return outcome::fail("Error restoring disk image: oned returned no image id" + restored_note(restored));
        restored.push_back(*id);
        image_ids[disk_id] = *id;
    }
    if (restored.empty())
        return outcome::fail(disk_filter.empty() ? "Backup does not contain any disks"
                                                 : "Backup does not contain disk " + disk_filter);

    int template_id = -1;
    if (disk_filter.empty()) {
        restore_options o;
        o.name = name;
        o.no_nic = common::to_upper(opt("NO_NIC")) == "YES";
        o.no_ip = common::to_upper(opt("NO_IP")) == "YES";
        if (!tpm_path.empty()) {
            const auto tpm = dump(tpm_path);
            if (!tpm)
                return outcome::from(tpm.err(),
                                     "Error creating VM template: cannot read disk.tpm.0: ", restored_note(restored));
            o.tpm_state = common::base64_encode(*tpm);
        }
        std::string tmpl;
        try {
            tmpl = restore_vm_template(*vm_xml, image_ids, o);
        } catch (const std::exception &e) {
            return outcome::fail(std::string("Error creating VM template: ") + e.what() + restored_note(restored));
        }
        auto r = oned.call("one.template.allocate", {tmpl}, env.stop());
        if (!r) return outcome::from(r.err(), "Error creating VM template: ", restored_note(restored));
        const auto id = rpc_int(*r);
        if (!id)
            return outcome::fail("Error creating VM template: oned returned no template id" + restored_note(restored));
        template_id = *id;
    }
    std::string out = std::to_string(template_id);
    for (int id : restored) out += " " + std::to_string(id);
    return outcome::ok(out + "\n");
}

}  // namespace oneds::restic
