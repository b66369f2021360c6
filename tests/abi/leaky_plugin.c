/* A deliberately badly built "plugin" exporting a second symbol: the export
 * check must fail on it (its test expects that failure message), proving it does
 * look at the symbol table instead of passing vacuously. */
#include <oneds/plugin.h>

ONEDS_EXPORT int oneds_leaked_helper(void);
ONEDS_EXPORT int oneds_leaked_helper(void) { return 42; }

const oneds_plugin_api *oneds_plugin_entry(uint32_t host_abi_major) {
    (void)host_abi_major;
    return NULL;
}
