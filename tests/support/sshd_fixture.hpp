// A real OpenSSH server for tests: /usr/sbin/sshd on a free loopback port, with
// throw-away host and user keys and ready-made client files, so tests can run
// ssh, sftp and libssh2 against the real thing instead of a stand-in.
//
// Contract:
// * The constructor returns only once the server answers with its SSH banner;
//   otherwise it throws std::runtime_error carrying the sshd log.
// * The current user (root in CI) may log in with identity_file(); nobody may
//   log in with a password. known_hosts_file() trusts the host key under
//   [127.0.0.1]:port and [alias]:port for both aliases of ssh_config_file().
// * Everything lives in dir(), a private (0700) temporary directory that the
//   destructor removes after stopping the server. The destructor never throws.
// * sshd runs with PR_SET_PDEATHSIG, so it dies with the thread that created the
//   fixture even if the test crashes: create a fixture on a thread that outlives it.
// * Not thread-safe: use one fixture from one thread at a time (the server itself
//   accepts any number of concurrent connections and channels).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace oneds::test {

// Runs argv[0] (searched in PATH when it has no '/') with argv, feeding input on
// its stdin and capturing its stdout and stderr into *out and *err (either may be
// null to discard). Blocks until the child exits; returns its exit status, or
// 128 + signal number when a signal ended it. The child gets no other descriptor
// of this process and default signal dispositions. Throws std::system_error when
// the program cannot be started.
[[nodiscard]] int run_argv(const std::vector<std::string> &argv, std::string *out, std::string *err,
                           const std::string &input = {});

struct sshd_options {
    // The Host alias of ssh_config_file() that tests use; "hypervisor" is always
    // written as a second alias for the same server.
    std::string alias = "backupserver";
    // sshd_config lines written before the defaults; sshd keeps the first value it
    // reads for a keyword, so these override the defaults.
    std::vector<std::string> extra_sshd_config;
};

class sshd_fixture {
public:
    explicit sshd_fixture(sshd_options options = {});
    ~sshd_fixture();

    sshd_fixture(const sshd_fixture &) = delete;
    sshd_fixture &operator=(const sshd_fixture &) = delete;
    sshd_fixture(sshd_fixture &&) = delete;
    sshd_fixture &operator=(sshd_fixture &&) = delete;

    [[nodiscard]] unsigned short port() const noexcept;
    // Always "127.0.0.1": the server listens on nothing else.
    [[nodiscard]] const std::string &host() const noexcept;
    // The login name of the user running the tests, the one allowed to log in.
    [[nodiscard]] const std::string &user() const noexcept;
    [[nodiscard]] const std::filesystem::path &dir() const noexcept;
    // The user's private key (no passphrase) and its .pub beside it.
    [[nodiscard]] const std::filesystem::path &identity_file() const noexcept;
    [[nodiscard]] const std::filesystem::path &public_key_file() const noexcept;
    [[nodiscard]] const std::filesystem::path &known_hosts_file() const noexcept;
    // An OpenSSH client config with Host entries alias() and "hypervisor".
    [[nodiscard]] const std::filesystem::path &ssh_config_file() const noexcept;
    [[nodiscard]] const std::string &alias() const noexcept;
    // What sshd has written to its stderr so far (LogLevel ERROR).
    [[nodiscard]] std::string log_text() const;
    // The listening sshd process, a child of this process until the destructor
    // has stopped and reaped it.
    [[nodiscard]] pid_t sshd_pid() const noexcept;

    // The backup server's sshd dying: SIGKILL to the listening sshd and to
    // every sshd process it started for a connection (their sessions' own
    // commands are left running, as after a real crash of sshd); the port is
    // then closed. restart() serves the same port, keys and files again and
    // returns once the banner answers (throws as the constructor does).
    void kill_server() noexcept;
    void restart();

private:
    struct state;
    std::unique_ptr<state> state_;
};

}  // namespace oneds::test
