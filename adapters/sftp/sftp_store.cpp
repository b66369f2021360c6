#include "adapters/sftp/sftp_store.hpp"

#include "adapters/sftp/internal/session.hpp"
#include "adapters/sshconfig/ssh_config.hpp"

#include <exception>
#include <optional>
#include <utility>

namespace oneds::adapters::sftp {

using ports::error;
using ports::error_kind;

sftp_store::sftp_store(ports::sftp_target target, std::shared_ptr<session_pool> pool, std::string description)
    : target_(std::move(target)), pool_(std::move(pool)), description_(std::move(description)) {}

ports::result<std::unique_ptr<sftp_store>> sftp_store::create(ports::sftp_target target,
                                                              std::shared_ptr<session_pool> pool) {
    if (!pool) return error{error_kind::invalid, "sftp store for " + target.server + ": no session pool"};
    if (target.server.empty()) return error{error_kind::invalid, "sftp store: empty server name"};
    try {
        auto settings = pool->settings_for(target, {});
        if (!settings) return settings.err();
        std::string description = "sftp://" + settings->user + "@" + target.server;
        return std::unique_ptr<sftp_store>(new sftp_store(std::move(target), std::move(pool), std::move(description)));
    } catch (const std::exception &e) {
        return error{error_kind::io, "sftp store for " + target.server + ": " + e.what()};
    }
}

template <typename T, typename Op>
ports::result<T> sftp_store::on_session(const char *what, const std::string &path, const std::stop_token &stop,
                                        Op &&op) {
    if (path.empty()) return error{error_kind::invalid, std::string(what) + " on " + description_ + ": empty path"};
    // Nothing throws across the port: allocation failures and the like end
    // here as io errors (the pool's locks are scoped, its state stays sound).
    try {
        std::optional<ports::result<T>> outcome;
        auto ran = pool_->run(
            target_, [&](internal::session &s) { outcome.emplace(op(s)); }, stop);
        if (!ran) return ran.err();
        return std::move(*outcome);
    } catch (const std::exception &e) {
        return error{error_kind::io, std::string(what) + " " + path + " on " + description_ + ": " + e.what()};
    }
}

ports::result<ports::file_info> sftp_store::stat(const std::string &path, const std::stop_token &stop) {
    return on_session<ports::file_info>("stat", path, stop, [&](internal::session &s) { return s.stat(path, stop); });
}

ports::status sftp_store::make_directories(const std::string &path, const std::stop_token &stop) {
    return on_session<ports::none>("mkdir -p", path, stop,
                                   [&](internal::session &s) { return s.make_directories(path, stop); });
}

ports::result<ports::capacity_info> sftp_store::capacity(const std::string &path, const std::stop_token &stop) {
    return on_session<ports::capacity_info>("statvfs", path, stop,
                                            [&](internal::session &s) { return s.statvfs(path, stop); });
}

ports::result<std::optional<std::string>> sftp_store::read_file(const std::string &path, std::size_t max,
                                                                const std::stop_token &stop) {
    return on_session<std::optional<std::string>>("read", path, stop,
                                                  [&](internal::session &s) { return s.read_file(path, max, stop); });
}

ports::status sftp_store::put_file(const std::string &local_path, const std::string &path, unsigned mode,
                                   const std::stop_token &stop) {
    return on_session<ports::none>("write", path, stop,
                                   [&](internal::session &s) { return s.put_file(local_path, path, mode, stop); });
}

ports::result<std::optional<std::vector<ports::dir_entry>>> sftp_store::list_directory(const std::string &path,
                                                                                       const std::stop_token &stop) {
    return on_session<std::optional<std::vector<ports::dir_entry>>>(
        "list", path, stop, [&](internal::session &s) { return s.list_directory(path, stop); });
}

std::string sftp_store::describe() const { return description_; }

}  // namespace oneds::adapters::sftp
