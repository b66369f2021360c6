// ports::repo_store over the local filesystem.
//
// capacity() uses statvfs(3) with df's arithmetic, so the numbers equal what
// `df -PB1` prints for the same path: total = f_blocks * f_frsize,
// free = f_bavail * f_frsize (what an unprivileged user may still write),
// used = (f_blocks - f_bfree) * f_frsize.
//
// Stateless and thread-safe. Errors name the path: not_found, permission,
// invalid (empty path, a file where a directory is needed) or io; cancelled
// when the stop token has stopped before the call (a file system call itself
// cannot be interrupted).
#pragma once

#include "plugin/ports/repo_store.hpp"

namespace oneds::adapters::local {

class local_store final : public ports::repo_store {
public:
    ports::result<ports::file_info> stat(const std::string &path, const std::stop_token &stop) override;
    ports::status make_directories(const std::string &path, const std::stop_token &stop) override;
    ports::result<ports::capacity_info> capacity(const std::string &path, const std::stop_token &stop) override;
    ports::result<std::optional<std::vector<ports::dir_entry>>> list_directory(const std::string &path,
                                                                               const std::stop_token &stop) override;
    std::string describe() const override;
};

}  // namespace oneds::adapters::local
