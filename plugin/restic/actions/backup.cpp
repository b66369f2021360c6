// backup: docs/stock-driver.md#backup.
//
//   argv   <host>:<vm_dir> <disk_ids> <deploy_id> <bj_id|-> <vm_id> <sys_ds_id>
//   stdin  <DS_DRIVER_ACTION_DATA><DATASTORE/><VM/></DS_DRIVER_ACTION_DATA>
//   stdout <8-char snapshot id> <size_mb> <raw|rbd>
//
// Where the stock driver runs `restic stats || restic init` (a restic start and
// a walk of the whole repository) before the backup, we run the backup at once
// and, only when restic reports no repository, stat <repo>/config through the
// storage backend, init (serialised) and back up again. The files are named
// as the stock script's glob names them ('<vm_dir>'/disk.* and vm.xml,
// backup_folder.hpp), on a hypervisor within the one ssh that runs restic,
// so the snapshot holds the same files at the same paths.
#include "plugin/restic/actions/action_env.hpp"
#include "plugin/restic/actions/backup_folder.hpp"
#include "plugin/restic/repo_ops.hpp"
#include "plugin/restic/repository.hpp"
#include "plugin/restic/model/datastore_conf.hpp"

#include <oneds_common/strings.hpp>

#include <pugixml.hpp>

#include <chrono>
#include <cstdio>

namespace oneds::restic {
namespace {

using runtime::outcome;

std::string mib(double bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / 1048576.0);
    return buf;
}

// The stock rule: rbd when the first disk file ends in .rbd2 or .rbdiff.
std::string backup_format(const std::string &first_disk) {
    const auto dot = first_disk.rfind('.');
    const std::string ext = dot == std::string::npos ? "" : first_disk.substr(dot + 1);
    return (ext == "rbd2" || ext == "rbdiff") ? "rbd" : "raw";
}

}  // namespace

outcome backup_action(action_env &env) {
    const auto &args = env.ctx.req().args;
    if (args.size() < 6)
        return outcome::fail("backup: expected <host>:<vm_dir> <disk_ids> <deploy_id> <bj_id|-> <vm_id> <ds_id>, got " +
                             std::to_string(args.size()) + " arguments");
    const std::string &host_dir = args[0];
    std::string vm_host, argv_vm_dir;
    if (!split_host_dir(host_dir, vm_host, argv_vm_dir) || argv_vm_dir.empty())
        return outcome::fail("backup: first argument must be <host>:<vm_dir>, got '" + common::printable(host_dir) +
                             "'");
    if (auto p = env.host_problem("backup: the host in <host>:<vm_dir>", vm_host); !p.empty()) return outcome::fail(p);
    if (auto p = absolute_path_problem(argv_vm_dir); !p.empty())
        return outcome::fail("backup: the folder in <host>:<vm_dir> " + p + ", got '" + common::printable(argv_vm_dir) +
                             "'");
    const std::string &bj_id = args[3];
    const std::string &vm_id = args[4];
    if (vm_id.empty() || vm_id.find_first_not_of("0123456789") != std::string::npos)
        return outcome::fail("backup: VM id must be a number, got '" + vm_id + "'");
    if (bj_id != "-" && (bj_id.empty() || bj_id.find_first_not_of("0123456789") != std::string::npos))
        return outcome::fail("backup: backup job id must be a number or '-', got '" + bj_id + "'");

    request_doc d;
    if (auto loaded = load_request(env, "backup", d, false); !loaded) return outcome::from(loaded.err());
    const pugi::xml_document &doc = d.doc;
    const datastore_attributes &attrs = d.attrs;
    if (const std::string bridge(common::trim(
            doc.select_node("/DS_DRIVER_ACTION_DATA/VM/BACKUPS/BACKUP_CONFIG/LAST_BRIDGE").node().text().as_string()));
        !bridge.empty()) {
        if (auto p = env.host_problem("LAST_BRIDGE", bridge); !p.empty()) return outcome::fail("backup: " + p);
        vm_host = bridge;
    }

    const auto conf = read_shell_vars(env.settings.datastore_conf);
    std::string vm_dir;
    if (auto it = conf.find("BACKUP_BASE_PATH"); it != conf.end() && !it->second.empty()) {
        if (auto p = absolute_path_problem(it->second); !p.empty())
            return outcome::fail("BACKUP_BASE_PATH in " + env.settings.datastore_conf + " " + p + ", got '" +
                                 common::printable(it->second) + "'");
        vm_dir = clean_path(it->second + "/" + vm_id + "/backup");
    } else
        vm_dir = clean_path(argv_vm_dir + "/backup");

    const std::string repo_id = bj_id != "-" ? "job_" + bj_id : vm_id;
    const std::string repo_path = clean_path(attrs.base_path + "/" + repo_id);
    const repo_site site = hypervisor_site(env, attrs, vm_host, repo_path);
    const std::string &url = site.repo;

    restic_command run;
    run.site = site;
    run.subcommand = "backup";
    run.options = {"--force", "--json", "--tag=one-" + vm_id};
    run.confined = true;  // RESTIC_NICE, RESTIC_IONICE, as stock
    // '<vm_dir>'/disk.* then vm.xml: listed here, or by the lister that
    // starts restic on the hypervisor (its report comes on restic's stdout).
    const std::string where = site.host.empty() ? std::string() : " on " + site.host;
    lister_report listing;
    if (site.host.empty()) {
        const backup_files files = list_backup_folder(vm_dir);
        if (!files.error.empty()) return outcome::fail("Backup folder " + vm_dir + " is not ready: " + files.error);
        if (!files.missing.empty())
            return outcome::fail("Backup folder " + vm_dir + " is not ready: no file " + files.missing);
        run.args = files.disks;
        run.args.push_back(vm_dir + "/vm.xml");
    } else
        run.launcher = remote_lister(vm_dir);
    run.what = "backup of VM " + vm_id;
    run.inspect_lock = stale_lock_inspector(env, attrs, site);

    std::optional<backup_summary> summary;
    auto last_report = std::chrono::steady_clock::now();
    bool reported = false;
    if (!attrs.slice_limits_set.empty()) {
        std::string names;
        for (const auto &n : attrs.slice_limits_set) names += (names.empty() ? "" : ", ") + n;
        // Stock runs restic in a systemd user slice for these; this driver
        // does not (yet): say so rather than pretend.
        env.log('W', "backup of VM " + vm_id + ": " + names +
                         " not applied: this driver has no systemd slice confinement (RESTIC_NICE and "
                         "RESTIC_IONICE are applied)");
    }
    // Backups take shared locks and do not wait for exclusive ones in the
    // stock driver; we do, within the same budget as the other commands.
    run.on_stdout_line = [&](std::string_view line) {
        if (listing.take(line)) return;
        auto parsed = parse_backup_line(line);
        if (auto *s = std::get_if<backup_summary>(&parsed)) {
            summary = *s;
            return;
        }
        if (auto *st = std::get_if<backup_status>(&parsed); st != nullptr && st->bytes_done > 0) {
            const auto now = std::chrono::steady_clock::now();
            if (reported && now - last_report < env.settings.progress_interval) return;
            reported = true;
            last_report = now;
            char pct[16];
            std::snprintf(pct, sizeof pct, "%.1f%%", st->percent_done * 100.0);
            std::string text =
                "backup of VM " + vm_id + ": " + pct + " done, " + mib(static_cast<double>(st->bytes_done));
            if (st->total_bytes > 0) text += " of " + mib(static_cast<double>(st->total_bytes));
            if (st->seconds_elapsed > 0)
                text += ", " + mib(static_cast<double>(st->bytes_done) / st->seconds_elapsed) + "/s";
            env.log('I', text);
        }
    };

    auto runner = env.restic(attrs);
    auto res = runner.run(run, attrs, env.stop());
    // Where the stock driver runs `restic stats || restic init` before every
    // backup (a restic start and a walk of the whole repository), we back up
    // at once and create the repository only when restic finds none, then
    // back up again: one restic start per backup of an existing repository.
    if (res && !res->cancelled && res->exit.kind == exit_kind::repo_missing) {
        env.log('I', "backup of VM " + vm_id + ": no repository at " + url + " yet, creating it");
        if (auto made = ensure_repository(env, attrs, repo_path); !made)
            return made.err().kind == ports::error_kind::cancelled
                       ? outcome::fail("Backup cancelled", ONEDS_ERR_CANCELLED)
                       : outcome::from(made.err());
        summary.reset();
        reported = false;
        res = runner.run(run, attrs, env.stop());
    }
    if (res && !res->cancelled && !listing.files().missing.empty())
        return outcome::fail("Backup folder " + vm_dir + " is not ready: no file " + listing.files().missing + where);
    if (!res && res.err().kind == ports::error_kind::invalid) return outcome::fail(res.err().message);
    if (!res) return outcome::fail("Cannot run restic on " + vm_host + ": " + res.err().message);

    if (res->cancelled) {
        // restic removes its own lock on SIGINT; a lock left by a restic that
        // had to be killed is stale and goes with a plain unlock.
        if (auto unlocked = unlock_stale(env, attrs, site); !unlocked)
            env.log('W', "backup of VM " + vm_id +
                             ": could not remove stale locks after the cancel: " + unlocked.err().message);
        return outcome::fail("Backup cancelled", ONEDS_ERR_CANCELLED);
    }
    if (res->exit.kind != exit_kind::success) {
        std::string why = failure_text(*res);
        // A restic killed by someone else left its lock, as one that had to
        // be killed after a cancel.
        if (res->exit.kind == exit_kind::killed)
            if (auto unlocked = unlock_stale(env, attrs, site); !unlocked)
                env.log('W', "backup of VM " + vm_id +
                                 ": could not remove the stale lock of the killed restic: " + unlocked.err().message);
        // restic on the hypervisor does not always say why it could not open
        // the repository ("unable to start the sftp session ... file already
        // closed" when its ssh failed): ask the backup storage from here too.
        if ((res->exit.kind == exit_kind::failed || res->exit.kind == exit_kind::network) &&
            attrs.backend == backend_kind::sftp && why.find("unable to open repository") != std::string::npos) {
            auto store = env.stores.store_for(attrs);
            std::string probe = store ? std::string() : store.err().message;
            if (store)
                if (auto st = (*store)->stat(repo_path + "/config", env.stop()); !st) probe = st.err().message;
            if (!probe.empty()) why += " (from the front end: " + probe + ")";
        }
        return outcome::fail("Error backing up VM " + vm_id + " to " + url + " on " + vm_host + ": " + why);
    }
    if (!summary || summary->snapshot_id.size() < 8)
        return outcome::fail("Cannot find backup information: " + common::one_line(res->raw.stdout_text) + " " +
                             res->exit.message);
    const std::string short_id = summary->snapshot_id.substr(0, 8);
    if (short_id.find_first_not_of("0123456789abcdef") != std::string::npos)
        return outcome::fail("Wrong format for backup action: snapshot id '" + summary->snapshot_id + "'");
    env.log('I', "backup of VM " + vm_id + ": snapshot " + short_id + ", " +
                     mib(static_cast<double>(summary->total_bytes_processed)) + " processed, " +
                     mib(static_cast<double>(summary->data_added)) + " added");
    const auto &disks = site.host.empty() ? run.args : listing.files().disks;
    return outcome::ok(short_id + " " + std::to_string(summary->total_bytes_processed / 1048576) + " " +
                       backup_format(disks.empty() ? std::string() : disks.front()) + "\n");
}

}  // namespace oneds::restic
