#define BOOST_TEST_MODULE adapter_process_local_runner_test
#include <boost/test/unit_test.hpp>

#include "adapters/process/local_runner.hpp"
#include "tests/adapters/process/test_cancellation.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using oneds::adapters::process::local_runner;
using oneds::adapters::process::local_runner_options;
using oneds::ports::command;
using oneds::ports::command_result;
using oneds::ports::error_kind;
using oneds::ports::run_options;
using oneds::test::test_cancellation;
using namespace std::chrono_literals;

namespace {

command_result run_ok(const command &cmd, const run_options &opts = {}) {
    local_runner runner;
    auto res = runner.run("", cmd, opts);
    BOOST_TEST_REQUIRE(res.has_value(), "run failed: " << (res ? std::string() : res.err().message));
    return std::move(res).value();
}

command_result run_ok(std::vector<std::string> argv) {
    command cmd;
    cmd.argv = std::move(argv);
    return run_ok(cmd);
}

std::vector<std::string> words_of(const std::string &text) {
    std::istringstream in(text);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

// Fields of /proc/<pid>/stat after the command name: state, ppid, pgrp,
// session, tty_nr, ...
std::vector<std::string> stat_fields_after_comm(const std::string &stat) {
    const auto close = stat.rfind(')');
    BOOST_TEST_REQUIRE(close != std::string::npos, stat);
    return words_of(stat.substr(close + 1));
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A process that has gone (or that only its reaper still has to collect).
bool process_gone(pid_t pid) {
    for (int i = 0; i < 100; ++i) {
        if (::kill(pid, 0) == -1 && errno == ESRCH) return true;
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        if (!text.empty() && stat_fields_after_comm(text).front() == "Z") return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

// Cancels c from another thread after delay; joins on destruction.
class cancel_later {
public:
    cancel_later(test_cancellation &c, std::chrono::milliseconds delay)
        : thread_([&c, delay] {
              std::this_thread::sleep_for(delay);
              c.cancel();
          }) {}
    ~cancel_later() { thread_.join(); }
    cancel_later(const cancel_later &) = delete;
    cancel_later &operator=(const cancel_later &) = delete;

private:
    std::thread thread_;
};

// Blocks signals in the calling thread for its lifetime, as a host might.
class blocked_signals {
public:
    explicit blocked_signals(std::initializer_list<int> signals) {
        sigset_t set;
        sigemptyset(&set);
        for (const int s : signals) sigaddset(&set, s);
        pthread_sigmask(SIG_BLOCK, &set, &old_);
    }
    ~blocked_signals() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
    blocked_signals(const blocked_signals &) = delete;
    blocked_signals &operator=(const blocked_signals &) = delete;

private:
    sigset_t old_{};
};

struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string templ = (fs::temp_directory_path() / "oneds-local-runner-XXXXXX").string();
        BOOST_TEST_REQUIRE(::mkdtemp(templ.data()) != nullptr);
        path = templ;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(local_runner_results)

BOOST_AUTO_TEST_CASE(exit_code_is_the_childs) {
    BOOST_TEST(run_ok({"true"}).exit_code == 0);
    BOOST_TEST(run_ok({"sh", "-c", "exit 7"}).exit_code == 7);
    BOOST_TEST(run_ok({"false"}).exit_code == 1);
}

BOOST_AUTO_TEST_CASE(death_by_signal_is_128_plus_the_signal) {
    const auto r = run_ok({"sh", "-c", "kill -TERM $$"});
    BOOST_TEST(r.exit_code == 128 + SIGTERM);
    BOOST_TEST(!r.cancelled);
}

BOOST_AUTO_TEST_CASE(stdout_lines_arrive_in_order_with_the_last_partial_line) {
    std::vector<std::string> lines;
    run_options opts;
    opts.on_stdout_line = [&](std::string_view l) { lines.emplace_back(l); };
    command cmd;
    cmd.argv = {"printf", "one\\ntwo\\n\\nthree"};
    const auto r = run_ok(cmd, opts);
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(lines == (std::vector<std::string>{"one", "two", "", "three"}), boost::test_tools::per_element());
    BOOST_TEST(r.stdout_text.empty(), "handed to the callback, so not kept: " << r.stdout_text);
}

BOOST_AUTO_TEST_CASE(stdout_is_kept_whole_without_a_callback) {
    BOOST_TEST(run_ok({"printf", "a\\nb"}).stdout_text == "a\nb");
}

BOOST_AUTO_TEST_CASE(stderr_is_kept_whole_and_handed_out_per_line) {
    std::vector<std::string> lines;
    run_options opts;
    opts.on_stderr_line = [&](std::string_view l) { lines.emplace_back(l); };
    command cmd;
    cmd.argv = {"sh", "-c", "printf 'e1\\ne2\\n\\ne3' >&2; printf out"};
    const auto r = run_ok(cmd, opts);
    BOOST_TEST(r.stderr_text == "e1\ne2\n\ne3");
    BOOST_TEST(lines == (std::vector<std::string>{"e1", "e2", "", "e3"}), boost::test_tools::per_element());
    BOOST_TEST(r.stdout_text == "out");
}

BOOST_AUTO_TEST_CASE(eight_mib_each_way_at_once_do_not_deadlock) {
    // stdin, stdout and stderr all far beyond a pipe buffer at the same time:
    // cat echoes stdin while a second writer fills stderr.
    std::string input;
    std::vector<std::string> expected;
    for (int i = 0; input.size() < (8U << 20); ++i) {
        expected.push_back("line " + std::to_string(i) + std::string(100, 'x'));
        input += expected.back() + "\n";
    }
    command cmd;
    cmd.argv = {"sh", "-c", "head -c 8388608 /dev/zero | tr '\\0' e >&2 & cat; wait"};
    cmd.stdin_data = input;
    std::vector<std::string> lines;
    run_options opts;
    opts.on_stdout_line = [&](std::string_view l) { lines.emplace_back(l); };
    const auto r = run_ok(cmd, opts);
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST_REQUIRE(lines.size() == expected.size());
    BOOST_TEST((lines == expected));
    BOOST_TEST(r.stderr_text.size() == 8388608U);
    BOOST_TEST(r.stderr_text.find_first_not_of('e') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(stdin_data_is_delivered_then_closed) {
    command cmd;
    cmd.argv = {"cat"};
    cmd.stdin_data = "hello\nworld";
    BOOST_TEST(run_ok(cmd).stdout_text == "hello\nworld");
}

BOOST_AUTO_TEST_CASE(empty_stdin_data_means_dev_null) {
    command cmd;
    cmd.argv = {"sh", "-c", "wc -c; readlink /proc/self/fd/0"};
    const auto r = run_ok(cmd);
    BOOST_TEST(words_of(r.stdout_text) == (std::vector<std::string>{"0", "/dev/null"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(child_that_never_reads_its_stdin_does_not_kill_the_caller) {
    // Writing to a pipe without reader raises SIGPIPE, which would end this
    // process if the runner let it through.
    command cmd;
    cmd.argv = {"sh", "-c", "exec 0<&-; echo done"};
    cmd.stdin_data = std::string(4U << 20, 'y');
    const auto r = run_ok(cmd);
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.stdout_text == "done\n");
    sigset_t pending;
    sigpending(&pending);
    BOOST_TEST(sigismember(&pending, SIGPIPE) == 0, "a SIGPIPE was left pending");
}

BOOST_AUTO_TEST_CASE(a_descendant_holding_the_pipes_does_not_hold_the_run) {
    local_runner runner(local_runner_options{.drain_timeout = 300ms});
    command cmd;
    cmd.argv = {"sh", "-c", "sleep 30 & echo $!"};
    const auto start = std::chrono::steady_clock::now();
    auto res = runner.run("", cmd, {});
    const auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST_REQUIRE(res.has_value());
    const auto words = words_of(res->stdout_text);
    BOOST_TEST_REQUIRE(words.size() == 1U);
    ::kill(std::stoi(words.front()), SIGKILL);
    BOOST_TEST(res->exit_code == 0);
    BOOST_TEST(std::chrono::duration<double>(took).count() < 20.0);
}

BOOST_AUTO_TEST_CASE(many_threads_run_at_once) {
    // Concurrent forks: a pipe end leaking into another thread's child would
    // hold that run open or mix outputs.
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    local_runner runner;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 10; ++i) {
                const std::string word = std::to_string(t) + "-" + std::to_string(i);
                command cmd;
                cmd.argv = {"echo", word};
                auto res = runner.run("", cmd, {});
                if (!res || res->stdout_text != word + "\n" || res->exit_code != 0) ++wrong;
            }
        });
    for (auto &t : threads) t.join();
    BOOST_TEST(wrong.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(local_runner_errors)

BOOST_AUTO_TEST_CASE(missing_program_is_not_found_and_named) {
    local_runner runner;
    command cmd;
    cmd.argv = {"oneds-no-such-program", "secret-looking-argument"};
    const auto res = runner.run("", cmd, {});
    BOOST_TEST_REQUIRE(!res.has_value());
    BOOST_TEST((res.err().kind == error_kind::not_found));
    BOOST_TEST(res.err().message.find("oneds-no-such-program") != std::string::npos, res.err().message);
    BOOST_TEST(res.err().message.find("secret-looking-argument") == std::string::npos, res.err().message);
}

BOOST_AUTO_TEST_CASE(file_that_cannot_be_executed_is_refused_and_reaped) {
    const temp_dir dir;
    const fs::path script = dir.path / "not-executable";
    std::ofstream(script) << "#!/bin/sh\necho ran\n";
    fs::permissions(script, fs::perms::owner_read | fs::perms::owner_write);
    if (::geteuid() == 0) {
        // root may execute anything that has some x bit only; none here, so
        // execve still fails with EACCES.
    }
    local_runner runner;
    command cmd;
    cmd.argv = {script.string()};
    const auto res = runner.run("", cmd, {});
    BOOST_TEST_REQUIRE(!res.has_value());
    BOOST_TEST((res.err().kind == error_kind::permission), res.err().message);
    BOOST_TEST(res.err().message.find(script.string()) != std::string::npos, res.err().message);
    // The child that failed to exec is not left as a zombie.
    errno = 0;
    BOOST_TEST(::waitpid(-1, nullptr, WNOHANG) == -1);
    BOOST_TEST(errno == ECHILD);
}

BOOST_AUTO_TEST_CASE(empty_argv_is_invalid) {
    local_runner runner;
    const auto res = runner.run("", command{}, {});
    BOOST_TEST_REQUIRE(!res.has_value());
    BOOST_TEST((res.err().kind == error_kind::invalid));
}

BOOST_AUTO_TEST_CASE(other_hosts_are_not_its_business) {
    local_runner runner;
    command cmd;
    cmd.argv = {"true"};
    const auto res = runner.run("hypervisor", cmd, {});
    BOOST_TEST_REQUIRE(!res.has_value());
    BOOST_TEST((res.err().kind == error_kind::invalid));
}

BOOST_AUTO_TEST_CASE(nul_in_an_argument_is_invalid_rather_than_truncated) {
    local_runner runner;
    command cmd;
    cmd.argv = {"echo", std::string("a\0b", 3)};
    const auto res = runner.run("", cmd, {});
    BOOST_TEST_REQUIRE(!res.has_value());
    BOOST_TEST((res.err().kind == error_kind::invalid));
}

BOOST_AUTO_TEST_CASE(exception_from_a_callback_becomes_an_error_and_ends_the_child) {
    local_runner runner;
    command cmd;
    cmd.argv = {"sh", "-c", "echo first; exec sleep 60"};
    run_options opts;
    opts.on_stdout_line = [](std::string_view) { throw std::runtime_error("callback gave up"); };
    const auto start = std::chrono::steady_clock::now();
    const auto res = runner.run("", cmd, opts);
    BOOST_TEST(seconds_since(start) < 30.0);
    BOOST_TEST_REQUIRE(!res.has_value());
    BOOST_TEST((res.err().kind == error_kind::io));
    BOOST_TEST(res.err().message.find("callback gave up") != std::string::npos, res.err().message);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(local_runner_environment)

BOOST_AUTO_TEST_CASE(inherits_our_environment_and_cmd_env_wins) {
    BOOST_TEST_REQUIRE(::setenv("ONEDS_TEST_INHERITED", "from parent", 1) == 0);
    BOOST_TEST_REQUIRE(::setenv("ONEDS_TEST_OVERRIDDEN", "from parent", 1) == 0);
    command cmd;
    cmd.argv = {"printenv", "ONEDS_TEST_INHERITED", "ONEDS_TEST_OVERRIDDEN", "ONEDS_TEST_NEW"};
    cmd.env = {{"ONEDS_TEST_OVERRIDDEN", "from cmd"}, {"ONEDS_TEST_NEW", "it's \"new\" $HOME"}};
    const auto r = run_ok(cmd);
    ::unsetenv("ONEDS_TEST_INHERITED");
    ::unsetenv("ONEDS_TEST_OVERRIDDEN");
    BOOST_TEST(r.stdout_text == "from parent\nfrom cmd\nit's \"new\" $HOME\n");
    BOOST_TEST(std::getenv("ONEDS_TEST_NEW") == nullptr, "cmd.env must not leak into this process");
}

BOOST_AUTO_TEST_CASE(secret_reaches_the_child_environment_but_not_its_command_line) {
    const std::string secret = "correct horse battery staple";
    command cmd;
    // The shell execs cat, so /proc/$$ is the very process that got the env.
    cmd.argv = {"sh", "-c", "printenv RESTIC_PASSWORD; exec cat /proc/$$/cmdline"};
    cmd.env = {{"RESTIC_PASSWORD", secret}};
    cmd.secret_env = {"RESTIC_PASSWORD"};
    const auto r = run_ok(cmd);
    const auto nl = r.stdout_text.find('\n');
    BOOST_TEST_REQUIRE(nl != std::string::npos);
    BOOST_TEST(r.stdout_text.substr(0, nl) == secret);
    const std::string cmdline = r.stdout_text.substr(nl + 1);
    BOOST_TEST(cmdline.find("/proc/") != std::string::npos, "not the command line: " << cmdline);
    BOOST_TEST(cmdline.find(secret) == std::string::npos);
    BOOST_TEST(cmdline.find("correct") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(program_is_searched_in_the_path_the_child_gets) {
    const temp_dir dir;
    const fs::path probe = dir.path / "oneds-path-probe";
    std::ofstream(probe) << "#!/bin/sh\necho probe \"$0\"\n";
    fs::permissions(probe, fs::perms::owner_all);
    command cmd;
    cmd.argv = {"oneds-path-probe"};
    cmd.env = {{"PATH", dir.path.string() + ":/usr/bin:/bin"}};
    const auto r = run_ok(cmd);
    BOOST_TEST(r.stdout_text == "probe " + probe.string() + "\n");
}

BOOST_AUTO_TEST_CASE(child_sees_argv0_as_written) {
    BOOST_TEST(run_ok({"sh", "-c", "cat /proc/$$/cmdline"}).stdout_text.starts_with(std::string("sh\0-c\0", 6)));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(local_runner_isolation)

BOOST_AUTO_TEST_CASE(child_leads_a_session_of_its_own_without_terminal) {
    const auto r = run_ok({"cat", "/proc/self/stat"});
    const std::string pid = words_of(r.stdout_text).front();
    const auto f = stat_fields_after_comm(r.stdout_text);
    BOOST_TEST_REQUIRE(f.size() > 4U);
    BOOST_TEST(f[2] == pid, "process group");
    BOOST_TEST(f[3] == pid, "session");
    BOOST_TEST(f[3] != std::to_string(::getsid(0)));
    BOOST_TEST(f[4] == "0", "controlling terminal");
}

BOOST_AUTO_TEST_CASE(child_gets_only_the_three_standard_descriptors) {
    // Inheritable on purpose, one low (below the launcher's own pipes, the
    // range Boost 1.81 forgets to close) and one high.
    const int low = ::open("/dev/null", O_RDONLY);
    BOOST_TEST_REQUIRE(low >= 0);
    const int high = ::dup2(low, 200);
    BOOST_TEST_REQUIRE(high == 200);
    const auto r = run_ok({"ls", "/proc/self/fd"});
    ::close(low);
    ::close(high);
    // 0, 1, 2 and the one ls opened to read the directory.
    const auto names = words_of(r.stdout_text);
    BOOST_TEST(std::set<std::string>(names.begin(), names.end()) == (std::set<std::string>{"0", "1", "2", "3"}),
               r.stdout_text);
}

BOOST_AUTO_TEST_CASE(child_gets_an_empty_signal_mask_and_default_dispositions) {
    // A host may block signals in its threads and ignore some process-wide.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    struct sigaction old_usr2 {};
    ::sigaction(SIGUSR2, &ignore, &old_usr2);
    command_result r;
    {
        const blocked_signals blocked{SIGINT, SIGTERM, SIGUSR1};
        r = run_ok({"grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"});
    }
    ::sigaction(SIGUSR2, &old_usr2, nullptr);
    BOOST_TEST(r.stdout_text == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(local_runner_cancellation)

BOOST_AUTO_TEST_CASE(cancel_interrupts_the_child_with_sigint) {
    test_cancellation cancel;
    command cmd;
    cmd.argv = {"sleep", "60"};
    run_options opts;
    opts.stop = cancel.token();
    opts.kill_grace = 30s;  // SIGKILL would come far too late: SIGINT must do it
    const auto start = std::chrono::steady_clock::now();
    command_result r;
    {
        // Even from a thread that blocks SIGINT itself.
        const blocked_signals blocked{SIGINT};
        const cancel_later later(cancel, 300ms);
        r = run_ok(cmd, opts);
    }
    BOOST_TEST(seconds_since(start) < 20.0);
    BOOST_TEST(r.cancelled);
    BOOST_TEST(r.exit_code == 128 + SIGINT);
}

BOOST_AUTO_TEST_CASE(sigint_goes_to_the_child_only_not_its_group) {
    // restic's ssh child must outlive restic's SIGINT so that restic can remove
    // its lock through it. perl stands for ssh: it dies of SIGINT even when
    // started in the background, and prints its pid once its handler is set.
    test_cancellation cancel;
    command cmd;
    cmd.argv = {"sh", "-c",
                "trap 'exit 3' INT; perl -e '$SIG{INT} = sub { exit 9 }; $| = 1; print \"$$\\n\"; sleep 30' & wait"};
    std::string helper_pid;
    run_options opts;
    opts.on_stdout_line = [&](std::string_view l) {
        helper_pid = std::string(l);
        cancel.cancel();
    };
    opts.stop = cancel.token();
    opts.kill_grace = 30s;
    local_runner runner(local_runner_options{.drain_timeout = 200ms});
    auto res = runner.run("", cmd, opts);
    BOOST_TEST_REQUIRE(res.has_value());
    BOOST_TEST(res->exit_code == 3);
    BOOST_TEST(res->cancelled);
    BOOST_TEST_REQUIRE(!helper_pid.empty());
    const pid_t helper = std::stoi(helper_pid);
    std::this_thread::sleep_for(200ms);
    std::ifstream stat("/proc/" + helper_pid + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    BOOST_TEST_REQUIRE(!text.empty(), "the helper got the SIGINT meant for its parent");
    BOOST_TEST(stat_fields_after_comm(text).front() != "Z", "the helper got the SIGINT meant for its parent");
    ::kill(helper, SIGKILL);
}

BOOST_AUTO_TEST_CASE(child_that_ignores_sigint_is_killed_after_the_grace) {
    test_cancellation cancel;
    command cmd;
    cmd.argv = {"sh", "-c", "trap '' INT; sleep 60 & echo $!; wait"};
    std::string sleeper;
    run_options opts;
    opts.on_stdout_line = [&](std::string_view l) {
        sleeper = std::string(l);
        cancel.cancel();
    };
    opts.stop = cancel.token();
    opts.kill_grace = 300ms;
    const auto start = std::chrono::steady_clock::now();
    const auto r = run_ok(cmd, opts);
    BOOST_TEST(seconds_since(start) < 20.0);
    BOOST_TEST(r.cancelled);
    BOOST_TEST(r.exit_code == 128 + SIGKILL);
    // SIGKILL went to the whole process group: the shell's child is gone too.
    BOOST_TEST_REQUIRE(!sleeper.empty());
    BOOST_TEST(process_gone(std::stoi(sleeper)));
}

BOOST_AUTO_TEST_CASE(run_cancelled_before_it_starts_starts_nothing) {
    const temp_dir dir;
    const fs::path marker = dir.path / "ran";
    test_cancellation cancel;
    cancel.cancel();
    command cmd;
    cmd.argv = {"touch", marker.string()};
    run_options opts;
    opts.stop = cancel.token();
    const auto r = run_ok(cmd, opts);
    BOOST_TEST(r.cancelled);
    BOOST_TEST(r.exit_code == -1);
    BOOST_TEST(!fs::exists(marker));
}

BOOST_AUTO_TEST_CASE(cancel_after_the_end_changes_nothing) {
    test_cancellation cancel;
    command cmd;
    cmd.argv = {"true"};
    run_options opts;
    opts.stop = cancel.token();
    const auto r = run_ok(cmd, opts);
    cancel.cancel();  // the callback is gone: nothing may happen now
    BOOST_TEST(!r.cancelled);
    BOOST_TEST(r.exit_code == 0);
}

BOOST_AUTO_TEST_SUITE_END()
