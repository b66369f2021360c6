/* Compiled as strict C11 (-std=c11 -Wall -Wextra -pedantic -Werror), both by a
 * -fsyntax-only ctest and as an object library, so a header change a C host
 * cannot compile fails the build and the abi label. It also pins the numbers
 * and offsets the ABI promises never to change: a renumbered status code or a
 * member inserted before an existing one breaks every built host and plugin,
 * so it must break this file first. */
#include <oneds/plugin.h>

#include <stddef.h>
#include <stdint.h>

/* Status codes and log levels are never renumbered (plugin.h, "Versioning"). */
_Static_assert(ONEDS_OK == 0, "status code renumbered");
_Static_assert(ONEDS_ERR_FAILED == 1, "status code renumbered");
_Static_assert(ONEDS_ERR_UNSUPPORTED == 2, "status code renumbered");
_Static_assert(ONEDS_ERR_INVALID == 3, "status code renumbered");
_Static_assert(ONEDS_ERR_CANCELLED == 4, "status code renumbered");
_Static_assert(ONEDS_ERR_SHUTTING_DOWN == 5, "status code renumbered");
_Static_assert(ONEDS_ERR_ABI == 6, "status code renumbered");
_Static_assert(ONEDS_ERR_INTERNAL == 7, "status code renumbered");
_Static_assert(ONEDS_ERR_NOT_FOUND == 8, "status code renumbered");
_Static_assert(ONEDS_ERR_TIMEOUT == 9, "status code renumbered");
_Static_assert(ONEDS_LOG_ERROR == 'E', "log level renumbered");
_Static_assert(ONEDS_LOG_WARNING == 'W', "log level renumbered");
_Static_assert(ONEDS_LOG_INFO == 'I', "log level renumbered");
_Static_assert(ONEDS_LOG_DEBUG == 'D', "log level renumbered");
_Static_assert(ONEDS_ORIGIN_MAD == 1, "origin renumbered");
_Static_assert(ONEDS_ORIGIN_ACTION == 2, "origin renumbered");

/* ONEDS_HAS_MEMBER only works if struct_size is the first member of every
 * versioned struct. */
_Static_assert(offsetof(oneds_host_api, struct_size) == 0, "struct_size must come first");
_Static_assert(offsetof(oneds_config, struct_size) == 0, "struct_size must come first");
_Static_assert(offsetof(oneds_request, struct_size) == 0, "struct_size must come first");
_Static_assert(offsetof(oneds_plugin_api, struct_size) == 0, "struct_size must come first");

#if UINTPTR_MAX == UINT64_MAX && SIZE_MAX == UINT64_MAX
/* The ABI 1.0 layout on LP64: members are only ever appended, so these
 * offsets hold for every minor version of major 1. */
_Static_assert(offsetof(oneds_host_api, abi_minor) == 4, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_host_api, host_data) == 8, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_host_api, complete) == 16, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_host_api, log) == 24, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_config, count) == 8, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_config, entries) == 16, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_request, id) == 8, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_request, action) == 16, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_request, argc) == 24, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_request, argv) == 32, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_request, document) == 40, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_request, document_size) == 48, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_request, origin) == 56, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_request, oned_id) == 64, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_plugin_api, abi_major) == 4, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_plugin_api, abi_minor) == 8, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_plugin_api, name) == 16, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_plugin_api, version) == 24, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_plugin_api, actions) == 32, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_plugin_api, create) == 40, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_plugin_api, destroy) == 48, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_plugin_api, submit) == 56, "ABI 1.0 layout changed");
_Static_assert(offsetof(oneds_plugin_api, cancel) == 64, "ABI 1.0 layout changed");
/* Appended by 1.1 and 1.2, after everything of 1.0. */
_Static_assert(offsetof(oneds_host_api, write_output) == 32, "ABI 1.1 layout changed");
_Static_assert(offsetof(oneds_host_api, log_object) == 40, "ABI 1.2 layout changed");
_Static_assert(sizeof(oneds_host_api) == 48, "oneds_host_api grew without a new ABI minor");
#endif

/* A host that reads the table the way plugin.h tells it to. External linkage
 * so that neither the compiler nor -Wunused removes or flags it. */
int oneds_abi_c11_table_usable(const oneds_plugin_api *api);
int oneds_abi_c11_table_usable(const oneds_plugin_api *api) {
    return api != NULL && api->abi_major == ONEDS_ABI_MAJOR && ONEDS_HAS_MEMBER(oneds_plugin_api, api, cancel) &&
           api->cancel != NULL;
}

int oneds_abi_c11_host_usable(const oneds_host_api *host);
int oneds_abi_c11_host_usable(const oneds_host_api *host) {
    return ONEDS_HAS_MEMBER(oneds_host_api, host, log) && host->abi_minor <= ONEDS_ABI_MINOR;
}

int oneds_abi_c11_request_has_origin(const oneds_request *request);
int oneds_abi_c11_request_has_origin(const oneds_request *request) {
    return ONEDS_HAS_MEMBER(oneds_request, request, oned_id) &&
           (request->origin == ONEDS_ORIGIN_MAD || request->origin == ONEDS_ORIGIN_ACTION);
}

int oneds_abi_c11_config_nonempty(const oneds_config *config);
int oneds_abi_c11_config_nonempty(const oneds_config *config) {
    return ONEDS_HAS_MEMBER(oneds_config, config, entries) && config->count > 0;
}

/* The entry point's declared type matches the typedef used with dlsym(). */
const char *oneds_abi_c11_entry_symbol(void);
const char *oneds_abi_c11_entry_symbol(void) {
    oneds_plugin_entry_fn entry = &oneds_plugin_entry;
    (void)entry;
    return ONEDS_PLUGIN_ENTRY_SYMBOL;
}
