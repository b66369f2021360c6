// ssh_runner for real: the OpenSSH client started by the local runner, talking
// to a real sshd on loopback (tests/support/sshd_fixture.hpp) as "hypervisor".
#define BOOST_TEST_MODULE adapter_ssh_runner_test
#include <boost/test/unit_test.hpp>

#include "adapters/process/local_runner.hpp"
#include "adapters/ssh/ssh_runner.hpp"
#include "tests/adapters/ssh/hostile_words.hpp"
#include "tests/support/sshd_fixture.hpp"
#include "tests/adapters/process/test_cancellation.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using oneds::adapters::process::local_runner;
using oneds::adapters::ssh::classify_ssh_failure;
using oneds::adapters::ssh::ssh_options;
using oneds::adapters::ssh::ssh_runner;
using oneds::ports::command;
using oneds::ports::command_result;
using oneds::ports::error_kind;
using oneds::ports::run_options;
using oneds::test::test_cancellation;

namespace {

using oneds::test::split_nul;

// One sshd for the whole module; each test gets its own runner.
struct sshd_setup {
    sshd_setup() : server(std::make_unique<oneds::test::sshd_fixture>()) { instance = server.get(); }
    ~sshd_setup() { instance = nullptr; }
    sshd_setup(const sshd_setup &) = delete;
    sshd_setup &operator=(const sshd_setup &) = delete;
    std::unique_ptr<oneds::test::sshd_fixture> server;
    static inline oneds::test::sshd_fixture *instance = nullptr;
};

oneds::test::sshd_fixture &sshd() {
    BOOST_TEST_REQUIRE(sshd_setup::instance != nullptr);
    return *sshd_setup::instance;
}

ssh_options options_for(const fs::path &config) {
    ssh_options o;
    o.ssh_config = config.string();
    o.connect_timeout = 10s;
    return o;
}

struct runners {
    local_runner local;
    ssh_runner remote;
    explicit runners(ssh_options o = options_for(sshd().ssh_config_file())) : remote(local, std::move(o)) {}
};

command_result run_remote(ssh_runner &r, const command &cmd, const run_options &opts = {},
                          const std::string &host = "hypervisor") {
    auto res = r.run(host, cmd, opts);
    BOOST_TEST_REQUIRE(res.has_value(), "run failed: " << (res ? std::string() : res.err().message));
    return std::move(res).value();
}

command argv_only(std::vector<std::string> argv) {
    command cmd;
    cmd.argv = std::move(argv);
    return cmd;
}

// Gone, or a zombie that only its reaper still has to collect.
bool process_gone(pid_t pid) {
    for (int i = 0; i < 100; ++i) {
        if (::kill(pid, 0) == -1 && errno == ESRCH) return true;
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        const auto close = text.rfind(')');
        if (close != std::string::npos && text.substr(close + 2, 1) == "Z") return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

unsigned short closed_port() {
    const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
    BOOST_TEST_REQUIRE(sock >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_TEST_REQUIRE(::bind(sock, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    BOOST_TEST_REQUIRE(::getsockname(sock, reinterpret_cast<sockaddr *>(&addr), &len) == 0);
    ::close(sock);  // nothing listens there now
    return ntohs(addr.sin_port);
}

// An ssh_config for "hypervisor" on the fixture's port with its own
// known_hosts file and any extra lines.
fs::path write_config(const std::string &name, const fs::path &known_hosts, unsigned short port) {
    const auto &fx = sshd();
    const fs::path path = fx.dir() / name;
    std::ofstream out(path);
    out << "Host hypervisor\n"
        << "    HostName " << fx.host() << "\n"
        << "    Port " << port << "\n"
        << "    User " << fx.user() << "\n"
        << "    IdentityFile \"" << fx.identity_file().string() << "\"\n"
        << "    IdentitiesOnly yes\n"
        << "    UserKnownHostsFile \"" << known_hosts.string() << "\"\n"
        << "    GlobalKnownHostsFile /dev/null\n"
        << "    StrictHostKeyChecking yes\n"
        << "    UpdateHostKeys no\n"
        << "    CheckHostIP no\n";
    return path;
}

// Runs cmd with a cancellation fired when its first stdout line (the remote
// pid, printed by the command) arrives.
struct cancelled_run {
    command_result result;
    pid_t remote_pid = -1;
    std::chrono::steady_clock::duration took{};
};

cancelled_run cancel_after_first_line(ssh_runner &r, const command &cmd, std::chrono::milliseconds grace) {
    test_cancellation cancel;
    cancelled_run out;
    run_options opts;
    opts.on_stdout_line = [&](std::string_view line) {
        if (out.remote_pid < 0) {
            out.remote_pid = std::stoi(std::string(line));
            cancel.cancel();
        }
    };
    opts.stop = cancel.token();
    opts.kill_grace = grace;
    const auto start = std::chrono::steady_clock::now();
    out.result = run_remote(r, cmd, opts);
    out.took = std::chrono::steady_clock::now() - start;
    return out;
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(sshd_setup);

BOOST_AUTO_TEST_SUITE(ssh_runner_remote)

BOOST_AUTO_TEST_CASE(runs_a_command_on_the_hypervisor_through_sshd) {
    runners r;
    const auto res = run_remote(r.remote, argv_only({"printenv", "SSH_CONNECTION"}));
    BOOST_TEST(res.exit_code == 0, res.stderr_text << "\nsshd: " << sshd().log_text());
    BOOST_TEST(res.stdout_text.ends_with(" " + std::to_string(sshd().port()) + "\n"), res.stdout_text);
    BOOST_TEST(res.stderr_text.find("ONEDS_PID") == std::string::npos, res.stderr_text);
    BOOST_TEST(!res.cancelled);
}

BOOST_AUTO_TEST_CASE(hostile_words_reach_the_remote_command_literally) {
    runners r;
    const auto words = oneds::test::hostile_words();
    command cmd;
    cmd.argv = {"printf", "%s\\0"};
    cmd.argv.insert(cmd.argv.end(), words.begin(), words.end());
    const auto res = run_remote(r.remote, cmd);
    BOOST_TEST_REQUIRE(res.exit_code == 0, res.stderr_text);
    const auto back = split_nul(res.stdout_text);
    BOOST_TEST_REQUIRE(back.size() == words.size());
    for (std::size_t i = 0; i < words.size(); ++i) BOOST_TEST(back[i] == words[i], "word " << i);
}

BOOST_AUTO_TEST_CASE(a_session_the_master_is_refused_runs_on_its_own_connection) {
    oneds::test::sshd_options so;
    so.extra_sshd_config = {"MaxSessions 1"};
    oneds::test::sshd_fixture small(so);
    const fs::path mux = small.dir() / "mux";
    fs::create_directory(mux);
    fs::permissions(mux, fs::perms::owner_all, fs::perm_options::replace);
    ssh_options o = options_for(small.ssh_config_file());
    o.control_dir = mux.string();
    o.control_persist = 30s;
    runners r(o);
    // The first command holds the master's only session until it is
    // cancelled. Its marker file (sshd runs on this machine) says it runs,
    // so the master is up and its session is open.
    const fs::path running = small.dir() / "first-running";
    test_cancellation stop_first;
    run_options first_opts;
    first_opts.stop = stop_first.token();
    command_result first_result;
    std::thread first([&] {
        first_result = run_remote(r.remote,
                                  argv_only({"sh", "-c", "echo $$ >\"$1.new\" && mv \"$1.new\" \"$1\" && exec sleep 30",
                                             "sh", running.string()}),
                                  first_opts);
    });
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline && !fs::exists(running)) std::this_thread::sleep_for(20ms);
    const bool first_runs = fs::exists(running);
    const auto second = first_runs ? run_remote(r.remote, argv_only({"echo", "second"})) : command_result{};
    stop_first.cancel();
    first.join();
    BOOST_TEST_REQUIRE(first_runs, "the first command never ran: " << first_result.stderr_text);
    // It ran until cancelled, so it held the session all along.
    BOOST_TEST(first_result.cancelled, first_result.stderr_text);
    // Without a terminal the remote sleep outlives its session; it is ours.
    std::ifstream pid_in(running);
    if (pid_t remote = 0; pid_in >> remote && remote > 1) (void)::kill(remote, SIGKILL);
    BOOST_TEST(second.exit_code == 0, second.stderr_text);
    BOOST_TEST(second.stdout_text == "second\n");
    BOOST_TEST(second.stderr_text.find("Session open refused") != std::string::npos, second.stderr_text);
    r.remote.close_masters();
}

BOOST_AUTO_TEST_CASE(environment_values_with_spaces_and_quotes_arrive_exactly) {
    runners r;
    command cmd;
    cmd.argv = {"printenv", "ONEDS_A", "ONEDS_B", "ONEDS_C"};
    cmd.env = {{"ONEDS_A", "two words"}, {"ONEDS_B", "it's \"quoted\" $HOME `id` $(id)"}, {"ONEDS_C", ""}};
    const auto res = run_remote(r.remote, cmd);
    BOOST_TEST(res.exit_code == 0, res.stderr_text);
    BOOST_TEST(res.stdout_text == "two words\nit's \"quoted\" $HOME `id` $(id)\n\n");
}

BOOST_AUTO_TEST_CASE(stdin_reaches_the_remote_command) {
    runners r;
    command cmd;
    cmd.argv = {"sh", "-c", "cat; echo; wc -c < /dev/null"};
    cmd.stdin_data = "password line\nsecond line";
    const auto res = run_remote(r.remote, cmd);
    BOOST_TEST(res.exit_code == 0, res.stderr_text);
    BOOST_TEST(res.stdout_text == "password line\nsecond line\n0\n");
}

BOOST_AUTO_TEST_CASE(large_stdin_reaches_the_remote_command) {
    runners r;
    command cmd;
    cmd.argv = {"wc", "-c"};
    cmd.stdin_data = std::string(3U << 20, 'z');
    const auto res = run_remote(r.remote, cmd);
    BOOST_TEST(res.exit_code == 0, res.stderr_text);
    BOOST_TEST(res.stdout_text == "3145728\n");
}

BOOST_AUTO_TEST_CASE(exit_codes_propagate) {
    runners r;
    BOOST_TEST(run_remote(r.remote, argv_only({"sh", "-c", "exit 42"})).exit_code == 42);
    BOOST_TEST(run_remote(r.remote, argv_only({"false"})).exit_code == 1);
    const auto missing = run_remote(r.remote, argv_only({"oneds-no-such-program"}));
    BOOST_TEST(missing.exit_code == 127, missing.stderr_text);
}

BOOST_AUTO_TEST_CASE(stdout_and_stderr_lines_are_streamed) {
    runners r;
    std::vector<std::string> out;
    std::vector<std::string> err;
    run_options opts;
    opts.on_stdout_line = [&](std::string_view l) { out.emplace_back(l); };
    opts.on_stderr_line = [&](std::string_view l) { err.emplace_back(l); };
    const auto res =
        run_remote(r.remote, argv_only({"sh", "-c", "echo o1; echo e1 >&2; echo o2; printf e2 >&2"}), opts);
    BOOST_TEST(res.exit_code == 0);
    BOOST_TEST(out == (std::vector<std::string>{"o1", "o2"}), boost::test_tools::per_element());
    BOOST_TEST(err == (std::vector<std::string>{"e1", "e2"}), boost::test_tools::per_element());
    BOOST_TEST(res.stderr_text == "e1\ne2");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ssh_runner_secrets)

BOOST_AUTO_TEST_CASE(secret_env_is_refused_for_the_hypervisor) {
    runners r;
    command cmd;
    cmd.argv = {"printenv", "RESTIC_PASSWORD"};
    cmd.env = {{"RESTIC_PASSWORD", "hunter2"}};
    cmd.secret_env = {"RESTIC_PASSWORD"};
    const auto res = r.remote.run("hypervisor", cmd, {});
    BOOST_TEST_REQUIRE(!res.has_value());
    BOOST_TEST((res.err().kind == error_kind::invalid));
    BOOST_TEST(res.err().message ==
               "secret RESTIC_PASSWORD cannot be passed to a remote host on the command line; pass it on stdin");
}

BOOST_AUTO_TEST_CASE(secret_env_is_fine_on_localhost_and_stays_off_the_command_line) {
    runners r;
    command cmd;
    cmd.argv = {"sh", "-c", "printenv RESTIC_PASSWORD; exec cat /proc/$$/cmdline"};
    cmd.env = {{"RESTIC_PASSWORD", "hunter2 with spaces"}};
    cmd.secret_env = {"RESTIC_PASSWORD"};
    const auto res = run_remote(r.remote, cmd, {}, "localhost");
    BOOST_TEST(res.stdout_text.starts_with("hunter2 with spaces\n"), res.stdout_text);
    BOOST_TEST(res.stdout_text.find("hunter2", 1) == std::string::npos, res.stdout_text);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ssh_runner_local_hosts)

BOOST_AUTO_TEST_CASE(localhost_runs_here_without_ssh) {
    local_runner local;
    ssh_options o = options_for(sshd().ssh_config_file());
    o.ssh_binary = "/nonexistent/oneds-ssh";  // any use of ssh would fail
    ssh_runner remote(local, o);
    for (const std::string host : {"", "localhost"}) {
        const auto res = run_remote(remote, argv_only({"echo", "here"}), {}, host);
        BOOST_TEST(res.stdout_text == "here\n", host);
    }
    const auto res = remote.run("hypervisor", argv_only({"echo", "there"}), {});
    BOOST_TEST_REQUIRE(!res.has_value());
    BOOST_TEST((res.err().kind == error_kind::not_found));
    BOOST_TEST(res.err().message.find("/nonexistent/oneds-ssh") != std::string::npos, res.err().message);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ssh_runner_failures)

BOOST_AUTO_TEST_CASE(unknown_host_key_is_exit_255_classified_host_key) {
    const fs::path empty_known_hosts = sshd().dir() / "empty_known_hosts";
    std::ofstream(empty_known_hosts).close();
    runners r(options_for(write_config("ssh_config_unknown_key", empty_known_hosts, sshd().port())));
    const auto res = run_remote(r.remote, argv_only({"true"}));
    BOOST_TEST(res.exit_code == 255);
    BOOST_TEST(res.stderr_text.find("Host key verification failed") != std::string::npos, res.stderr_text);
    BOOST_TEST((classify_ssh_failure(res.stderr_text) == error_kind::host_key), res.stderr_text);
    BOOST_TEST(fs::file_size(empty_known_hosts) == 0U, "ssh must not have learnt the key");
}

BOOST_AUTO_TEST_CASE(closed_port_is_exit_255_classified_unreachable) {
    runners r(options_for(write_config("ssh_config_closed", sshd().known_hosts_file(), closed_port())));
    const auto res = run_remote(r.remote, argv_only({"true"}));
    BOOST_TEST(res.exit_code == 255);
    BOOST_TEST((classify_ssh_failure(res.stderr_text) == error_kind::unreachable), res.stderr_text);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ssh_runner_cancellation)

BOOST_AUTO_TEST_CASE(cancel_interrupts_the_remote_command_through_a_remote_kill) {
    runners r;
    // The shell prints its pid, which is the login shell's (exec all along),
    // then becomes sleep.
    const auto run = cancel_after_first_line(r.remote, argv_only({"sh", "-c", "echo $$; exec sleep 60"}), 30s);
    BOOST_TEST(run.result.cancelled);
    BOOST_TEST_REQUIRE(run.remote_pid > 0);
    // The grace is 30 s: only the remote SIGINT can have ended it this soon.
    BOOST_TEST(std::chrono::duration<double>(run.took).count() < 20.0);
    BOOST_TEST(process_gone(run.remote_pid), "remote pid " << run.remote_pid << " survived");
    BOOST_TEST(run.result.stderr_text.find("ONEDS_PID") == std::string::npos, run.result.stderr_text);
}

BOOST_AUTO_TEST_CASE(remote_sigint_lets_the_command_clean_up) {
    runners r;
    const fs::path marker = sshd().dir() / "cleaned-up";
    const auto run = cancel_after_first_line(
        r.remote,
        argv_only({"sh", "-c",
                   "trap 'kill $!; echo cleaned > \"$0\"; exit 130' INT; echo $$; sleep 60 >/dev/null 2>&1 & wait",
                   marker.string()}),
        30s);
    BOOST_TEST(run.result.cancelled);
    BOOST_TEST(std::chrono::duration<double>(run.took).count() < 20.0);
    std::ifstream in(marker);
    std::string text;
    std::getline(in, text);
    BOOST_TEST(text == "cleaned", "the remote trap did not run: SIGINT did not reach it");
}

BOOST_AUTO_TEST_CASE(remote_command_that_ignores_sigint_is_killed_after_the_grace) {
    runners r;
    const auto run =
        cancel_after_first_line(r.remote, argv_only({"sh", "-c", "trap '' INT; echo $$; exec sleep 60"}), 500ms);
    BOOST_TEST(run.result.cancelled);
    BOOST_TEST_REQUIRE(run.remote_pid > 0);
    BOOST_TEST(std::chrono::duration<double>(run.took).count() < 30.0);
    BOOST_TEST(process_gone(run.remote_pid), "remote pid " << run.remote_pid << " survived");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ssh_runner_agent)

BOOST_AUTO_TEST_CASE(agent_is_forwarded_by_default_and_not_when_disabled) {
    // A private agent for the ssh client this test starts; ssh inherits
    // SSH_AUTH_SOCK from this process.
    const fs::path socket = sshd().dir() / "agent.sock";
    std::string out;
    std::string err;
    BOOST_TEST_REQUIRE(oneds::test::run_argv({"ssh-agent", "-s", "-a", socket.string()}, &out, &err) == 0, err);
    const auto pid_at = out.find("SSH_AGENT_PID=");
    BOOST_TEST_REQUIRE(pid_at != std::string::npos, out);
    const pid_t agent = std::stoi(out.substr(pid_at + 14));
    const char *old_sock = std::getenv("SSH_AUTH_SOCK");
    const std::string saved = old_sock != nullptr ? old_sock : "";
    ::setenv("SSH_AUTH_SOCK", socket.string().c_str(), 1);

    const command probe = argv_only({"sh", "-c", "test -S \"$SSH_AUTH_SOCK\" && echo forwarded || echo none"});
    runners forwarding;
    const auto with = run_remote(forwarding.remote, probe);
    ssh_options off = options_for(sshd().ssh_config_file());
    off.forward_agent = false;
    runners plain(off);
    const auto without = run_remote(plain.remote, probe);

    if (old_sock != nullptr)
        ::setenv("SSH_AUTH_SOCK", saved.c_str(), 1);
    else
        ::unsetenv("SSH_AUTH_SOCK");
    ::kill(agent, SIGTERM);

    BOOST_TEST(with.stdout_text == "forwarded\n", with.stderr_text << "\nsshd: " << sshd().log_text());
    BOOST_TEST(without.stdout_text == "none\n", without.stderr_text);
}

BOOST_AUTO_TEST_SUITE_END()
