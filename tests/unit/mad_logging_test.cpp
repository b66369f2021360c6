// host/mad_logging.hpp (OpenNebula's conventions for a MAD's log and niceness)
// and the action-mode line form of host/action_mode.hpp, as pure functions.
#define BOOST_TEST_MODULE mad_logging
#include <boost/test/unit_test.hpp>

#include "host/action_mode.hpp"
#include "host/mad_logging.hpp"

#include <oneds/plugin.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace oneds::host;

// A file with content in a fresh temporary directory, removed at the end.
struct temp_file {
    std::filesystem::path dir;
    std::string path;
    explicit temp_file(const std::string &content) {
        std::string templ = (std::filesystem::temp_directory_path() / "oneds-ml-XXXXXX").string();
        BOOST_REQUIRE(::mkdtemp(templ.data()) != nullptr);
        dir = templ;
        path = (dir / "defaultrc").string();
        std::ofstream(path) << content;
    }
    ~temp_file() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

// ONE_LOCATION set (or unset) for one test.
struct one_location {
    explicit one_location(const char *value) {
        if (value != nullptr)
            ::setenv("ONE_LOCATION", value, 1);
        else
            ::unsetenv("ONE_LOCATION");
    }
    ~one_location() { ::unsetenv("ONE_LOCATION"); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(log_file_is_named_and_placed_as_madcommon_does) {
    {
        one_location none(nullptr);
        BOOST_TEST(default_mad_log_file("/usr/lib/one/mads/one_ds_host") == "/var/log/one/one_ds_host.log");
        BOOST_TEST(default_mad_log_file("one_ds_host.bin") == "/var/log/one/one_ds_host.log");
        BOOST_TEST(default_defaultrc() == "/etc/one/defaultrc");
    }
    one_location self_contained("/opt/one");
    BOOST_TEST(default_mad_log_file("/opt/one/lib/mads/one_ds_host") == "/opt/one/var/one_ds_host.log");
    BOOST_TEST(default_defaultrc() == "/opt/one/etc/defaultrc");
}

BOOST_AUTO_TEST_CASE(priority_is_the_last_assignment_in_defaultrc) {
    temp_file rc("# defaults\nONE_MAD_DEBUG=\nPRIORITY=19\nexport PRIORITY=\"5\"  # lower\nPRIORITY_X=1\n");
    BOOST_TEST(read_defaultrc_priority(rc.path).value_or("none") == "5");
    temp_file none("ONE_MAD_DEBUG=\n");
    BOOST_TEST(!read_defaultrc_priority(none.path).has_value());
    BOOST_TEST(!read_defaultrc_priority(none.path + ".missing").has_value());
}

// OpenNebula documents "ONE_MAD_DEBUG=1 in defaultrc" to debug a driver:
// the launcher sources the file over its environment, so the file wins.
BOOST_AUTO_TEST_CASE(one_mad_debug_comes_from_defaultrc_before_the_environment) {
    temp_file on("ONE_MAD_DEBUG=1\n");
    temp_file off("export\tONE_MAD_DEBUG=\t# off\n");
    temp_file silent("PRIORITY=19\n");
    ::unsetenv("ONE_MAD_DEBUG");
    BOOST_TEST(one_mad_debug(on.path));
    BOOST_TEST(!one_mad_debug(off.path));
    BOOST_TEST(!one_mad_debug(silent.path));
    BOOST_TEST(!one_mad_debug(silent.path + ".missing"));
    ::setenv("ONE_MAD_DEBUG", "1", 1);
    BOOST_TEST(one_mad_debug(silent.path));
    BOOST_TEST(one_mad_debug(silent.path + ".missing"));
    BOOST_TEST(!one_mad_debug(off.path));
    ::unsetenv("ONE_MAD_DEBUG");
    temp_file tabbed("export\tPRIORITY=7\t# lower\n");
    BOOST_TEST(read_defaultrc(tabbed.path, "PRIORITY").value_or("none") == "7");
}

BOOST_AUTO_TEST_CASE(bad_priority_is_a_warning_and_changes_nothing) {
    errno = 0;
    const int before = ::getpriority(PRIO_PROCESS, 0);
    for (const std::string bad : {"high", "", "5x", "1.5"}) {
        const auto r = apply_priority(bad);
        BOOST_TEST(!r.changed, bad);
        BOOST_TEST(r.warning.find("is not a whole number") != std::string::npos, r.warning);
    }
    const auto zero = apply_priority("0");
    BOOST_TEST(!zero.changed);
    BOOST_TEST(zero.warning.empty());
    BOOST_TEST(::getpriority(PRIO_PROCESS, 0) == before);
}

// In a child: a niceness, once raised, cannot be lowered again without privilege.
BOOST_AUTO_TEST_CASE(priority_is_added_to_the_niceness_and_clamped) {
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        const int before = ::getpriority(PRIO_PROCESS, 0);
        const auto r = apply_priority("+2");
        if (!r.changed || r.niceness != std::min(19, before + 2) || ::getpriority(PRIO_PROCESS, 0) != r.niceness)
            ::_exit(1);
        const auto top = apply_priority("100");
        ::_exit(::getpriority(PRIO_PROCESS, 0) == 19 && top.warning.empty() ? 0 : 2);
    }
    int status = 0;
    BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0);
}

BOOST_AUTO_TEST_CASE(action_lines_use_the_words_opennebula_parses) {
    BOOST_TEST(action_log_line(ONEDS_LOG_WARNING, 42, "backup", "disk 0 slow") == "WARN: 42 disk 0 slow\n");
    BOOST_TEST(action_log_line(ONEDS_LOG_ERROR, 42, "backup", "a\nb") == "ERROR: 42 a b\n");
    BOOST_TEST(action_log_line(ONEDS_LOG_DEBUG, -1, "monitor", "3 repos") == "DEBUG: monitor: 3 repos\n");
    BOOST_TEST(action_log_line(ONEDS_LOG_INFO, 0, "backup", "x") == "INFO: 0 x\n");
    BOOST_TEST(level_enabled(ONEDS_LOG_INFO, "info"));
    BOOST_TEST(!level_enabled(ONEDS_LOG_DEBUG, "info"));
    BOOST_TEST(level_enabled(ONEDS_LOG_DEBUG, "trace"));
    BOOST_TEST(!level_enabled(ONEDS_LOG_WARNING, "error"));
    BOOST_TEST(!level_enabled(ONEDS_LOG_ERROR, "off"));
}
