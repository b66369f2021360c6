// Compiled with -std=c++20 -Wall -Wextra -pedantic -Werror -fsyntax-only: the C
// header must stay usable from C++ hosts and plugins without warnings.
#include <oneds/plugin.h>

static_assert(ONEDS_ABI_MAJOR == 1u);
static_assert(sizeof(oneds_plugin_entry_fn) == sizeof(void (*)()));

bool oneds_abi_cxx20_table_usable(const oneds_plugin_api *api);
bool oneds_abi_cxx20_table_usable(const oneds_plugin_api *api) {
    return api != nullptr && api->abi_major == ONEDS_ABI_MAJOR && ONEDS_HAS_MEMBER(oneds_plugin_api, api, cancel);
}
