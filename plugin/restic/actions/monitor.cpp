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
#include "plugin/restic/health.hpp"
#include "plugin/restic/repo_ops.hpp"
#include "plugin/restic/actions/verify.hpp"

#include "plugin/ports/stop.hpp"

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

// The S3 MONITOR reply for used_mib of the datastore's TOTAL_MB.
runtime::outcome reply(std::uint64_t used_mib, const datastore_attributes &attrs) {
    const auto total = static_cast<std::uint64_t>(attrs.total_mb);
    const std::uint64_t free_mib = total > used_mib ? total - used_mib : 0;
    return runtime::outcome::ok("USED_MB=" + std::to_string(used_mib) + "\nTOTAL_MB=" + std::to_string(total) +
                                "\nFREE_MB=" + std::to_string(free_mib) + "\n");
}

// The sizes (MiB) of the backup images (TYPE 6) of datastore ds_id that oned
// knows, summed: what stock's S3 monitor reports as used.
ports::result<std::uint64_t> backup_images_mib(ports::one_api &oned, std::int64_t ds_id, const std::stop_token &stop) {
    auto pool = oned.call("one.imagepool.info", {std::int32_t{-2}, std::int32_t{-1}, std::int32_t{-1}}, stop);
    if (!pool) return pool.err();
    const auto *xml = std::get_if<std::string>(&pool->body);
    pugi::xml_document doc;
    if (xml == nullptr || !doc.load_string(xml->c_str()))
        return ports::error{ports::error_kind::io, "one.imagepool.info answered something that is not XML"};
    std::uint64_t sum = 0;
    for (const auto &img : doc.select_nodes("/IMAGE_POOL/IMAGE")) {
        const auto n = img.node();
        if (n.child("DATASTORE_ID").text().as_llong(-1) != ds_id || n.child("TYPE").text().as_int(-1) != 6) continue;
        const long long mb = n.child("SIZE").text().as_llong(0);
        if (mb > 0) sum += static_cast<std::uint64_t>(mb);
    }
    return sum;
}

// RESTIC_BACKEND=S3. Stock asks oned only: used = the sizes of the datastore's
// backup images, total = TOTAL_MB (default 1 TiB), free = the rest. Here the
// bucket is asked first, with one request bounded by s3_monitor_timeout:
// when the gateway reports the bucket's usage (Ceph's RADOS Gateway does),
// that is the used figure, since it is what the repositories really take
// after deduplication and compression, and oned is not asked at all (stock
// reads the whole image pool every cycle). Otherwise the images' sizes, as
// stock, within the oned client's own timeout. A bucket that refuses the keys
// or cannot be reached fails the monitor with the reason (as an unreachable
// backup server does for SFTP), where stock reports capacity and the next
// backup fails; a bucket that does not exist yet (the first backup creates
// it) holds nothing. No figure at all (no usage from the gateway, no oned) is
// a failure naming why, never a made-up 0.
runtime::outcome monitor_s3(action_env &env, const datastore_attributes &attrs, const std::string &prefix) {
    using runtime::outcome;
    auto store = env.stores.store_for(attrs);
    if (!store) return outcome::from(store.err(), prefix);
    bool bucket_missing = false;
    {
        ports::deadline_stop_source bounded(env.settings.s3_monitor_timeout, env.stop());
        auto usage = (*store)->usage_summary(bounded.token());
        if (usage && usage->used_bytes) {
            env.log('D', "used: the bucket's own usage, " + std::to_string(*usage->used_bytes) + " bytes");
            return reply(ceil_mib(*usage->used_bytes), attrs);
        }
        if (env.ctx.cancelled()) return outcome::from(ports::cancelled_error());
        if (!usage) {
            if (usage.err().kind == ports::error_kind::not_found) {
                bucket_missing = true;
                env.log('I', "S3 bucket " + (*store)->describe() + " does not exist yet; the first backup creates it");
            } else if (usage.err().kind == ports::error_kind::cancelled) {
                return outcome::fail(prefix + (*store)->describe() + " did not answer within " +
                                     std::to_string(env.settings.s3_monitor_timeout.count() / 1000) +
                                     " s (s3_monitor_timeout)");
            } else if (usage.err().kind != ports::error_kind::unsupported) {
                return outcome::from(usage.err(), prefix);
            }
        }
    }
    if (env.oned == nullptr) {
        if (bucket_missing) return reply(0, attrs);  // nothing is stored yet
        return outcome::fail(prefix + (*store)->describe() +
                             " does not report the bucket's usage, and oned, which knows the backup images' "
                             "sizes, cannot be asked: " +
                             (env.oned_problem.empty() ? std::string("no oned client") : env.oned_problem));
    }
    auto images = backup_images_mib(*env.oned, attrs.ds_id, env.stop());
    if (env.ctx.cancelled()) return outcome::from(ports::cancelled_error());
    if (!images) return outcome::from(images.err(), prefix + "cannot sum the backup images' sizes from oned: ");
    env.log('D', "used: the sizes of the backup images in datastore " + std::to_string(attrs.ds_id));
    return reply(*images, attrs);
}

runtime::outcome monitor_capacity(action_env &env, const request_doc &d) {
    using runtime::outcome;
    const datastore_attributes &attrs = d.attrs;
    const std::string prefix = "Error monitoring datastore " + std::to_string(attrs.ds_id) + ": ";
    if (attrs.backend == backend_kind::s3) {
        auto out = monitor_s3(env, attrs, prefix);
        // After the reply is known; it does not wait for the check (verify.hpp).
        if (out.status == ONEDS_OK) maybe_start_verification(env, attrs);
        return out;
    }
    auto store = env.stores.store_for(attrs);
    if (!store) return outcome::from(store.err(), prefix);
    if (auto st = (*store)->make_directories(attrs.base_path, env.stop()); !st)
        return outcome::from(st.err(),
                             prefix + "cannot create " + attrs.base_path + " on " + (*store)->describe() + ": ");
    sync_backup_server_restic(env, attrs, **store);
    auto cap = (*store)->capacity(attrs.base_path, env.stop());
    if (!cap) return outcome::from(cap.err(), prefix + "cannot read the capacity of " + attrs.base_path + ": ");
    // After the reply is known; it does not wait for the check (verify.hpp).
    maybe_start_verification(env, attrs);
    return outcome::ok("USED_MB=" + std::to_string(ceil_mib(cap->used_bytes)) +
                       "\nTOTAL_MB=" + std::to_string(ceil_mib(cap->total_bytes)) +
                       "\nFREE_MB=" + std::to_string(ceil_mib(cap->free_bytes)) + "\n");
}

}  // namespace

runtime::outcome monitor_action(action_env &env) {
    request_doc d;
    if (auto id = id_argument(env, "monitor"); !id) return runtime::outcome::from(id.err());
    if (auto loaded = load_request(env, "monitor", d, false); !loaded) return runtime::outcome::from(loaded.err());
    runtime::outcome out = monitor_capacity(env, d);
    // The datastore's health goes to oned after the reply (health.hpp).
    after_monitor(env, d, out);
    return out;
}

}  // namespace oneds::restic
