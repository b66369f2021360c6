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
#include "plugin/restic/health.hpp"
#include "plugin/restic/repo_ops.hpp"
#include "plugin/restic/repository.hpp"
#include "plugin/restic/model/datastore_conf.hpp"

#include "common/strings.hpp"

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

// What a backup request asks for, every part checked before anything runs.
struct backup_request {
    std::string vm_id;
    std::string vm_host;    // from argv, or LAST_BRIDGE
    std::string vm_dir;     // the backup folder: <vm_dir>/backup or BACKUP_BASE_PATH/<vm_id>/backup
    std::string repo_path;  // BASE_PATH/<vm_id> or BASE_PATH/job_<bj_id>
    repo_site site;         // where restic runs: the VM's host (or here)
};

ports::error invalid(std::string text) { return {ports::error_kind::invalid, std::move(text), 0}; }

// argv, the document (into d) and BACKUP_BASE_PATH.
ports::result<backup_request> parse_backup_request(action_env &env, request_doc &d) {
    const auto &args = env.ctx.req().args;
    // Exactly six, as OpenNebula's VMM driver passes them; more would be a
    // caller we do not know (stock ignores extra words; we refuse them).
    if (args.size() != 6)
        return invalid("backup: expected <host>:<vm_dir> <disk_ids> <deploy_id> <bj_id|-> <vm_id> <ds_id>, got " +
                       std::to_string(args.size()) + " arguments");
    backup_request r;
    std::string argv_vm_dir;
    if (!split_host_dir(args[0], r.vm_host, argv_vm_dir) || argv_vm_dir.empty())
        return invalid("backup: first argument must be <host>:<vm_dir>, got '" + common::printable(args[0]) + "'");
    if (auto p = env.host_problem("backup: the host in <host>:<vm_dir>", r.vm_host); !p.empty()) return invalid(p);
    if (auto p = absolute_path_problem(argv_vm_dir); !p.empty())
        return invalid("backup: the folder in <host>:<vm_dir> " + p + ", got '" + common::printable(argv_vm_dir) + "'");
    if (has_dot_segment(argv_vm_dir))
        return invalid("backup: the folder in <host>:<vm_dir> must not have '.' or '..' components, got '" +
                       common::printable(argv_vm_dir) + "'");
    const std::string &bj_id = args[3];
    r.vm_id = args[4];
    if (!is_decimal_id(r.vm_id))
        return invalid("backup: VM id must be a number, got '" + common::printable(r.vm_id) + "'");
    // From here every progress line carries the VM id, so that OpenNebula's
    // VMM driver files it in that VM's log (the stock script's lines carry none).
    env.ctx.set_log_object(std::stoll(r.vm_id));
    if (bj_id != "-" && !is_decimal_id(bj_id))
        return invalid("backup: backup job id must be a number or '-', got '" + common::printable(bj_id) + "'");

    if (auto loaded = load_request(env, "backup", d, false); !loaded) return loaded.err();
    if (const std::string bridge(
            common::trim(d.doc.select_node("/DS_DRIVER_ACTION_DATA/VM/BACKUPS/BACKUP_CONFIG/LAST_BRIDGE")
                             .node()
                             .text()
                             .as_string()));
        !bridge.empty()) {
        if (auto p = env.host_problem("LAST_BRIDGE", bridge); !p.empty()) return invalid("backup: " + p);
        r.vm_host = bridge;
    }

    const auto conf = read_shell_vars(env.settings.datastore_conf);
    if (auto it = conf.find("BACKUP_BASE_PATH"); it != conf.end() && !it->second.empty()) {
        if (auto p = absolute_path_problem(it->second); !p.empty())
            return invalid("BACKUP_BASE_PATH in " + env.settings.datastore_conf + " " + p + ", got '" +
                           common::printable(it->second) + "'");
        r.vm_dir = clean_path(it->second + "/" + r.vm_id + "/backup");
    } else
        r.vm_dir = clean_path(argv_vm_dir + "/backup");

    r.repo_path = clean_path(d.attrs.base_path + "/" + (bj_id != "-" ? "job_" + bj_id : r.vm_id));
    r.site = hypervisor_site(env, d.attrs, r.vm_host, r.repo_path);
    return r;
}

// The restic run: `backup --force --json --tag=one-<vm>` of the folder's
// files, confined as stock (the systemd slice, else RESTIC_NICE and
// RESTIC_IONICE). Here the files are listed now; on a hypervisor the lister
// names them in the same ssh.
ports::result<restic_command> backup_command(const backup_request &r, const plugin_settings &settings) {
    restic_command run;
    run.site = r.site;
    run.subcommand = "backup";
    run.options = {"--force", "--json", "--tag=one-" + r.vm_id};
    run.confined = true;
    run.confine_path = r.vm_dir;
    run.systemd = {settings.systemd_run, settings.systemctl, settings.systemd_unit_dir, settings.systemd_user_cgroup};
    run.what = "backup of VM " + r.vm_id;
    if (!r.site.host.empty()) {
        run.launcher = remote_lister(r.vm_dir);
        return run;
    }
    const backup_files files = list_backup_folder(r.vm_dir);
    if (!files.error.empty())
        return ports::error{ports::error_kind::io, "Backup folder " + r.vm_dir + " is not ready: " + files.error, 0};
    if (!files.missing.empty())
        return ports::error{ports::error_kind::not_found,
                            "Backup folder " + r.vm_dir + " is not ready: no file " + files.missing, 0};
    run.args = files.disks;
    run.args.push_back(r.vm_dir + "/vm.xml");
    return run;
}

// Reads restic's stdout: the lister's report, progress (a LOG line at most
// every progress_interval) and the summary.
class backup_reader {
public:
    backup_reader(const action_env &env, std::string vm_id) : env_(env), vm_id_(std::move(vm_id)) {}

    void operator()(std::string_view line) {
        if (listing_.take(line)) return;
        if (auto f = parse_slice_line(line)) {
            slice_failure_ = std::move(*f);
            return;
        }
        auto parsed = parse_backup_line(line);
        if (auto *s = std::get_if<backup_summary>(&parsed)) {
            summary_ = *s;
            return;
        }
        if (auto *st = std::get_if<backup_status>(&parsed); st != nullptr && st->bytes_done > 0) report(*st);
        if (std::holds_alternative<std::monostate>(parsed))
            last_other_ = common::one_line(common::strip_terminal_controls(line));
    }
    // Before a rerun: the next summary is the one that counts.
    void restart() {
        summary_.reset();
        reported_ = false;
    }
    const std::optional<backup_summary> &summary() const { return summary_; }
    // The last stdout line that was neither progress nor the summary.
    const std::string &last_other_line() const { return last_other_; }
    const backup_files &listed() const { return listing_.files(); }
    // What the slice launcher reported when it did not start restic.
    const std::optional<slice_failure> &slice_error() const { return slice_failure_; }

private:
    void report(const backup_status &st) {
        const auto now = std::chrono::steady_clock::now();
        if (reported_ && now - last_report_ < env_.settings.progress_interval) return;
        reported_ = true;
        last_report_ = now;
        char pct[16];
        std::snprintf(pct, sizeof pct, "%.1f%%", st.percent_done * 100.0);
        std::string text = "backup of VM " + vm_id_ + ": " + pct + " done, " + mib(static_cast<double>(st.bytes_done));
        if (st.total_bytes > 0) text += " of " + mib(static_cast<double>(st.total_bytes));
        if (st.seconds_elapsed > 0) text += ", " + mib(static_cast<double>(st.bytes_done) / st.seconds_elapsed) + "/s";
        env_.log('I', text);
    }

    const action_env &env_;
    std::string vm_id_;
    lister_report listing_;
    std::optional<slice_failure> slice_failure_;
    std::optional<backup_summary> summary_;
    std::string last_other_;
    std::chrono::steady_clock::time_point last_report_;
    bool reported_ = false;
};

// Why a backup restic failed, with the front end's own look at the storage
// when restic on the hypervisor does not say why it could not open the
// repository ("unable to start the sftp session ... file already closed"
// when its ssh failed).
std::string failure_with_probe(action_env &env, const datastore_attributes &a, const backup_request &r,
                               const restic_outcome &res) {
    std::string why = failure_text(res);
    if ((res.exit.kind == exit_kind::failed || res.exit.kind == exit_kind::network) &&
        a.backend == backend_kind::sftp && why.find("unable to open repository") != std::string::npos) {
        auto store = env.stores.store_for(a);
        std::string probe = store ? std::string() : store.err().message;
        if (store)
            if (auto st = (*store)->stat(r.repo_path + "/config", env.stop()); !st) probe = st.err().message;
        if (!probe.empty()) why += " (from the front end: " + probe + ")";
    }
    // SFTP (version 3) has no error code for a read-only or full file system:
    // OpenSSH's sftp-server answers a bare "Failure". The front end looks at
    // the storage itself (statvfs@openssh.com) to name the cause.
    if (a.backend == backend_kind::sftp && why.find("SSH_FX_FAILURE") != std::string::npos) {
        if (auto store = env.stores.store_for(a); store)
            if (auto cap = (*store)->capacity(r.repo_path, env.stop()); cap) {
                if (cap->read_only) why = std::string(exit_kind_text(exit_kind::read_only)) + ": " + why;
                // A write that failed into a file restic could create on a
                // writable file system is, in practice, space or a quota:
                // the space may be free again by now, as restic removes its
                // partial packs (several at once, up to 16 MiB each in 0.14)
                // when it stops. Little space left says the same.
                else if (why.find("Write: sftp") != std::string::npos || cap->free_bytes < 32 * 1048576ULL)
                    why = std::string(exit_kind_text(exit_kind::no_space)) +
                          " (or a quota; SFTP names no cause): " + why + " (" + std::to_string(cap->free_bytes / 1024) +
                          " KiB free now)";
            }
    }
    return why;
}

// A lock left by a restic whose one_ds_host was killed (SIGKILL, the OOM
// killer): nothing of ours was left to remove it, and restic backup itself
// ignores it, so it would stay until an exclusive operation. After a
// successful backup, when the repository holds a lock at all (one listing of
// <repo>/locks), a plain `restic unlock` where the backup ran removes the
// stale ones: restic removes only locks of processes gone from its own host
// (or older than 30 minutes), never a running backup's. Not in the stock
// driver, which leaves such locks.
void remove_locks_of_dead_runs(action_env &env, const datastore_attributes &a, const backup_request &r) {
    auto store = env.stores.store_for(a);
    if (!store) return;
    auto locks = (*store)->list_directory(r.repo_path + "/locks", env.stop());
    if (!locks || !*locks || (*locks)->empty()) return;
    if (auto unlocked = unlock_stale(env, a, r.site); !unlocked)
        env.log('W', "backup of VM " + r.vm_id + ": could not remove stale locks: " + unlocked.err().message);
}

// What the state store records of a backup (health.hpp: record_backup).
struct backup_facts {
    std::int64_t ds_id = -1;
    std::string vm_id;  // empty: the request was refused before it named a VM
    std::string repository;
    std::uint64_t bytes_added = 0;
};

outcome backup_run(action_env &env, backup_facts &facts) {
    request_doc d;
    const auto parsed = parse_backup_request(env, d);
    if (!parsed) return outcome::from(parsed.err());
    const backup_request &r = *parsed;
    const datastore_attributes &attrs = d.attrs;
    facts.ds_id = attrs.ds_id;
    facts.vm_id = r.vm_id;
    facts.repository = r.repo_path.substr(r.repo_path.rfind('/') + 1);
    auto command = backup_command(r, env.settings);
    if (!command) return outcome::from(command.err());
    restic_command &run = *command;
    // Backups take shared locks and do not wait for exclusive ones in the
    // stock driver; we do, within the same budget as the other commands.
    run.inspect_lock = stale_lock_inspector(env, attrs, r.site);
    backup_reader reader(env, r.vm_id);
    run.on_stdout_line = [&reader](std::string_view line) { reader(line); };
    if (attrs.slice_confined()) {
        std::string names;
        for (const auto &n : attrs.slice_limits_set) names += (names.empty() ? "" : ", ") + n;
        env.log('I', "backup of VM " + r.vm_id + ": restic runs in the systemd slice " + slice_name(attrs) + " (" +
                         names + ")");
    }

    // A failed step before restic ran: "Backup cancelled" when the request
    // was, else its error (with prefix).
    const auto failed = [](const ports::error &e, const std::string &prefix = {}) {
        return e.kind == ports::error_kind::cancelled ? outcome::fail("Backup cancelled", ONEDS_ERR_CANCELLED)
                                                      : outcome::from(e, prefix);
    };
    const auto create_repository = [&]() -> ports::status {
        env.log('I', "backup of VM " + r.vm_id + ": no repository at " + r.site.repo + " yet, creating it");
        return ensure_repository(env, attrs, r.repo_path);
    };
    // S3: the bucket is asked first (one request of ours, a few ms), so that
    // a wrong endpoint, key, bucket or CA file fails at once and by name, and
    // a missing repository is created before the first restic instead of
    // after it failed.
    bool exists = true;
    if (auto checked = check_s3_repository(env, attrs, r.repo_path, false, &exists); !checked)
        return failed(checked.err(), "Cannot back up VM " + r.vm_id + ": ");
    if (!exists)
        if (auto made = create_repository(); !made) return failed(made.err());
    auto runner = env.restic(attrs);
    auto res = runner.run(run, attrs, env.stop());
    // Where the stock driver runs `restic stats || restic init` before every
    // backup (a restic start and a walk of the whole repository), we back up
    // at once and create the repository only when restic finds none, then
    // back up again: one restic start per backup of an existing repository.
    if (res && !res->cancelled && res->exit.kind == exit_kind::repo_missing) {
        if (auto made = create_repository(); !made) return failed(made.err());
        reader.restart();
        res = runner.run(run, attrs, env.stop());
    }
    // The slice launcher found the user manager unusable: restic never started.
    if (res && !res->cancelled && reader.slice_error())
        return outcome::fail(slice_failure_message(*reader.slice_error(), attrs, r.site.host));
    const std::string where = r.site.host.empty() ? std::string() : " on " + r.site.host;
    if (res && !res->cancelled && !reader.listed().missing.empty())
        return outcome::fail("Backup folder " + r.vm_dir + " is not ready: no file " + reader.listed().missing + where);
    if (!res && res.err().kind == ports::error_kind::invalid) return outcome::fail(res.err().message);
    if (!res) return outcome::fail("Cannot run restic on " + r.vm_host + ": " + res.err().message);

    // restic removes its own lock on SIGINT; a lock left by a restic that had
    // to be killed after a cancel, or was killed by someone else, is stale
    // and goes with a plain unlock.
    if (res->may_have_left_lock())
        if (auto unlocked = unlock_stale(env, attrs, r.site); !unlocked)
            env.log('W', "backup of VM " + r.vm_id + ": could not remove the stale lock of the " +
                             (res->cancelled       ? "cancelled"
                              : res->stopped_early ? "stopped"
                                                   : "killed") +
                             " restic: " + unlocked.err().message);
    if (res->cancelled) return outcome::fail("Backup cancelled", ONEDS_ERR_CANCELLED);
    if (res->exit.kind != exit_kind::success)
        return outcome::fail("Error backing up VM " + r.vm_id + " to " + r.site.repo + " on " + r.vm_host + ": " +
                             failure_with_probe(env, attrs, r, *res));

    const auto &summary = reader.summary();
    if (!summary || summary->snapshot_id.size() < 8)
        return outcome::fail("Cannot find backup information: " + reader.last_other_line() + " " + res->exit.message);
    const std::string short_id = summary->snapshot_id.substr(0, 8);
    if (short_id.find_first_not_of("0123456789abcdef") != std::string::npos)
        return outcome::fail("Wrong format for backup action: snapshot id '" + summary->snapshot_id + "'");
    env.log('I', "backup of VM " + r.vm_id + ": snapshot " + short_id + ", " +
                     mib(static_cast<double>(summary->total_bytes_processed)) + " processed, " +
                     mib(static_cast<double>(summary->data_added)) + " added");
    facts.bytes_added = summary->data_added;
    remove_locks_of_dead_runs(env, attrs, r);
    const auto &disks = r.site.host.empty() ? run.args : reader.listed().disks;
    return outcome::ok(short_id + " " + std::to_string(summary->total_bytes_processed / 1048576) + " " +
                       backup_format(disks.empty() ? std::string() : disks.front()) + "\n");
}

}  // namespace

outcome backup_action(action_env &env) {
    const auto start = std::chrono::steady_clock::now();
    backup_facts facts;
    outcome out = backup_run(env, facts);
    if (!facts.vm_id.empty()) {
        ds_state::backup_record rec;
        rec.time = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                       .count();
        rec.duration_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        rec.ok = out.status == ONEDS_OK;
        rec.bytes_added = rec.ok ? facts.bytes_added : 0;
        rec.message = rec.ok ? std::string() : out.status == ONEDS_ERR_CANCELLED ? "cancelled" : out.error;
        rec.repository = facts.repository;
        record_backup(env, facts.ds_id, facts.vm_id, rec);
    }
    return out;
}

}  // namespace oneds::restic
