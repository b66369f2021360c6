// increment_flatten: KEEP_LAST for incremental backups, docs/stock-driver.md#flattening-increments.
//
//   stdin   base64 DS_DRIVER_ACTION_DATA with IMAGE (BACKUP_INCREMENTS) and EXTRA_DATA/KEEP_LAST
//   stdout  <size_mb> <new chain>   (nothing when the chain is not longer than KEEP_LAST)
//
// The oldest N - KEEP_LAST + 1 increments are merged into one snapshot that keeps
// the time of the newest merged one and takes its place in the chain. Better
// than stock, on purpose: the chain is ordered by OpenNebula's increment ids
// (not restic's listing order); the increments are pulled in parallel; pulled
// files are removed on failure and cancel too; a file that already exists at a
// pull destination is never overwritten (the backup server may also be a
// hypervisor holding that folder).
#include "plugin/restic/repo_ops.hpp"

#include "common/strings.hpp"

#include <boost/json.hpp>
#include <pugixml.hpp>

#include <algorithm>
#include <map>
#include <set>

namespace oneds::restic {
namespace {

using runtime::outcome;

std::string tag_vm(const backup_image &img, const snapshot_info &s) {
    for (const auto &t : s.tags)
        if (t.rfind("one-", 0) == 0) return t.substr(4);
    if (!img.vm_id.empty()) return img.vm_id;
    for (const auto &p : s.paths)
        if (auto vm = vm_of_backup_path(p); !vm.empty()) return vm;
    return {};
}

}  // namespace

outcome increment_flatten_action(action_env &env) {
    request_doc d;
    if (auto id = id_argument(env, "increment_flatten"); !id) return outcome::from(id.err());
    if (auto loaded = load_request(env, "increment_flatten", d, true); !loaded) return outcome::from(loaded.err());
    const auto &doc = d.doc;
    const auto &attrs = d.attrs;
    const auto &img = d.image;
    if (!img.keep_last || *img.keep_last < 1)
        return outcome::fail("increment_flatten: EXTRA_DATA/KEEP_LAST must be a positive integer");
    const int keep = *img.keep_last;
    const auto chain = img.ordered();
    if (chain.size() <= static_cast<std::size_t>(keep)) return outcome::ok();
    // Checked before any work: restic would refuse it only at the final forget.
    const auto max_unused = prune_max_unused(d);
    if (!max_unused) return outcome::from(max_unused.err());
    const std::vector<increment> merged(chain.begin(),
                                        chain.begin() + static_cast<std::ptrdiff_t>(chain.size()) - keep + 1);
    const auto repo_id = img.repo_id();
    if (repo_id.empty())
        return outcome::fail("Missing datastore or image attributes: cannot tell the image's VM or backup job");
    const auto site = maintenance_site(env, attrs, attrs.base_path + "/" + repo_id);

    std::vector<std::string> ids;
    for (const auto &i : merged) ids.push_back(i.snapshot);
    auto snaps = query_snapshots(env, attrs, site, ids);
    if (!snaps) return outcome::from(snaps.err(), "Unable to flatten increments: ");
    std::vector<const snapshot_info *> infos;
    for (const auto &i : merged) {
        const auto *s = find_snapshot(*snaps, i.snapshot);
        if (s == nullptr) return outcome::fail("No such snapshot: " + i.snapshot);
        infos.push_back(s);
    }
    const snapshot_info &last = *infos.back();
    // Disk files per disk index, oldest first.
    std::map<std::string, std::vector<std::string>> by_index;
    for (const auto *s : infos)
        for (const auto &p : s->disk_paths()) by_index[disk_index_of(p)].push_back(p);
    if (by_index.empty()) return outcome::fail("Backup does not contain any disks");
    const auto others = last.other_paths();

    std::vector<std::string> pulled;
    for (const auto &[idx, paths] : by_index) pulled.insert(pulled.end(), paths.begin(), paths.end());
    pulled.insert(pulled.end(), others.begin(), others.end());
    for (const auto &p : pulled)
        if (!run_tool(env, site.host, {"test", "!", "-e", p}, "check"))
            return outcome::fail("Unable to flatten increments: " + p + " already exists on " +
                                 (site.host.empty() ? std::string("this host") : site.host) +
                                 "; refusing to overwrite it");

    const auto remove_pulled = [&] {
        std::vector<std::string> argv = {"rm", "-f", "--"};
        argv.insert(argv.end(), pulled.begin(), pulled.end());
        (void)run_tool(env, site.host, argv, "cleanup", std::stop_token{});  // also after a cancel
    };
    const auto fail = [&](const ports::error &why) {
        remove_pulled();
        if (env.ctx.cancelled()) return outcome::cancelled();
        return outcome::from(why, "Unable to flatten increments: ");
    };

    // Pull the merged increments to their original paths, several at once.
    const auto version = env.restic_version_at(site, env.stop());
    std::vector<ports::status> pulls(infos.size(), ports::ok());
    ports::parallel_for(
        infos.size(), parallel_pulls(attrs, version), env.stop(), [&](std::size_t k, const std::stop_token &stop) {
            auto files = infos[k]->disk_paths();
            if (k + 1 == infos.size()) files.insert(files.end(), others.begin(), others.end());
            auto r = run_restic(env, attrs, site, {}, "restore", restore_args(infos[k]->short_id, "/", files, version),
                                "pull of " + infos[k]->short_id, {}, stop);
            if (!r) pulls[k] = r.err();
        });
    for (const auto &pull : pulls)
        if (!pull) return fail(pull.err());

    // Re-link each disk's overlays and commit them down into the base, which
    // then takes the newest file's name.
    const bool sparsify =
        common::to_lower(common::trim(
            doc.select_node("/DS_DRIVER_ACTION_DATA/DATASTORE/TEMPLATE/RESTIC_SPARSIFY").node().text().as_string())) ==
        "yes";
    std::vector<std::string> final_disks;
    for (const auto &[idx, paths] : by_index) {
        for (std::size_t k = 1; k < paths.size(); ++k)
            if (auto rebased =
                    run_tool(env, site.host, {"qemu-img", "rebase", "-u", "-F", "qcow2", "-b", paths[k - 1], paths[k]},
                             "Unable to rebase qcow2 images");
                !rebased)
                return fail(rebased.err());
        if (paths.size() > 1) {
            if (auto committed = run_tool(
                    env, site.host, {"qemu-img", "commit", "-q", "-f", "qcow2", "-b", paths.front(), paths.back()},
                    "qemu-img commit");
                !committed)
                return fail(committed.err());
        }
        if (sparsify) {
            auto sparsified =
                run_tool(env, site.host, {"virt-sparsify", "-q", "--in-place", paths.front()}, "virt-sparsify");
            if (!sparsified)
                env.log('W', "increment_flatten: RESTIC_SPARSIFY=yes but " + sparsified.err().message + " (skipped)");
        }
        if (paths.size() > 1)
            if (auto moved = run_tool(env, site.host, {"mv", "-f", "--", paths.front(), paths.back()}, "mv"); !moved)
                return fail(moved.err());
        final_disks.push_back(paths.back());
    }

    // One snapshot for the merged state, at the time of the newest merged one.
    std::string when = last.time.substr(0, 19);
    std::replace(when.begin(), when.end(), 'T', ' ');
    const std::string vm = tag_vm(img, last);
    std::vector<std::string> files = last.disk_paths();
    files.insert(files.end(), others.begin(), others.end());
    std::string new_id;
    auto b = run_restic(env, attrs, site, {"--force", "--json", "--tag=one-" + vm, "--time=" + when}, "backup", files,
                        "backup of the flattened chain", [&new_id](std::string_view line) {
                            auto parsed = parse_backup_line(line);
                            if (auto *s = std::get_if<backup_summary>(&parsed)) new_id = s->snapshot_id;
                        });
    if (!b) return fail(b.err());
    if (new_id.size() < 8) return fail(ports::error{ports::error_kind::io, "restic printed no snapshot id"});
    new_id = new_id.substr(0, 8);

    std::uint64_t size = 0;
    for (const auto &disk : final_disks) {
        const auto info = run_tool(env, site.host, {"qemu-img", "info", "--output", "json", disk}, "qemu-img info");
        if (!info) return fail(info.err());
        boost::system::error_code ec;
        const auto v = boost::json::parse(*info, ec);
        if (!ec && v.is_object())
            if (const auto *a = v.as_object().if_contains("actual-size"); a != nullptr && a->is_number())
                size += a->to_number<std::uint64_t>();
    }
    remove_pulled();

    std::vector<std::string> old_ids;
    for (const auto *s : infos) old_ids.push_back(s->short_id);
    auto f = run_restic(env, attrs, site, {"--prune", "--max-unused=" + *max_unused}, "forget", old_ids,
                        "removal of the merged increments");
    if (!f) return outcome::from(f.err(), "Unable to remove merged snapshots (new snapshot " + new_id + " kept): ");
    return outcome::ok(std::to_string(size / 1048576) + " " + chain_keep_last(chain, keep, new_id) + "\n");
}

}  // namespace oneds::restic
