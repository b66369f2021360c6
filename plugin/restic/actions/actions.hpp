// The action table (actions.def) as data: the names the ABI lists and, for
// each, the function that runs it and what it needs.
#pragma once

#include "plugin/restic/actions/action_env.hpp"

#include <array>
#include <cstddef>
#include <string_view>

namespace oneds::restic {

enum class action_needs {
    nothing,
    oned,               // oned's XML-RPC API with the plugin's own credentials
    oned_as_user,       // oned's XML-RPC API as the requesting user (restore)
    oned_or_datastore,  // oned unless the request holds the DATASTORE (the downloader)
    oned_if_available,  // oned when a client can be made, else none (MONITOR: S3's images' sizes)
};

using action_fn = runtime::outcome (*)(action_env &);

struct action_entry {
    const char *name;
    action_fn run;  // nullptr: "<name>: Operation not supported", as the stock stubs
    action_needs needs;
};

inline constexpr action_entry k_actions[] = {
#define ONEDS_ACTION(name, function, needs, wrapper) {#name, &function, action_needs::needs},
#define ONEDS_UNSUPPORTED(name) {#name, nullptr, action_needs::nothing},
#include "plugin/restic/actions/actions.def"
#undef ONEDS_ACTION
#undef ONEDS_UNSUPPORTED
};

// The NULL-terminated name list of the ABI table (oneds_plugin_api::actions).
inline constexpr auto k_action_names = [] {
    std::array<const char *, std::size(k_actions) + 1> names{};
    for (std::size_t i = 0; i < std::size(k_actions); ++i) names[i] = k_actions[i].name;
    names[std::size(k_actions)] = nullptr;
    return names;
}();

// The entry for name, or nullptr.
inline const action_entry *find_action(std::string_view name) noexcept {
    for (const auto &a : k_actions)
        if (name == a.name) return &a;
    return nullptr;
}

}  // namespace oneds::restic
