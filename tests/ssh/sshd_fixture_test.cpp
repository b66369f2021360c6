#define BOOST_TEST_MODULE sshd_fixture_test
#include <boost/test/unit_test.hpp>

#include "tests/support/sshd_fixture.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

namespace fs = std::filesystem;
using oneds::test::run_argv;
using fixture = oneds::test::sshd_fixture;

namespace {

struct result {
    int status = -1;
    std::string out;
    std::string err;
};

result run(const std::vector<std::string> &argv, const std::string &input = {}) {
    result r;
    r.status = run_argv(argv, &r.out, &r.err, input);
    return r;
}

// ssh to the fixture without its client config, so that the test alone decides
// which key and which known_hosts are used (IdentityFile in a config adds to
// -i instead of replacing it).
result ssh_direct(const fixture &fx, const fs::path &identity, const fs::path &known_hosts) {
    return run({"ssh",
                "-F",
                "/dev/null",
                "-p",
                std::to_string(fx.port()),
                "-i",
                identity.string(),
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "UserKnownHostsFile=" + known_hosts.string(),
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ControlPath=none",
                "-l",
                fx.user(),
                fx.host(),
                "echo",
                "in"});
}

// 0 when 127.0.0.1:port accepts a TCP connection, else the connect errno.
int connect_errno(unsigned short port) {
    const int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(sock >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    const int rc = ::connect(sock, reinterpret_cast<const sockaddr *>(&addr), sizeof addr);
    const int error = rc == 0 ? 0 : errno;
    ::close(sock);
    return error;
}

// The server port as the login shell sees it: the last field of $SSH_CONNECTION.
std::string server_port_seen_through(const fs::path &ssh_config, const std::string &alias) {
    const auto r = run({"ssh", "-F", ssh_config.string(), alias, "echo $SSH_CONNECTION"});
    BOOST_TEST_REQUIRE(r.status == 0, "ssh " << alias << " failed: " << r.err);
    std::istringstream fields(r.out);
    std::string field;
    std::string last;
    while (fields >> field) last = field;
    return last;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sshd_fixture)

BOOST_AUTO_TEST_CASE(ssh_client_runs_a_command_through_the_config_alias) {
    const oneds::test::sshd_fixture fx;
    const auto r = run({"ssh", "-F", fx.ssh_config_file().string(), "backupserver", "echo", "hello"});
    BOOST_TEST(r.status == 0, "stderr: " << r.err << "\nsshd log: " << fx.log_text());
    BOOST_TEST(r.out == "hello\n");
    BOOST_TEST(fx.alias() == "backupserver");
    BOOST_TEST(fx.host() == "127.0.0.1");
}

BOOST_AUTO_TEST_CASE(hypervisor_alias_reaches_the_same_server) {
    const oneds::test::sshd_fixture fx;
    BOOST_TEST(server_port_seen_through(fx.ssh_config_file(), "hypervisor") == std::to_string(fx.port()));
}

BOOST_AUTO_TEST_CASE(configured_alias_replaces_backupserver) {
    const oneds::test::sshd_fixture fx(oneds::test::sshd_options{.alias = "vault", .extra_sshd_config = {}});
    BOOST_TEST(fx.alias() == "vault");
    BOOST_TEST(server_port_seen_through(fx.ssh_config_file(), "vault") == std::to_string(fx.port()));
    const auto r = run({"ssh", "-F", fx.ssh_config_file().string(), "backupserver", "true"});
    BOOST_TEST(r.status == 255, "backupserver should not be configured any more: " << r.err);
}

BOOST_AUTO_TEST_CASE(known_hosts_trusts_the_server_under_its_aliases) {
    const oneds::test::sshd_fixture fx;
    const std::string config = fx.ssh_config_file().string();
    const std::string port = std::to_string(fx.port());
    for (const std::string &name : {"[backupserver]:" + port, "[hypervisor]:" + port, std::string("backupserver")}) {
        const auto r = run({"ssh", "-F", config, "-o", "HostKeyAlias=" + name, "backupserver", "true"});
        BOOST_TEST(r.status == 0, name << ": " << r.err);
    }
    const auto r = run({"ssh", "-F", config, "-o", "HostKeyAlias=[elsewhere]:" + port, "backupserver", "true"});
    BOOST_TEST(r.status == 255);
    BOOST_TEST(r.err.find("Host key verification failed") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(server_rejects_a_key_it_was_not_given) {
    const oneds::test::sshd_fixture fx;
    const fs::path stranger = fx.dir() / "stranger_ed25519";
    std::string err;
    BOOST_TEST_REQUIRE(
        run_argv({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", stranger.string()}, nullptr, &err) == 0, err);

    // The same command with the fixture's key works, so only the key differs.
    const auto accepted = ssh_direct(fx, fx.identity_file(), fx.known_hosts_file());
    BOOST_TEST_REQUIRE(accepted.status == 0, accepted.err);
    BOOST_TEST(accepted.out == "in\n");

    const auto refused = ssh_direct(fx, stranger, fx.known_hosts_file());
    BOOST_TEST(refused.status == 255);
    BOOST_TEST(refused.out.empty());
    BOOST_TEST(refused.err.find("Permission denied") != std::string::npos, refused.err);
}

BOOST_AUTO_TEST_CASE(client_without_the_host_key_refuses_the_server) {
    const oneds::test::sshd_fixture fx;
    const fs::path empty_known_hosts = fx.dir() / "empty_known_hosts";
    std::ofstream{empty_known_hosts}.close();

    const auto r = ssh_direct(fx, fx.identity_file(), empty_known_hosts);
    BOOST_TEST(r.status == 255);
    BOOST_TEST(r.out.empty());
    BOOST_TEST(r.err.find("Host key verification failed") != std::string::npos, r.err);
    BOOST_TEST(fs::file_size(empty_known_hosts) == 0U, "ssh must not have learnt the key");
}

BOOST_AUTO_TEST_CASE(two_fixtures_run_side_by_side_on_different_ports) {
    const oneds::test::sshd_fixture first;
    const oneds::test::sshd_fixture second;
    BOOST_TEST(first.port() != second.port());
    BOOST_TEST(first.dir() != second.dir());
    BOOST_TEST(first.sshd_pid() != second.sshd_pid());
    // Each config reaches its own server, not just some server.
    BOOST_TEST(server_port_seen_through(first.ssh_config_file(), "backupserver") == std::to_string(first.port()));
    BOOST_TEST(server_port_seen_through(second.ssh_config_file(), "backupserver") == std::to_string(second.port()));
}

BOOST_AUTO_TEST_CASE(destroyed_fixture_frees_its_port_directory_and_process) {
    auto fx = std::make_unique<oneds::test::sshd_fixture>();
    const auto port = fx->port();
    const fs::path dir = fx->dir();
    const pid_t pid = fx->sshd_pid();
    BOOST_TEST_REQUIRE(connect_errno(port) == 0);
    BOOST_TEST_REQUIRE(fs::is_directory(dir));

    fx.reset();

    BOOST_TEST(connect_errno(port) == ECONNREFUSED);
    BOOST_TEST(!fs::exists(dir));
    // Reaped, not a zombie: the pid is gone altogether.
    BOOST_TEST(::kill(pid, 0) == -1);
    BOOST_TEST(errno == ESRCH);
}

BOOST_AUTO_TEST_CASE(server_that_cannot_start_throws_with_its_log) {
    const oneds::test::sshd_options broken{.alias = "backupserver", .extra_sshd_config = {"NoSuchKeyword yes"}};
    try {
        const oneds::test::sshd_fixture fx(broken);
        BOOST_FAIL("sshd started with an invalid sshd_config");
    } catch (const std::runtime_error &e) {
        const std::string what = e.what();
        BOOST_TEST(what.find("Bad configuration option: NoSuchKeyword") != std::string::npos, what);
    }
}

BOOST_AUTO_TEST_CASE(sftp_subsystem_creates_a_directory) {
    const oneds::test::sshd_fixture fx;
    const fs::path target = fx.dir() / "made by sftp";
    const fs::path batch = fx.dir() / "sftp_batch";
    std::ofstream{batch} << "mkdir \"" << target.string() << "\"\n";
    BOOST_TEST_REQUIRE(!fs::exists(target));

    const auto r = run({"sftp", "-F", fx.ssh_config_file().string(), "-b", batch.string(), "backupserver"});
    BOOST_TEST(r.status == 0, "stderr: " << r.err << "\nsshd log: " << fx.log_text());
    BOOST_TEST(fs::is_directory(target));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(run_argv_helper)

BOOST_AUTO_TEST_CASE(feeds_stdin_and_keeps_stdout_and_stderr_apart) {
    // More than a pipe buffer each way: a helper that writes all input before
    // reading would deadlock here.
    const std::string input(1 << 20, 'x');
    std::string out;
    std::string err;
    const int status = run_argv({"sh", "-c", "cat; echo oops >&2; exit 3"}, &out, &err, input);
    BOOST_TEST(status == 3);
    BOOST_TEST(out.size() == input.size());
    BOOST_TEST((out == input));
    BOOST_TEST(err == "oops\n");
}

BOOST_AUTO_TEST_CASE(child_that_ignores_its_input_does_not_kill_the_caller) {
    const std::string input(1 << 20, 'y');
    std::string out;
    BOOST_TEST(run_argv({"sh", "-c", "exec 0<&-; echo done"}, &out, nullptr, input) == 0);
    BOOST_TEST(out == "done\n");
}

BOOST_AUTO_TEST_CASE(reports_a_signal_as_128_plus_its_number) {
    BOOST_TEST(run_argv({"sh", "-c", "kill -TERM $$"}, nullptr, nullptr) == 128 + SIGTERM);
}

BOOST_AUTO_TEST_CASE(child_sees_only_the_three_standard_streams) {
    // Inheritable on purpose: the helper, not the flag, must keep it out.
    const int leaky = ::open("/dev/null", O_RDONLY);
    BOOST_TEST_REQUIRE(leaky >= 0);
    std::string out;
    const int status = run_argv({"ls", "/proc/self/fd"}, &out, nullptr);
    ::close(leaky);
    BOOST_TEST_REQUIRE(status == 0);
    // 0, 1, 2 and the descriptor ls opened to read the directory.
    std::istringstream fds(out);
    std::vector<std::string> names;
    for (std::string name; fds >> name;) names.push_back(name);
    BOOST_TEST(names.size() == 4U, out);
}

BOOST_AUTO_TEST_CASE(missing_program_throws) {
    BOOST_CHECK_THROW((void)run_argv({"oneds-no-such-program"}, nullptr, nullptr), std::system_error);
}

BOOST_AUTO_TEST_SUITE_END()
