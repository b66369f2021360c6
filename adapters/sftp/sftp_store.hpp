// ports::repo_store over SFTP (libssh2), on sessions kept by a session_pool.
//
// stat() follows symlinks and reports a missing path as exists=false;
// make_directories() is mkdir -p (an existing directory is fine, a file in
// the way is error_kind::invalid); capacity() asks the server for
// statvfs@openssh.com and applies df's arithmetic (see local_store.hpp), so
// the numbers equal `df -PB1` on the server. describe() is
// "sftp://user@server" with the effective user and the server as given.
//
// Errors: unreachable (connect, lost connection, deadline), host_key,
// permission (authentication, or the server refusing a path), not_found
// (bad alias, missing config file), invalid, unsupported (no statvfs
// extension, no sftp subsystem), io. Messages name user@host and the path;
// they never contain key material.
//
// Thread-safe: calls may come from any thread; the pool serialises them per
// session.
#pragma once

#include "plugin/ports/repo_store.hpp"
#include "adapters/sftp/session_pool.hpp"

#include <memory>
#include <string>

namespace oneds::adapters::sftp {

class sftp_store final : public ports::repo_store {
public:
    // Resolves the ssh settings now (ssh -G, cached by the pool's resolver),
    // so that a bad alias or a broken config file fails here and describe()
    // can name the effective user; connects on first use (through pool,
    // possibly reusing a session other stores opened).
    static ports::result<std::unique_ptr<sftp_store>> create(ports::sftp_target target,
                                                             std::shared_ptr<session_pool> pool);

    ports::result<ports::file_info> stat(const std::string &path, const std::stop_token &stop) override;
    ports::status make_directories(const std::string &path, const std::stop_token &stop) override;
    ports::result<ports::capacity_info> capacity(const std::string &path, const std::stop_token &stop) override;
    ports::result<std::optional<std::string>> read_file(const std::string &path, std::size_t max,
                                                        const std::stop_token &stop) override;
    ports::status put_file(const std::string &local_path, const std::string &path, unsigned mode,
                           const std::stop_token &stop) override;
    ports::result<std::optional<std::vector<ports::dir_entry>>> list_directory(const std::string &path,
                                                                               const std::stop_token &stop) override;
    std::string describe() const override;

private:
    sftp_store(ports::sftp_target target, std::shared_ptr<session_pool> pool, std::string description);

    template <typename T, typename Op>
    ports::result<T> on_session(const char *what, const std::string &path, const std::stop_token &stop, Op &&op);

    ports::sftp_target target_;
    std::shared_ptr<session_pool> pool_;
    std::string description_;
};

}  // namespace oneds::adapters::sftp
