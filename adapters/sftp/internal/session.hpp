// One connected SSH session with its SFTP channel. Internal to the sftp
// adapter; session_pool owns sessions and serialises calls on each.
//
// Shape as in the OrbitSsh model: a private constructor and a static create()
// that returns a result, one RAII owner per resource, a destructor that only
// frees. All I/O is non-blocking and every step has its own deadline of
// `timeout` (TCP connect, handshake, authentication, SFTP start, each SFTP
// call). Not thread-safe.
#pragma once

#include "plugin/ports/repo_store.hpp"
#include "adapters/sftp/internal/handles.hpp"
#include "adapters/sftp/internal/proxy.hpp"
#include "adapters/sshconfig/ssh_config.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

namespace oneds::adapters::sftp::internal {

class session {
public:
    // Why a session must not be used again after a failed call.
    enum class health {
        good,
        lost,       // the connection broke (socket error, closed channel): worth one reconnect
        timed_out,  // a call passed its deadline: the server may be hung, so no immediate retry
        stopped,    // a call was stopped half way: out of step with the server, dropped
    };

    // stop ends any step at once (error kind cancelled).
    static ports::result<std::unique_ptr<session>> create(const sshconfig::host_settings &settings,
                                                          std::chrono::milliseconds timeout,
                                                          const std::stop_token &stop = {});
    ~session();
    session(const session &) = delete;
    session &operator=(const session &) = delete;
    session(session &&) = delete;
    session &operator=(session &&) = delete;

    // Each call waits at most the timeout, and stops at once (error kind
    // cancelled, the session then unusable) when stop does.
    ports::result<ports::file_info> stat(const std::string &path, const std::stop_token &stop = {});
    ports::status make_directories(const std::string &path, const std::stop_token &stop = {});
    ports::result<ports::capacity_info> statvfs(const std::string &path, const std::stop_token &stop = {});
    ports::result<std::optional<std::string>> read_file(const std::string &path, std::size_t max,
                                                        const std::stop_token &stop = {});
    // repo_store::list_directory: one opendir and readdir until the end.
    ports::result<std::optional<std::vector<ports::dir_entry>>> list_directory(const std::string &path,
                                                                               const std::stop_token &stop = {});
    // repo_store::put_file: <path>.oneds-<random> written (O_EXCL), chmod,
    // then renamed to path. SFTP version 3 renames refuse an existing target
    // (OpenSSH links), so an existing path is first renamed aside and removed
    // after: path is never partial, only absent for the instant between the
    // two renames.
    ports::status put_file(const std::string &local_path, const std::string &path, unsigned mode,
                           const std::stop_token &stop = {});

    [[nodiscard]] health state() const noexcept { return health_; }

    // Closes the SFTP channel and sends SSH_MSG_DISCONNECT (best effort, a
    // couple of seconds at most) so that the server sees a clean close. The
    // session is unusable afterwards; the owner calls this just before
    // dropping a healthy session.
    void say_goodbye() noexcept;

    // Shuts the TCP socket down, so that freeing a failed session does not
    // wait for a server that may be hung. Also the test hook that simulates a
    // network cut under libssh2's feet.
    void abandon() noexcept;

    // "user@hostname:port" for messages.
    [[nodiscard]] const std::string &peer() const noexcept { return peer_; }

private:
    session(std::unique_ptr<proxy_process> proxy, unique_fd socket, session_ptr ssh, sftp_ptr sftp, std::string peer,
            std::chrono::milliseconds timeout);

    // Maps a failed libssh2 SFTP call to a port error and updates health_.
    ports::error failure(int rc, const std::string &what, const std::string &path);
    template <typename Call>
    int run(const std::stop_token &stop, Call &&call);
    // Opens path (libssh2 flags, mode for a new file); nullptr and the error.
    ports::result<LIBSSH2_SFTP_HANDLE *> open(const std::string &path, unsigned long flags, long mode,
                                              const std::stop_token &stop);
    void close(LIBSSH2_SFTP_HANDLE *handle, const std::stop_token &stop);
    ports::status rename(const std::string &from, const std::string &to, const std::stop_token &stop);
    ports::status remove(const std::string &path, const std::stop_token &stop);

    // Declared in this order so that the SFTP channel goes before the session,
    // the session before its socket, and the socket before the proxy (if any)
    // that carries it.
    std::unique_ptr<proxy_process> proxy_;
    unique_fd socket_;
    session_ptr ssh_;
    sftp_ptr sftp_;
    std::string peer_;
    std::chrono::milliseconds timeout_;
    health health_ = health::good;
};

}  // namespace oneds::adapters::sftp::internal
