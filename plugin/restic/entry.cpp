// The restic plugin's C ABI entry and its instance. Actions live in their own
// files; this file only routes.
#include "restic_plugin.hpp"

#include <oneds/plugin.hpp>

namespace {
// Every action the stock restic driver has a script for. cp, clone, mkfs and
// the snap_* actions exist only to say "Operation not supported", as stock.
const char *const k_actions[] = {"backup",      "backup_cancel", "monitor",      "rm", "stat", "ls",
                                 "downloader",  "increment_flatten", "restore", "cp",
                                 "clone",       "mkfs",          "snap_delete",  "snap_revert",
                                 "snap_flatten", nullptr};
}  // namespace

extern "C" ONEDS_EXPORT const oneds_plugin_api *oneds_plugin_entry(std::uint32_t host_abi_major) {
    return oneds::sdk::plugin_table<oneds::restic::plugin_instance>::get(
        host_abi_major, "restic", ONEDS_VERSION, k_actions);
}
