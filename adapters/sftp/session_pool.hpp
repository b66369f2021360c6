// Persistent SFTP sessions, one per (server, user, ssh config), shared by all
// sftp_store objects made with the same pool.
//
// Why: a plugin instance in MAD mode lives as long as oned; MONITOR comes every
// few minutes for every datastore, and an SSH connection costs a handshake and
// a public key signature each time. The pool connects once and reuses the
// session across calls and requests.
//
// Contract:
// * Thread-safe. Calls on one session are serialised (libssh2 sessions are not
//   thread-safe); calls on sessions of different keys run in parallel.
// * A session is connected on first use: the server's settings are what
//   OpenSSH resolves for it (`ssh -G`, adapters/sshconfig: HostName, Port,
//   User, IdentityFile, UserKnownHostsFile, StrictHostKeyChecking,
//   IdentitiesOnly, ProxyJump, ProxyCommand); the connection is a TCP socket
//   or the pipes of a proxy process (internal/proxy.hpp); the host key is
//   checked against known_hosts, then the ssh agent (SSH_AUTH_SOCK) and the
//   identity files are tried. No password is ever used.
// * A reused session whose connection turns out broken (server restarted,
//   idle connection cut) is dropped and the call is retried once on a fresh
//   connection, transparently. A call that passes its deadline is not retried
//   (the server may hang); its session is dropped and the next call reconnects.
// * Every blocking step (TCP connect, SSH handshake, authentication, each SFTP
//   call) has its own deadline of options.timeout.
// * The destructor closes every session (a couple of seconds at most each on a
//   server that stopped answering). Destroy the pool only after every store
//   that uses it has finished its calls.
#pragma once

#include "plugin/ports/repo_store.hpp"
#include "adapters/sshconfig/ssh_config.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <tuple>

namespace oneds::adapters::sftp {

namespace internal {
class session;
}

struct pool_options {
    std::chrono::milliseconds timeout{30'000};
};

class session_pool {
public:
    // resolver gives the OpenSSH client settings of each target (cached); it
    // must outlive the pool.
    explicit session_pool(sshconfig::resolver &resolver, pool_options options = {});
    ~session_pool();
    session_pool(const session_pool &) = delete;
    session_pool &operator=(const session_pool &) = delete;
    session_pool(session_pool &&) = delete;
    session_pool &operator=(session_pool &&) = delete;

    [[nodiscard]] const pool_options &options() const noexcept { return options_; }

    // SSH connections established since the pool was made (reconnects count).
    [[nodiscard]] std::size_t connections_opened() const noexcept;
    // Sessions connected right now.
    [[nodiscard]] std::size_t session_count() const noexcept;

    // Closes every idle session; the next call on it reconnects.
    void close_all() noexcept;

    // Test hook: shuts down the TCP socket of every session, as a server
    // restart or a cut network would, leaving libssh2 to find out.
    void break_connections_for_testing() noexcept;

private:
    friend class sftp_store;
    using session_op = std::function<void(internal::session &)>;

    // The OpenSSH client settings of target (ssh -G, cached by the resolver).
    ports::result<sshconfig::host_settings> settings_for(const ports::sftp_target &target, const std::stop_token &stop);

    // Runs op on the target's session, alone (one call at a time per
    // session), connecting first when there is none. When op leaves a reused
    // session lost, reconnects once and runs op again. An error is returned
    // only when connecting fails or stop ends the wait for the session (kind
    // cancelled); op's own outcome is op's business.
    ports::status run(const ports::sftp_target &target, const session_op &op, const std::stop_token &stop);

    struct slot;
    using key = std::tuple<std::string, std::string, std::string>;
    std::shared_ptr<slot> slot_for(const ports::sftp_target &target);
    ports::status connect(const ports::sftp_target &target, slot &s, const std::stop_token &stop);
    void drop(slot &s, bool polite) noexcept;

    sshconfig::resolver &resolver_;
    pool_options options_;
    std::mutex mutex_;  // guards slots_ only; never held while talking to a server
    std::map<key, std::shared_ptr<slot>> slots_;
    std::atomic<std::size_t> connections_{0};
    std::atomic<std::size_t> live_{0};
};

}  // namespace oneds::adapters::sftp
