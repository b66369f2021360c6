// Specification of one_ds_host in action mode: the process a
// remotes/datastore/<driver>/<action> wrapper execs, with the stock scripts'
// contract (host/action_mode.hpp):
//   stdout  the result on success
//   stderr  the error on failure; progress as "<LEVEL>: <vm id> <text>" for a
//           request about one VM, else "<LEVEL>: <action>: <text>", in the form
//           OpenNebula's DriverExecHelper parses (LEVEL ERROR/INFO/WARN/DEBUG)
//   exit    0 success, 1 "Operation not supported", 255 other failures,
//           2 bad command line or config file
//   stdin   plain XML or base64 XML
//   SIGTERM/SIGINT/SIGHUP cancel the action.
// The host is run from an argv vector, never through a shell.
#define BOOST_TEST_MODULE host_action
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>

#include <filesystem>

#include "tests/integration/action_process.hpp"
#include "tests/integration/oned_requests.hpp"
#include "tests/integration/scratch_dir.hpp"

#include <csignal>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using oneds::test::process_result;
using oneds::test::scratch_dir;
using oneds::test::spawned_process;
namespace built = oneds::test::built;

bool current_test_failed() {
    using namespace boost::unit_test;
    return !results_collector.results(framework::current_test_case().p_id).passed();
}

// A document as the backup scripts get it on stdin: plain XML.
const std::string k_backup_document =
    "<DS_DRIVER_ACTION_DATA><DATASTORE><ID>101</ID><NAME>backups</NAME><DS_MAD>testdrv</DS_MAD>"
    "<TM_MAD>-</TM_MAD><TYPE>3</TYPE><TEMPLATE><RESTIC_PASSWORD>secret</RESTIC_PASSWORD></TEMPLATE>"
    "</DATASTORE><VM><ID>7</ID><NAME>vm-7</NAME></VM></DS_DRIVER_ACTION_DATA>";

struct action_fixture {
    scratch_dir dir;
    // No /etc/one/one_ds_host.conf may leak in: ONE_LOCATION points here.
    std::map<std::string, std::string> env{{"ONE_LOCATION", dir.path().string()}};
    std::vector<std::string> last_argv;
    process_result last;

    // {host, "action", words...}
    std::vector<std::string> host_action(std::vector<std::string> words) const {
        words.insert(words.begin(), {built::host(), "action"});
        return words;
    }

    process_result run(const std::vector<std::string> &words, const std::string &input = {}) {
        last_argv = host_action(words);
        last = oneds::test::run_process(last_argv, input, env, 20s);
        return last;
    }

    ~action_fixture() {
        if (!current_test_failed()) return;
        std::string argv;
        for (const auto &a : last_argv) argv += " [" + a + "]";
        BOOST_TEST_MESSAGE("argv:" << argv << "\nexit " << last.exit_code << " signal " << last.term_signal << " after "
                                   << last.seconds() << " s\nstdout:\n"
                                   << last.out << "\nstderr:\n"
                                   << last.err);
    }
};

// One stderr line as OpenNebula's driver reads an action's stderr
// (DriverExecHelper#get_info_from_execution, OpenNebula 7): a line matching
// ^(ERROR|INFO|WARN|DEBUG):\s+(\d+)?\s*(.*)$ becomes "LOG <E|I|W|D> <id or -1>
// <message>"; any other line is part of the error message.
struct parsed_stderr_line {
    char severity;
    long long id;  // -1 when the line has no number
    std::string message;
};

std::optional<parsed_stderr_line> parse_like_opennebula(const std::string &line) {
    static const std::regex re(R"(^(ERROR|INFO|WARN|DEBUG):\s+(\d+)?\s*(.*)$)");
    std::smatch m;
    if (!std::regex_match(line, m, re)) return std::nullopt;
    return parsed_stderr_line{m[1].str() == "WARN" ? 'W' : m[1].str()[0], m[2].matched ? std::stoll(m[2]) : -1,
                              m[3].str()};
}

std::vector<std::string> lines_of(const std::string &text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(action_mode, action_fixture)

// --- The exit-code contract --------------------------------------------------------

BOOST_AUTO_TEST_CASE(success_prints_info_on_stdout_and_exits_0) {
    const auto r = run({"testdrv", "echo", "a", "b"});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out == "echo a b\n");
    BOOST_TEST(r.err == "");
}

BOOST_AUTO_TEST_CASE(restic_cp_says_operation_not_supported_and_exits_1) {
    oneds::test::action_data d;
    d.ds_mad = "restic";
    d.image = oneds::test::image_xml(7);
    const auto r = run({"--plugin", std::string("restic=") + built::restic_plugin(), "restic", "cp", "7"},
                       oneds::test::action_data_payload(d));
    BOOST_TEST(r.exit_code == 1);
    BOOST_TEST(r.err == "cp: Operation not supported\n");
    BOOST_TEST(r.out == "");
}

BOOST_AUTO_TEST_CASE(action_the_plugin_does_not_list_exits_1) {
    const auto r = run({"testdrv", "snap_delete", "7"});
    BOOST_TEST(r.exit_code == 1);
    BOOST_TEST(r.err == "snap_delete: Operation not supported\n");
    BOOST_TEST(r.out == "");
}

BOOST_AUTO_TEST_CASE(failure_exits_255_with_the_error_on_stderr) {
    const auto r = run({"testdrv", "fail", "disk full"});
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err == "disk full\n");
    BOOST_TEST(r.out == "");
}

BOOST_AUTO_TEST_CASE(unknown_driver_exits_255_naming_the_driver) {
    const auto r = run({"nosuchdrv", "monitor", "5"});
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("Datastore driver 'nosuchdrv' not available") != std::string::npos);
    BOOST_TEST(r.out == "");
}

// --- stdin ----------------------------------------------------------------------------

struct stdin_case {
    std::string name;
    std::string input;
};
std::ostream &operator<<(std::ostream &o, const stdin_case &c) { return o << c.name; }

std::string wrapped_base64(const std::string &text, std::size_t column) {
    const auto b64 = oneds::test::base64_encode(text);
    std::string out;
    for (std::size_t i = 0; i < b64.size(); i += column) out += b64.substr(i, column) + "\n";
    return out;
}

const std::vector<stdin_case> k_stdin_cases = {
    {"plain XML (backup, ls)", k_backup_document},
    {"plain XML after blank lines", "\n\n  " + k_backup_document + "\n"},
    {"base64 on one line (oned's MAD payload)", oneds::test::base64_encode(k_backup_document)},
    {"base64 with a newline (echo $DRV_ACTION | script)", oneds::test::base64_encode(k_backup_document) + "\n"},
    {"base64 in 60-column lines (vm.xml)", wrapped_base64(k_backup_document, 60)},
};

BOOST_DATA_TEST_CASE_F(action_fixture, stdin_as_plain_xml_or_base64_reaches_the_plugin,
                       boost::unit_test::data::make(k_stdin_cases), c) {
    const auto root = run({"testdrv", "docroot"}, c.input);
    BOOST_TEST(root.exit_code == 0);
    BOOST_TEST(root.out == "DS_DRIVER_ACTION_DATA\n");
    const auto name = run({"testdrv", "xpath", "/DS_DRIVER_ACTION_DATA/DATASTORE/NAME"}, c.input);
    BOOST_TEST(name.exit_code == 0);
    BOOST_TEST(name.out == "backups\n");
}

BOOST_AUTO_TEST_CASE(empty_stdin_gives_the_action_no_document) {
    const auto r = run({"testdrv", "docroot"});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out == "(none)\n");
}

const std::vector<stdin_case> k_bad_stdin_cases = {
    {"text", "hello world\n"},
    {"base64 of text", oneds::test::base64_encode("hello world")},
    {"base64 with a stray character", oneds::test::base64_encode(k_backup_document) + "*"},
};

BOOST_DATA_TEST_CASE_F(action_fixture, stdin_that_is_neither_xml_nor_base64_exits_255,
                       boost::unit_test::data::make(k_bad_stdin_cases), c) {
    const auto r = run({"testdrv", "docroot"}, c.input);
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("neither XML nor base64") != std::string::npos);
    BOOST_TEST(r.out == "");
}

// --- argv -------------------------------------------------------------------------------

// ls is called as "ls -i <image id>": everything after ACTION is the action's.
BOOST_AUTO_TEST_CASE(args_after_action_reach_it_verbatim) {
    const auto r =
        run({"testdrv", "echo", "-i", "3", "--plugin", "x=y", "-c", "/nonexistent", "--", "--help", "two words", ""});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out == "echo -i 3 --plugin x=y -c /nonexistent -- --help two words \n");
}

BOOST_AUTO_TEST_CASE(options_before_driver_are_the_hosts) {
    const auto r = run({"--plugin", std::string("testdrv=") + built::testdrv_plugin(), "--log-level", "debug",
                        "testdrv", "echo", "-i", "3"});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out == "echo -i 3\n");
}

BOOST_AUTO_TEST_CASE(missing_driver_or_action_exits_2_with_usage) {
    const auto r = run({"testdrv"});
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST(r.err.find("DRIVER and ACTION") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(unknown_host_option_exits_2_naming_it) {
    const auto r = run({"--no-such-option", "testdrv", "echo"});
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST(r.err.find("no-such-option") != std::string::npos);
}

// --- Plugins and configuration ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(plugin_option_selects_the_file_loaded) {
    const auto good = run({"--plugin", std::string("testdrv=") + built::testdrv_plugin(), "testdrv", "echo"});
    BOOST_TEST(good.exit_code == 0);
    BOOST_TEST(good.out == "echo\n");
    // The same driver from a path that does not exist: the path is the one used.
    const auto bad = run({"--plugin", "testdrv=/nonexistent/libone_ds_testdrv.so", "testdrv", "echo"});
    BOOST_TEST(bad.exit_code == 255);
    BOOST_TEST(bad.err.find("/nonexistent/libone_ds_testdrv.so") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(config_file_plugin_section_reaches_the_plugin) {
    const auto config = dir.write("one_ds_host.conf", std::string("plugin = testdrv=") + built::testdrv_plugin() +
                                                          "\n\n[plugin.testdrv]\ngreeting = hello world\n"
                                                          "repository = sftp:backup@host:/srv/restic\n");
    const auto greeting = run({"-c", config, "testdrv", "config", "greeting"});
    BOOST_TEST(greeting.exit_code == 0);
    BOOST_TEST(greeting.out == "hello world\n");
    const auto repo = run({"-c", config, "testdrv", "config", "repository"});
    BOOST_TEST(repo.out == "sftp:backup@host:/srv/restic\n");
    // Host settings come under host.*; action mode runs one request.
    const auto mode = run({"-c", config, "testdrv", "config", "host.mode"});
    BOOST_TEST(mode.out == "action\n");
    const auto threads = run({"-c", config, "testdrv", "config", "host.threads"});
    BOOST_TEST(threads.out == "1\n");
    const auto missing = run({"-c", config, "testdrv", "config", "no_such_key"});
    BOOST_TEST(missing.exit_code == 255);
    BOOST_TEST(missing.err == "no config key 'no_such_key'\n");
}

BOOST_AUTO_TEST_CASE(config_file_with_an_unknown_key_exits_2_naming_it) {
    const auto config = dir.write("one_ds_host.conf", "log_level = info\nthreds = 4\n");
    const auto r = run({"-c", config, "testdrv", "echo"});
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST(r.err.find("unknown key 'threds'") != std::string::npos);
    BOOST_TEST(r.err.find(config) != std::string::npos, "names the file");
    BOOST_TEST(r.out == "");
}

BOOST_AUTO_TEST_CASE(unreadable_config_file_exits_2) {
    const auto r = run({"-c", dir.file("absent.conf"), "testdrv", "echo"});
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST(r.err.find(dir.file("absent.conf")) != std::string::npos);
}

BOOST_AUTO_TEST_CASE(plugin_that_refuses_its_config_exits_255_with_its_reason) {
    const auto config = dir.write("one_ds_host.conf", "[plugin.testdrv]\nfail_create = bad repository URL\n");
    const auto r = run({"-c", config, "testdrv", "echo"});
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("fail_create is set: bad repository URL") != std::string::npos);
}

// --- Progress and cancellation --------------------------------------------------------------

BOOST_AUTO_TEST_CASE(progress_log_lines_appear_on_stderr) {
    const auto r = run({"testdrv", "log", "2"});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.err == "INFO: log: progress 1/2\nINFO: log: progress 2/2\n");
    BOOST_TEST(r.out == "log 2\n");
}

// log_file = - is MAD mode's stderr; the config file is shared by both modes,
// and in action mode stderr is the action's: no log, and no file named "-".
BOOST_AUTO_TEST_CASE(log_file_dash_means_no_log_in_action_mode) {
    const auto dash = std::filesystem::current_path() / "-";
    std::filesystem::remove(dash);
    const auto r = run({"--log-file", "-", "--log-level", "debug", "testdrv", "log", "1"});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.err == "INFO: log: progress 1/1\n");
    BOOST_TEST(!std::filesystem::exists(dash), "action mode created a log file named '-'");
    std::filesystem::remove(dash);
}

// A request about one VM: every line carries the VM id where OpenNebula looks
// for it, so that the VMM driver files it in /var/log/one/<vm>.log; WARN, not
// WARNING (which OpenNebula would take for part of the error message).
BOOST_AUTO_TEST_CASE(lines_about_a_vm_carry_its_id_in_the_form_opennebula_parses) {
    const auto r = run({"--log-level", "debug", "testdrv", "vmlog", "42"});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.err == "DEBUG: 42 debug line\nINFO: 42 progress 1/1\nWARN: 42 warning line\nERROR: 42 error line\n");
    const std::vector<std::pair<char, std::string>> want = {
        {'D', "debug line"}, {'I', "progress 1/1"}, {'W', "warning line"}, {'E', "error line"}};
    const auto lines = lines_of(r.err);
    BOOST_REQUIRE_EQUAL(lines.size(), want.size());
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto p = parse_like_opennebula(lines[i]);
        BOOST_REQUIRE_MESSAGE(p.has_value(), "OpenNebula would take '" << lines[i] << "' for error text");
        BOOST_TEST(p->severity == want[i].first, lines[i]);
        BOOST_TEST(p->id == 42, lines[i]);
        BOOST_TEST(p->message == want[i].second, lines[i]);
    }
}

// Lines about no single object keep the action's name in front: a text that
// starts with a digit must not be read as an object id.
BOOST_AUTO_TEST_CASE(lines_about_no_object_carry_no_id) {
    const auto r = run({"testdrv", "log", "1"});
    BOOST_TEST(r.exit_code == 0);
    const auto p = parse_like_opennebula(lines_of(r.err).at(0));
    BOOST_REQUIRE(p.has_value());
    BOOST_TEST(p->id == -1);
    BOOST_TEST(p->message == "log: progress 1/1");
}

// log_level filters the plugin's lines on stderr as it filters the host's log.
BOOST_AUTO_TEST_CASE(log_level_filters_the_lines_on_stderr) {
    BOOST_TEST(run({"testdrv", "vmlog", "42"}).err ==
               "INFO: 42 progress 1/1\nWARN: 42 warning line\nERROR: 42 error line\n");
    BOOST_TEST(run({"--log-level", "warning", "testdrv", "vmlog", "42"}).err ==
               "WARN: 42 warning line\nERROR: 42 error line\n");
    BOOST_TEST(run({"--log-level", "off", "testdrv", "vmlog", "42"}).err == "");
}

// On failure the error text is what OpenNebula keeps of the lines it cannot
// parse; the progress lines before it stay log lines.
BOOST_AUTO_TEST_CASE(error_text_is_the_only_unparsed_output_of_a_failure) {
    const auto r = run({"testdrv", "fail", "disk 0 could not be read"});
    BOOST_TEST(r.exit_code == 255);
    std::string error_text;
    for (const auto &line : lines_of(r.err))
        if (!parse_like_opennebula(line)) error_text += line;
    BOOST_TEST(error_text == "disk 0 could not be read");
}

const std::vector<int> k_cancel_signals = {SIGTERM, SIGINT, SIGHUP};

// backup_cancel stops a running backup with SIGTERM.
BOOST_DATA_TEST_CASE_F(action_fixture, signal_during_sleep_cancels_and_exits_255_quickly,
                       boost::unit_test::data::make(k_cancel_signals), sig) {
    last_argv = host_action({"testdrv", "sleep", "60000"});
    spawned_process p(last_argv, {}, env);
    // Before its handler is installed the signal would just kill it.
    BOOST_TEST_REQUIRE(p.wait_for_signal_handler(sig, 10s));
    std::this_thread::sleep_for(200ms);
    const auto sent = std::chrono::steady_clock::now();
    p.send_signal(sig);
    last = p.wait(20s);
    const double after = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
    BOOST_TEST(!last.killed);
    BOOST_TEST(last.exit_code == 255);
    BOOST_TEST(last.err.find("cancelled") != std::string::npos);
    BOOST_TEST(last.out == "");
    BOOST_TEST(after < 3.0);
}

// oned may cancel while the action still reads its standard input (or loads
// its plugin): that is a cancel with exit 255 too, not death by the signal,
// and the request never reaches the plugin.
BOOST_DATA_TEST_CASE_F(action_fixture, signal_while_reading_stdin_cancels_before_the_action_starts,
                       boost::unit_test::data::make(k_cancel_signals), sig) {
    last_argv = host_action({"testdrv", "sleep", "60000"});
    // The input is held back: the host blocks reading it.
    spawned_process p(last_argv, "<DS_DRIVER_ACTION_DATA/>", env, true);
    BOOST_TEST_REQUIRE(p.wait_for_signal_handler(sig, 10s));
    std::this_thread::sleep_for(100ms);
    p.send_signal(sig);
    const auto sent = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(100ms);
    p.release_input();
    last = p.wait(20s);
    BOOST_TEST(!last.killed);
    BOOST_TEST(last.exit_code == 255);
    BOOST_TEST(
        last.err.find("sleep: cancelled (signal " + std::to_string(sig) + ") before it started") != std::string::npos,
        last.err);
    BOOST_TEST(last.out == "");
    BOOST_TEST(std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count() < 3.0);
}

// A cancel that arrives as soon as the handler is installed, possibly before
// the request reaches the plugin, must still cancel it. The window is narrow,
// so it is tried many times, several processes at once.
BOOST_AUTO_TEST_CASE(signal_right_after_start_is_not_lost) {
    constexpr int k_batches = 60;
    constexpr int k_parallel = 4;
    const auto argv = host_action({"testdrv", "sleep", "60000"});
    std::vector<std::string> failures;
    std::mutex failures_mutex;
    for (int b = 0; b < k_batches; ++b) {
        std::vector<std::thread> runs;
        for (int i = 0; i < k_parallel; ++i)
            runs.emplace_back([&] {
                spawned_process p(argv, {}, env);
                const bool ready = p.wait_for_signal_handler(SIGTERM, 10s);
                const auto sent = std::chrono::steady_clock::now();
                p.send_signal(SIGTERM);
                // A lost cancel would sleep the full 60 s: the wait is
                // generous (four sanitized hosts on a busy machine may start
                // slowly), and how fast the cancel acted is checked apart.
                const auto r = p.wait(30s);
                const double after = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
                if (ready && r.exit_code == 255 && !r.killed && after < 5.0) return;
                std::lock_guard lock(failures_mutex);
                failures.push_back(std::string(ready ? "" : "handler never installed; ") +
                                   (r.killed ? "still running 30 s after SIGTERM"
                                             : "exit " + std::to_string(r.exit_code) + " " + std::to_string(after) +
                                                   " s after SIGTERM (under 5 s expected)") +
                                   ", stderr: " + r.err);
            });
        for (auto &t : runs) t.join();
    }
    BOOST_TEST(failures.empty(), failures.size() << " of " << k_batches * k_parallel << " runs failed, e.g. "
                                                 << (failures.empty() ? "" : failures.front()));
}

BOOST_AUTO_TEST_SUITE_END()
