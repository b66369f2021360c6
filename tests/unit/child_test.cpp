// The launcher (common/child.hpp) against real programs: argv
// untouched, PATH lookup, environment, descriptors 0-2 and no others, signals,
// process groups, the fork path (parent_death_signal), errors, and that a
// handle never leaves a child running or unreaped.
#define BOOST_TEST_MODULE child_test
#include <boost/test/unit_test.hpp>

#include "common/child.hpp"
#include "common/proc.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using oneds::common::child;
using oneds::common::child_group;
using oneds::common::child_spec;
using oneds::common::child_stream;
using oneds::common::spawn;
using oneds::common::spawn_error;
using namespace std::chrono_literals;

namespace {

std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return out;
        out.append(buf, static_cast<std::size_t>(n));
    }
}

// Runs spec with stdout on a pipe; its output and status.
struct ran {
    std::string out;
    oneds::common::exit_status status;
};
ran run(child_spec spec) {
    spec.out = child_stream::pipe();
    child c = spawn(spec);
    ran r;
    r.out = read_all(c.stdout_pipe().get());
    r.status = c.wait();
    return r;
}
ran run(std::vector<std::string> argv) {
    child_spec spec;
    spec.argv = std::move(argv);
    return run(std::move(spec));
}

std::vector<std::string> words_of(const std::string &text) {
    std::istringstream in(text);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string templ = (fs::temp_directory_path() / "oneds-child-XXXXXX").string();
        BOOST_TEST_REQUIRE(::mkdtemp(templ.data()) != nullptr);
        path = templ;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

// No child of this process is left, running or as a zombie.
bool no_children_left() {
    errno = 0;
    return ::waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD;
}

// Both ways of starting: posix_spawn, and fork (which parent_death_signal needs).
const std::vector<int> k_death_signals{0, SIGKILL};

}  // namespace

BOOST_AUTO_TEST_SUITE(child_running)

BOOST_AUTO_TEST_CASE(argv_reaches_the_program_as_given) {
    for (const int death : k_death_signals) {
        child_spec spec;
        spec.argv = {"printf", "%s|", "a b", "$HOME", "*"};
        spec.parent_death_signal = death;
        const auto r = run(spec);
        BOOST_TEST(r.out == "a b|$HOME|*|");
        BOOST_TEST(r.status.exited());
        BOOST_TEST(r.status.exit_code() == 0);
    }
}

BOOST_AUTO_TEST_CASE(exit_codes_and_signals) {
    const auto seven = run({"sh", "-c", "exit 7"}).status;
    BOOST_TEST(seven.exit_code() == 7);
    BOOST_TEST(seven.shell_code() == 7);
    const auto term = run({"sh", "-c", "kill -TERM $$"}).status;
    BOOST_TEST(!term.exited());
    BOOST_TEST(term.term_signal() == SIGTERM);
    BOOST_TEST(term.shell_code() == 128 + SIGTERM);
}

BOOST_AUTO_TEST_CASE(program_is_searched_in_the_childs_path_and_run_by_that_path) {
    const temp_dir dir;
    const fs::path probe = dir.path / "oneds-child-probe";
    std::ofstream(probe) << "#!/bin/sh\necho \"$0\"\n";
    fs::permissions(probe, fs::perms::owner_all);
    for (const int death : k_death_signals) {
        child_spec spec;
        spec.argv = {"oneds-child-probe"};
        spec.env_set = {{"PATH", "/nonexistent:" + dir.path.string() + ":/usr/bin:/bin"}};
        spec.parent_death_signal = death;
        BOOST_TEST(run(spec).out == probe.string() + "\n");
    }
}

BOOST_AUTO_TEST_CASE(environment_is_ours_with_changes_or_given_whole) {
    BOOST_TEST_REQUIRE(::setenv("ONEDS_CHILD_KEPT", "kept", 1) == 0);
    BOOST_TEST_REQUIRE(::setenv("ONEDS_CHILD_REMOVED", "removed", 1) == 0);
    BOOST_TEST_REQUIRE(::setenv("ONEDS_CHILD_CHANGED", "old", 1) == 0);
    child_spec spec;
    spec.argv = {"sh", "-c", "echo \"$ONEDS_CHILD_KEPT/${ONEDS_CHILD_REMOVED-unset}/$ONEDS_CHILD_CHANGED/$ONEDS_NEW\""};
    spec.env_set = {{"ONEDS_CHILD_CHANGED", "new"}, {"ONEDS_NEW", "it's \"new\" $HOME"}};
    spec.env_unset = {"ONEDS_CHILD_REMOVED"};
    BOOST_TEST(run(spec).out == "kept/unset/new/it's \"new\" $HOME\n");
    BOOST_TEST(std::getenv("ONEDS_NEW") == nullptr, "env_set must not leak into this process");

    spec.argv = {"/usr/bin/env"};
    spec.env_whole = std::vector<std::string>{"A=1", "ONEDS_CHILD_REMOVED=x", "A=2"};
    spec.env_set = {{"B", "2"}};
    const auto lines = words_of(run(spec).out);
    BOOST_TEST(std::set<std::string>(lines.begin(), lines.end()) == (std::set<std::string>{"A=1", "B=2"}));
    ::unsetenv("ONEDS_CHILD_KEPT");
    ::unsetenv("ONEDS_CHILD_REMOVED");
    ::unsetenv("ONEDS_CHILD_CHANGED");
}

BOOST_AUTO_TEST_CASE(standard_streams_as_asked) {
    const temp_dir dir;
    const fs::path log = dir.path / "log";
    for (const int death : k_death_signals) {
        child_spec spec;
        spec.argv = {"sh", "-c",
                     "readlink /proc/$$/fd/0; echo out; echo err >&2; cat; "
                     "if [ -e /proc/$$/fd/2 ]; then echo two; fi"};
        spec.in = child_stream::null();
        // Both appending: two open files on one log.
        spec.out = child_stream::file(log.string(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
        const oneds::common::unique_fd log_fd(::open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
        spec.err = child_stream::use(log_fd.get());
        spec.parent_death_signal = death;
        BOOST_TEST(spawn(spec).wait().exit_code() == 0);
        std::ifstream in(log);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        BOOST_TEST(text == "/dev/null\nout\nerr\ntwo\n");

        spec.argv = {"sh", "-c", "if [ -e /proc/$$/fd/2 ]; then echo open; else echo closed; fi"};
        spec.in = child_stream::inherit();
        spec.err = child_stream::closed();
        BOOST_TEST(run(spec).out == "closed\n");
    }
}

BOOST_AUTO_TEST_CASE(pipes_both_ways) {
    child_spec spec;
    spec.argv = {"sh", "-c", "cat; echo to-err >&2"};
    spec.in = child_stream::pipe();
    spec.out = child_stream::pipe();
    spec.err = child_stream::pipe();
    child c = spawn(spec);
    BOOST_TEST_REQUIRE(::write(c.stdin_pipe().get(), "hello", 5) == 5);
    c.stdin_pipe().reset();
    BOOST_TEST(read_all(c.stdout_pipe().get()) == "hello");
    BOOST_TEST(read_all(c.stderr_pipe().get()) == "to-err\n");
    BOOST_TEST(c.wait().exit_code() == 0);
}

BOOST_AUTO_TEST_CASE(child_gets_only_the_three_standard_descriptors) {
    // Inheritable on purpose, one low and one high.
    const int low = ::open("/dev/null", O_RDONLY);
    BOOST_TEST_REQUIRE(low >= 0);
    const int high = ::dup2(low, 200);
    BOOST_TEST_REQUIRE(high == 200);
    for (const int death : k_death_signals) {
        child_spec spec;
        spec.argv = {"ls", "/proc/self/fd"};
        spec.parent_death_signal = death;
        // 0, 1, 2 and the one ls opened to read the directory.
        const auto names = words_of(run(spec).out);
        BOOST_TEST(std::set<std::string>(names.begin(), names.end()) == (std::set<std::string>{"0", "1", "2", "3"}));
    }
    ::close(low);
    ::close(high);
}

BOOST_AUTO_TEST_CASE(signals_are_reset_unless_asked_to_keep_them) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    struct sigaction old_usr2 {};
    ::sigaction(SIGUSR2, &ignore, &old_usr2);
    sigset_t blocked;
    sigset_t old_mask;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGUSR1);
    ::pthread_sigmask(SIG_BLOCK, &blocked, &old_mask);
    std::vector<std::string> reset, kept;
    for (const int death : k_death_signals) {
        child_spec spec;
        spec.argv = {"grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"};
        spec.parent_death_signal = death;
        reset.push_back(run(spec).out);
        spec.reset_signals = false;
        kept.push_back(run(spec).out);
    }
    ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    ::sigaction(SIGUSR2, &old_usr2, nullptr);
    const std::string usr1 = "SigBlk:\t0000000000000200\n";
    for (const auto &r : reset) BOOST_TEST(r == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
    for (const auto &k : kept) BOOST_TEST(k.starts_with(usr1), k);
    // SIGUSR2 is signal 12: bit 11.
    for (const auto &k : kept) BOOST_TEST(k.find("SigIgn:\t0000000000000800") != std::string::npos, k);
}

BOOST_AUTO_TEST_CASE(new_session_and_new_group) {
    for (const int death : k_death_signals) {
        for (const auto group : {child_group::same, child_group::new_group, child_group::new_session}) {
            child_spec spec;
            spec.argv = {"cat", "/proc/self/stat"};
            spec.group = group;
            spec.parent_death_signal = death;
            const auto text = run(spec).out;
            const auto pid = words_of(text).front();
            const auto fields = words_of(text.substr(text.rfind(')') + 1));  // state ppid pgrp session
            BOOST_TEST_REQUIRE(fields.size() > 3U);
            BOOST_TEST((fields[2] == pid) == (group != child_group::same), "process group " << fields[2]);
            BOOST_TEST((fields[3] == pid) == (group == child_group::new_session), "session " << fields[3]);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(child_errors)

BOOST_AUTO_TEST_CASE(missing_program_is_not_found_and_named_without_its_arguments) {
    child_spec spec;
    spec.argv = {"oneds-no-such-program", "secret-looking-argument"};
    try {
        (void)spawn(spec);
        BOOST_FAIL("started a program that does not exist");
    } catch (const spawn_error &e) {
        BOOST_TEST(e.not_found());
        BOOST_TEST(e.code().value() == ENOENT);
        BOOST_TEST(std::string(e.what()).find("'oneds-no-such-program'") != std::string::npos, e.what());
        BOOST_TEST(std::string(e.what()).find("secret-looking-argument") == std::string::npos, e.what());
    }
}

BOOST_AUTO_TEST_CASE(exec_failure_is_reported_and_reaped) {
    const temp_dir dir;
    const fs::path script = dir.path / "not-executable";
    std::ofstream(script) << "#!/bin/sh\necho ran\n";
    fs::permissions(script, fs::perms::owner_read | fs::perms::owner_write);
    for (const auto &path : {script, dir.path / "missing"}) {
        for (const int death : k_death_signals) {
            child_spec spec;
            spec.argv = {path.string()};
            spec.parent_death_signal = death;
            try {
                (void)spawn(spec);
                BOOST_FAIL("started " << path);
            } catch (const spawn_error &e) {
                BOOST_TEST(e.code().value() == (path == script ? EACCES : ENOENT), e.what());
                BOOST_TEST(std::string(e.what()).find(path.string()) != std::string::npos, e.what());
            }
            BOOST_TEST(no_children_left());
        }
    }
}

BOOST_AUTO_TEST_CASE(invalid_specs_are_refused_before_anything_starts) {
    child_spec empty;
    BOOST_CHECK_THROW((void)spawn(empty), std::invalid_argument);
    child_spec nul;
    nul.argv = {"echo", std::string("a\0b", 3)};
    BOOST_CHECK_THROW((void)spawn(nul), std::invalid_argument);
    child_spec name;
    name.argv = {"true"};
    name.env_set = {{"A=B", "x"}};
    BOOST_CHECK_THROW((void)spawn(name), std::invalid_argument);
    child_spec value;
    value.argv = {"true"};
    value.env_set = {{"SECRET", std::string("a\0b", 3)}};
    try {
        (void)spawn(value);
        BOOST_FAIL("a NUL byte in a value was accepted");
    } catch (const std::invalid_argument &e) {
        BOOST_TEST(std::string(e.what()).find("SECRET") != std::string::npos, e.what());
    }
    BOOST_TEST(no_children_left());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(child_lifetime)

BOOST_AUTO_TEST_CASE(the_handle_kills_and_reaps_a_running_child) {
    pid_t pid = -1;
    {
        child_spec spec;
        spec.argv = {"sleep", "60"};
        const child c = spawn(spec);
        pid = c.pid();
        BOOST_TEST_REQUIRE(::kill(pid, 0) == 0);
    }
    BOOST_TEST(::kill(pid, 0) == -1);
    BOOST_TEST(no_children_left());
}

BOOST_AUTO_TEST_CASE(wait_for_times_out_then_kill_ends_it) {
    child_spec spec;
    spec.argv = {"sleep", "60"};
    child c = spawn(spec);
    const auto start = std::chrono::steady_clock::now();
    BOOST_TEST(!c.wait_for(200ms).has_value());
    BOOST_TEST((std::chrono::steady_clock::now() - start >= 200ms));
    BOOST_TEST(c.signal(0));
    const auto s = c.kill();
    BOOST_TEST(s.term_signal() == SIGKILL);
    BOOST_TEST(c.reaped());
    BOOST_TEST(!c.signal(0), "a reaped child takes no signal");
}

BOOST_AUTO_TEST_CASE(stop_gives_the_signal_a_grace_then_kills) {
    child_spec spec;
    spec.argv = {"sh", "-c", "trap 'exit 5' TERM; echo ready; while :; do sleep 0.05; done"};
    spec.out = child_stream::pipe();
    child polite = spawn(spec);
    char b = 0;
    BOOST_TEST_REQUIRE(::read(polite.stdout_pipe().get(), &b, 1) == 1);
    BOOST_TEST(polite.stop(10s).exit_code() == 5);

    spec.argv = {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"};
    child stubborn = spawn(spec);
    BOOST_TEST_REQUIRE(::read(stubborn.stdout_pipe().get(), &b, 1) == 1);
    const auto start = std::chrono::steady_clock::now();
    BOOST_TEST(stubborn.stop(300ms).term_signal() == SIGKILL);
    BOOST_TEST((std::chrono::steady_clock::now() - start >= 300ms));
}

BOOST_AUTO_TEST_CASE(the_destructor_uses_the_specs_grace) {
    child_spec spec;
    spec.argv = {"sh", "-c", "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.05; done"};
    spec.out = child_stream::pipe();
    spec.stop_grace = 10s;
    oneds::common::unique_fd out;
    {
        child c = spawn(spec);
        out = std::move(c.stdout_pipe());
        char b[6];
        BOOST_TEST_REQUIRE(::read(out.get(), b, sizeof b) == 6);
    }
    BOOST_TEST(read_all(out.get()) == "got-term\n");
    BOOST_TEST(no_children_left());
}

BOOST_AUTO_TEST_CASE(signal_group_reaches_the_childs_descendants) {
    child_spec spec;
    spec.argv = {"sh", "-c", "trap '' INT; sleep 60 & echo $!; wait"};
    spec.out = child_stream::pipe();
    spec.group = child_group::new_session;
    child c = spawn(spec);
    std::string line;
    char ch = 0;
    while (::read(c.stdout_pipe().get(), &ch, 1) == 1 && ch != '\n') line += ch;
    const pid_t sleeper = std::stoi(line);
    BOOST_TEST(c.signal_group(SIGKILL));
    BOOST_TEST(c.wait().term_signal() == SIGKILL);
    // The sleeper is the shell's child, reparented and reaped elsewhere.
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
        std::ifstream stat("/proc/" + std::to_string(sleeper) + "/stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        gone = text.empty() || words_of(text.substr(text.rfind(')') + 1)).front() == "Z";
        if (!gone) std::this_thread::sleep_for(50ms);
    }
    BOOST_TEST(gone);
}

BOOST_AUTO_TEST_CASE(a_released_child_is_left_alone) {
    child_spec spec;
    spec.argv = {"sleep", "60"};
    pid_t pid = -1;
    {
        child c = spawn(spec);
        pid = c.release();
    }
    BOOST_TEST(::kill(pid, 0) == 0);
    ::kill(pid, SIGKILL);
    int status = 0;
    BOOST_TEST(::waitpid(pid, &status, 0) == pid);
}

BOOST_AUTO_TEST_CASE(parent_death_signal_ends_the_child_with_its_thread) {
    pid_t pid = -1;
    std::thread starter([&pid] {
        child_spec spec;
        spec.argv = {"sleep", "60"};
        spec.parent_death_signal = SIGKILL;
        pid = spawn(spec).release();
    });
    starter.join();
    BOOST_TEST_REQUIRE(pid > 0);
    int status = 0;
    BOOST_TEST(::waitpid(pid, &status, 0) == pid);
    BOOST_TEST(WIFSIGNALED(status));
    BOOST_TEST(WTERMSIG(status) == SIGKILL);
}

BOOST_AUTO_TEST_CASE(a_child_reaped_elsewhere_is_lost_not_waited_for) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    struct sigaction old {};
    ::sigaction(SIGCHLD, &ignore, &old);
    child_spec spec;
    spec.argv = {"true"};
    child c = spawn(spec);
    const auto s = c.wait();
    ::sigaction(SIGCHLD, &old, nullptr);
    BOOST_TEST(s.lost);
    BOOST_TEST(s.shell_code() == -1);
}

BOOST_AUTO_TEST_SUITE_END()

// The last-resort kill reaches children and grandchildren, and only them.
BOOST_AUTO_TEST_CASE(signal_descendants_reaches_the_whole_tree_and_nothing_else) {
    child_spec spec;
    spec.argv = {"sh", "-c", "sleep 100 & sleep 100 & wait"};
    child c = spawn(spec);
    // Wait until the grandchildren are there.
    std::vector<pid_t> tree;
    for (int i = 0; i < 200 && tree.size() < 3; ++i) {
        std::this_thread::sleep_for(10ms);
        tree = oneds::common::descendant_pids(::getpid());
    }
    BOOST_TEST_REQUIRE(tree.size() >= 3U);
    const auto signalled = oneds::common::signal_descendants(::getpid(), SIGKILL);
    const std::set<pid_t> expected(tree.begin(), tree.end());
    const std::set<pid_t> got(signalled.begin(), signalled.end());
    BOOST_TEST(got == expected, boost::test_tools::per_element());
    const auto status = c.wait();
    BOOST_TEST(status.term_signal() == SIGKILL);
    // The grandchildren were killed too (reparented, so not waited for here).
    for (const pid_t pid : tree) {
        bool gone = false;
        for (int i = 0; i < 200 && !gone; ++i) {
            const std::string stat = oneds::common::read_proc_file("/proc/" + std::to_string(pid) + "/stat");
            gone = stat.empty() || stat.find(") Z") != std::string::npos;
            if (!gone) std::this_thread::sleep_for(10ms);
        }
        BOOST_TEST(gone, "pid " << pid);
    }
}
