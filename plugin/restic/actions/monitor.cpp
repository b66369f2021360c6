// monitor: docs/stock-driver.md#monitor. BASE_PATH is created when
// missing and measured through the storage backend (statvfs@openssh.com over
// the pooled SFTP session, or statvfs(3) locally) instead of an ssh running df.
//
//   stdout  USED_MB=<n>\nTOTAL_MB=<n>\nFREE_MB=<n>\n
//
// Values are plain integers (stock passes df's "3948M"), rounded up to whole
// MiB as df -BM rounds.
//
// As stock, monitor also keeps the backup server's restic in step with the
// front end's: when /var/tmp/one/VERSION there does not start with the line
// of <remotes>/VERSION, or /var/tmp/one/datastore/restic/restic is not an
// executable file (/var/tmp/one: scripts_remote_dir), both are copied from the front end's remotes. Stock does
// it with ssh and rsync; here it goes through the same pooled SFTP session
// (a temporary name, chmod, rename: never a partial binary in place), and
// costs two SFTP requests when nothing is to be copied. Like stock, the copy
// runs inline, before the reply: it happens once per OpenNebula upgrade, and
// a later reply beats a backup server without restic. A front end without
// OpenNebula's restic (a distribution restic) copies nothing; the backup
// server's restic on PATH is then used, with a warning (repo_ops.hpp).
#include "plugin/restic/actions/action_env.hpp"
#include "plugin/restic/repo_ops.hpp"

#include "common/strings.hpp"

#include <pugixml.hpp>

#include <fstream>

#include <sys/stat.h>
#include <unistd.h>

namespace oneds::restic {

namespace {
std::uint64_t ceil_mib(std::uint64_t bytes) { return (bytes + 1048575) / 1048576; }

std::string first_line(std::string_view text) { return std::string(common::trim(text.substr(0, text.find('\n')))); }

bool executable_file(const std::string &path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The front end's <remotes>/VERSION first line; "" when there is none.
std::string frontend_version(const std::string &remotes) {
    std::ifstream in(remotes + "/VERSION");
    std::string line;
    if (!in || !std::getline(in, line)) return {};
    return std::string(common::trim(line));
}

// Failures are logged (W) and never fail the monitor: its answer is the
// capacity.
void sync_backup_server_restic(action_env &env, const datastore_attributes &attrs, ports::repo_store &store) {
    if (attrs.backend != backend_kind::sftp || env.exec_host(attrs.sftp_server).empty()) return;
    // An explicit remote_restic_bin is the admin's to place.
    if (env.settings.remote_restic_bin_set) return;
    const std::string remotes = env.settings.remotes_dir;
    const std::string front_bin = remotes + "/datastore/restic/restic";
    if (!executable_file(front_bin)) return;  // no OpenNebula restic here: nothing to copy
    const std::string version = frontend_version(remotes);
    const std::string dir = env.settings.scripts_remote_dir;
    const std::string bin = dir + "/datastore/restic/restic";
    const std::string where = attrs.sftp_user + "@" + attrs.sftp_server;
    const auto warn = [&](const std::string &what, const ports::error &e) {
        if (e.kind != ports::error_kind::cancelled)
            env.log('W', "restic for the backup server " + where + ": " + what + ": " + e.message);
    };
    auto there = store.read_file(dir + "/VERSION", 4096, env.stop());
    if (!there) return warn("cannot read " + dir + "/VERSION", there.err());
    auto bin_info = store.stat(bin, env.stop());
    if (!bin_info) return warn("cannot look at " + bin, bin_info.err());
    const bool same_version = version.empty() || (there->has_value() && first_line(**there) == version);
    if (same_version && bin_info->executable) return;

    env.log('I', "copying OpenNebula's restic" + (version.empty() ? std::string() : " (VERSION " + version + ")") +
                     " to " + where + ":" + bin);
    if (auto made = store.make_directories(dir + "/datastore/restic", env.stop()); !made)
        return warn("cannot create " + dir + "/datastore/restic", made.err());
    if (auto put = store.put_file(front_bin, bin, 0755, env.stop()); !put) return warn("cannot copy restic", put.err());
    // VERSION last: a copy that failed half way is tried again next time.
    if (!version.empty())
        if (auto put = store.put_file(remotes + "/VERSION", dir + "/VERSION", 0644, env.stop()); !put)
            return warn("cannot copy VERSION", put.err());
}

}  // namespace

runtime::outcome monitor_action(action_env &env) {
    using runtime::outcome;
    request_doc d;
    if (auto loaded = load_request(env, "monitor", d, false); !loaded) return outcome::from(loaded.err());
    const datastore_attributes &attrs = d.attrs;
    const std::string prefix = "Error monitoring datastore " + std::to_string(attrs.ds_id) + ": ";
    auto store = env.stores.store_for(attrs);
    if (!store) return outcome::from(store.err(), prefix);
    if (auto st = (*store)->make_directories(attrs.base_path, env.stop()); !st)
        return outcome::from(st.err(),
                             prefix + "cannot create " + attrs.base_path + " on " + (*store)->describe() + ": ");
    sync_backup_server_restic(env, attrs, **store);
    auto cap = (*store)->capacity(attrs.base_path, env.stop());
    if (!cap) return outcome::from(cap.err(), prefix + "cannot read the capacity of " + attrs.base_path + ": ");
    return outcome::ok("USED_MB=" + std::to_string(ceil_mib(cap->used_bytes)) +
                       "\nTOTAL_MB=" + std::to_string(ceil_mib(cap->total_bytes)) +
                       "\nFREE_MB=" + std::to_string(ceil_mib(cap->free_bytes)) + "\n");
}

}  // namespace oneds::restic
