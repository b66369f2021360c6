// monitor: docs/stock-driver.md#monitor. BASE_PATH is created when
// missing and measured through the storage backend (statvfs@openssh.com over
// the pooled SFTP session, or statvfs(3) locally) instead of an ssh running df.
//
//   stdout  USED_MB=<n>\nTOTAL_MB=<n>\nFREE_MB=<n>\n
//
// Values are plain integers (stock passes df's "3948M"), rounded up to whole
// MiB as df -BM rounds.
#include "plugin/restic/actions/action_env.hpp"
#include "plugin/restic/repo_ops.hpp"

#include <pugixml.hpp>

namespace oneds::restic {

namespace {
std::uint64_t ceil_mib(std::uint64_t bytes) { return (bytes + 1048575) / 1048576; }
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
    auto cap = (*store)->capacity(attrs.base_path, env.stop());
    if (!cap) return outcome::from(cap.err(), prefix + "cannot read the capacity of " + attrs.base_path + ": ");
    return outcome::ok("USED_MB=" + std::to_string(ceil_mib(cap->used_bytes)) +
                       "\nTOTAL_MB=" + std::to_string(ceil_mib(cap->total_bytes)) +
                       "\nFREE_MB=" + std::to_string(ceil_mib(cap->free_bytes)) + "\n");
}

}  // namespace oneds::restic
