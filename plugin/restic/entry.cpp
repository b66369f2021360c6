// The restic plugin's C ABI entry: the static table, whose action list comes
// from the action table (actions.def).
#include "plugin/restic/actions/actions.hpp"
#include "plugin/restic/restic_plugin.hpp"

#include <oneds/plugin.hpp>

extern "C" ONEDS_EXPORT const oneds_plugin_api *oneds_plugin_entry(std::uint32_t host_abi_major) {
    return oneds::sdk::plugin_table<oneds::restic::plugin_instance>::get(host_abi_major, "restic", ONEDS_VERSION,
                                                                         oneds::restic::k_action_names.data());
}
