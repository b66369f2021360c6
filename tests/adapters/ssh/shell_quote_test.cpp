#define BOOST_TEST_MODULE adapter_ssh_shell_quote_test
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "adapters/ssh/shell_quote.hpp"
#include "tests/adapters/ssh/hostile_words.hpp"
#include "tests/support/sshd_fixture.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace bdata = boost::unit_test::data;
using oneds::adapters::ssh::is_env_name;
using oneds::adapters::ssh::pid_report_prefix;
using oneds::adapters::ssh::remote_command_line;
using oneds::adapters::ssh::shell_quote;
using oneds::test::hostile_words;
using oneds::test::run_argv;

namespace {

using oneds::test::split_nul;

// The shells a remote login shell is likely to be; those installed here.
std::vector<std::string> shells() {
    std::vector<std::string> out;
    for (const char *sh : {"/bin/sh", "/bin/dash", "/bin/bash", "/bin/zsh", "/bin/ksh", "/bin/mksh"})
        if (std::filesystem::exists(sh)) out.emplace_back(sh);
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shell_quote_text)

BOOST_AUTO_TEST_CASE(words_go_in_single_quotes) {
    BOOST_TEST(shell_quote("abc") == "'abc'");
    BOOST_TEST(shell_quote("") == "''");
    BOOST_TEST(shell_quote("a b") == "'a b'");
    BOOST_TEST(shell_quote("$HOME") == "'$HOME'");
}

BOOST_AUTO_TEST_CASE(single_quote_is_closed_escaped_and_reopened) {
    BOOST_TEST(shell_quote("it's") == "'it'\\''s'");
    BOOST_TEST(shell_quote("'") == "''\\'''");
}

BOOST_AUTO_TEST_CASE(command_line_is_the_quoted_words) {
    BOOST_TEST(remote_command_line({"printf", "%s\\0", "a b"}, {}, false) == "'printf' '%s\\0' 'a b'");
}

BOOST_AUTO_TEST_CASE(environment_becomes_an_env_prefix) {
    BOOST_TEST(remote_command_line({"restic", "snapshots"}, {{"B", "two words"}, {"A", "it's"}}, false) ==
               "'env' 'A=it'\\''s' 'B=two words' 'restic' 'snapshots'");
}

BOOST_AUTO_TEST_CASE(pid_report_is_the_only_unquoted_text) {
    const std::string line = remote_command_line({"sleep", "60"}, {{"X", "1"}}, true);
    BOOST_TEST(line == "echo ONEDS_PID=$$ >&2; exec 'env' 'X=1' 'sleep' '60'");
    BOOST_TEST(line.starts_with(pid_report_prefix));
}

BOOST_DATA_TEST_CASE(bad_environment_names_are_refused,
                     bdata::make(std::vector<std::string>{"", "1A", "A-B", "A B", "A=B", "A.B", "\xc3\xa4", "A\nB"}),
                     name) {
    BOOST_TEST(!is_env_name(name));
    BOOST_CHECK_THROW((void)remote_command_line({"true"}, {{name, "v"}}, false), std::invalid_argument);
}

BOOST_DATA_TEST_CASE(good_environment_names_pass,
                     bdata::make(std::vector<std::string>{"A", "_", "RESTIC_PASSWORD", "a1", "_9z"}), name) {
    BOOST_TEST(is_env_name(name));
    BOOST_CHECK_NO_THROW((void)remote_command_line({"true"}, {{name, "v"}}, false));
}

BOOST_AUTO_TEST_CASE(refusals_never_quote_a_value) {
    try {
        (void)remote_command_line({"true"}, {{"BAD NAME", "hunter2"}, {"OK", std::string("x\0y", 3)}}, false);
        BOOST_FAIL("accepted");
    } catch (const std::invalid_argument &e) {
        BOOST_TEST(std::string(e.what()).find("hunter2") == std::string::npos, e.what());
    }
    try {
        (void)remote_command_line({"true"}, {{"OK", std::string("hunter2\0", 8)}}, false);
        BOOST_FAIL("accepted a NUL");
    } catch (const std::invalid_argument &e) {
        BOOST_TEST(std::string(e.what()).find("hunter2") == std::string::npos, e.what());
        BOOST_TEST(std::string(e.what()).find("OK") != std::string::npos, e.what());
    }
}

BOOST_AUTO_TEST_CASE(program_names_exec_or_env_would_misread_are_refused) {
    BOOST_CHECK_THROW((void)remote_command_line({}, {}, false), std::invalid_argument);
    BOOST_CHECK_THROW((void)remote_command_line({""}, {}, true), std::invalid_argument);
    BOOST_CHECK_THROW((void)remote_command_line({"-c", "id"}, {}, true), std::invalid_argument);
    BOOST_CHECK_THROW((void)remote_command_line({"A=1"}, {{"B", "2"}}, false), std::invalid_argument);
    BOOST_CHECK_THROW((void)remote_command_line({"echo", std::string("a\0b", 3)}, {}, false), std::invalid_argument);
    // A leading '-' is fine after the program name.
    BOOST_CHECK_NO_THROW((void)remote_command_line({"echo", "-n"}, {}, false));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(shell_quote_round_trip)

// The test runs a shell with -c on purpose: that is what sshd does with the
// line on the remote host. Production code never does.
BOOST_DATA_TEST_CASE(hostile_words_come_back_byte_identical, bdata::make(shells()), shell) {
    const auto words = hostile_words();
    std::vector<std::string> argv{"printf", "%s\\0"};
    argv.insert(argv.end(), words.begin(), words.end());
    std::string out;
    std::string err;
    const int status = run_argv({shell, "-c", remote_command_line(argv, {}, false)}, &out, &err);
    BOOST_TEST_REQUIRE(status == 0, err);
    const auto back = split_nul(out);
    BOOST_TEST_REQUIRE(back.size() == words.size());
    for (std::size_t i = 0; i < words.size(); ++i) BOOST_TEST(back[i] == words[i], "word " << i);
}

BOOST_DATA_TEST_CASE(hostile_environment_values_arrive_exactly, bdata::make(shells()), shell) {
    for (const auto &value : hostile_words()) {
        std::string out;
        std::string err;
        const std::string line = remote_command_line({"printenv", "ONEDS_VALUE"}, {{"ONEDS_VALUE", value}}, false);
        const int status = run_argv({shell, "-c", line}, &out, &err);
        BOOST_TEST(status == 0, err);
        BOOST_TEST(out == value + "\n");
    }
}

BOOST_DATA_TEST_CASE(pid_report_names_the_process_that_runs_the_command, bdata::make(shells()), shell) {
    std::string out;
    std::string err;
    // exec keeps the pid: the command (here a shell printing its own pid)
    // reports the same number as the prefix did.
    const std::string line = remote_command_line({"sh", "-c", "echo $$"}, {}, true);
    const int status = run_argv({shell, "-c", line}, &out, &err);
    BOOST_TEST_REQUIRE(status == 0, err);
    BOOST_TEST(err == "ONEDS_PID=" + out);
}

BOOST_AUTO_TEST_CASE(a_word_is_never_split_or_globbed_in_a_directory_full_of_matches) {
    // Globbing needs matches to show: run in a directory where "*" matches.
    const auto dir = std::filesystem::temp_directory_path() / "oneds-shell-quote-glob";
    std::filesystem::create_directories(dir);
    for (const char *name : {"a", "b c", "-rf"}) std::ofstream(dir / name).close();
    std::string out;
    std::string err;
    const std::string line = "cd " + shell_quote(dir.string()) + " && " +
                             remote_command_line({"printf", "%s\\0", "*", "?", "-*", "[ab]"}, {}, false);
    const int status = run_argv({"/bin/sh", "-c", line}, &out, &err);
    std::filesystem::remove_all(dir);
    BOOST_TEST_REQUIRE(status == 0, err);
    BOOST_TEST(split_nul(out) == (std::vector<std::string>{"*", "?", "-*", "[ab]"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
