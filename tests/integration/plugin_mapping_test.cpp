// loaded_plugin keeps a plugin's code mapped after the instance is gone
// (RTLD_NODELETE; host/loaded_plugin.cpp says why).
#define BOOST_TEST_MODULE host_plugin_mapping_test
#include <boost/test/unit_test.hpp>

#include "host/loaded_plugin.hpp"

#include <dlfcn.h>

#include <string>

BOOST_AUTO_TEST_CASE(a_plugin_stays_mapped_after_it_is_unloaded) {
    const std::string path = ONEDS_TEST_TESTDRV_PATH;
    BOOST_REQUIRE_MESSAGE(::dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD) == nullptr, "loaded before the test");
    auto plugin = oneds::host::loaded_plugin::load(path, "testdrv", {}, {});
    BOOST_TEST(plugin->name() == "testdrv");
    plugin.reset();  // destroy() and dlclose()
    void *still = ::dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
    BOOST_TEST(still != nullptr,
               "the plugin was unmapped: a thread it left would crash, LeakSanitizer would "
               "report its libraries' globals as leaks");
    if (still != nullptr) ::dlclose(still);
}
