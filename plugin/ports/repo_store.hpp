// Port: the storage a restic repository lives on, for what the plugin does
// without restic: probe for a repository (stat of <repo>/config instead of a
// restic start), create BASE_PATH, report capacity for MONITOR.
//
// Implementations: SFTP through libssh2 (one session per server, kept and
// reused across requests), a local directory. A backend without statvfs
// (S3) returns error_kind::unsupported from capacity().
#pragma once

#include "plugin/ports/result.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace oneds::ports {

struct file_info {
    bool exists = false;
    bool is_directory = false;
    std::uint64_t size = 0;
    bool executable = false;  // a regular file with an execute bit
};

// One entry of a directory listing (list_directory).
struct dir_entry {
    std::string name;  // without the directory, never "." or ".."
    bool is_directory = false;
    std::uint64_t size = 0;  // regular files; 0 for directories
    std::int64_t mtime = 0;  // seconds since the epoch, as the storage says
    std::int64_t uid = -1;   // the owner's uid on the storage; -1 unknown
};

struct capacity_info {
    std::uint64_t total_bytes = 0;
    std::uint64_t free_bytes = 0;  // available to an unprivileged user (f_bavail)
    std::uint64_t used_bytes = 0;  // total - free blocks (f_blocks - f_bfree)
    bool read_only = false;        // mounted read-only (ST_RDONLY)
};

// How much a whole store (an S3 bucket) holds, where the backend can say it
// in one cheap request; an unknown figure is empty.
struct store_usage {
    std::optional<std::uint64_t> used_bytes;
    std::optional<std::uint64_t> objects;
};

// Every call takes the request's stop token: a stop ends a call that waits on
// the network at once (error kind cancelled) instead of at its timeout.
class repo_store {
public:
    virtual ~repo_store() = default;
    // exists=false (not an error) when the path is absent.
    virtual result<file_info> stat(const std::string &path, const std::stop_token &stop) = 0;
    // mkdir -p; succeeds when the directory already exists.
    virtual status make_directories(const std::string &path, const std::stop_token &stop) = 0;
    // statvfs of the filesystem holding path.
    virtual result<capacity_info> capacity(const std::string &path, const std::stop_token &stop) = 0;
    // Up to max bytes from the start of the file at path; nullopt (not an
    // error) when it is absent. Stores that cannot: error_kind::unsupported.
    virtual result<std::optional<std::string>> read_file(const std::string &path, std::size_t max,
                                                         const std::stop_token &stop) {
        (void)max;
        (void)stop;
        return error{error_kind::unsupported, "cannot read " + path + " on " + describe()};
    }
    // The entries of the directory at path (not "." and ".."), in no
    // particular order, not following symlinks; nullopt (not an error) when
    // it is absent (S3: the objects and common prefixes under path + "/",
    // delimiter '/'; no such key: nullopt). Stores that cannot:
    // error_kind::unsupported.
    virtual result<std::optional<std::vector<dir_entry>>> list_directory(const std::string &path,
                                                                         const std::stop_token &stop) {
        (void)stop;
        return error{error_kind::unsupported, "cannot list " + path + " on " + describe()};
    }
    // Puts a copy of the local file local_path at path with mode: written
    // under a temporary name beside path, given mode, then renamed to path,
    // so that path never holds a partial file. The directory must exist.
    // Stores that cannot: error_kind::unsupported.
    virtual status put_file(const std::string &local_path, const std::string &path, unsigned mode,
                            const std::stop_token &stop) {
        (void)local_path;
        (void)mode;
        (void)stop;
        return error{error_kind::unsupported, "cannot write " + path + " on " + describe()};
    }
    // The store's usage (usage_summary); answering at all also shows that
    // the store is reachable and takes the credentials. A store with no such
    // cheap request: error_kind::unsupported. Kind not_found: the store
    // (bucket) does not exist yet.
    virtual result<store_usage> usage_summary(const std::stop_token &stop) {
        (void)stop;
        return error{error_kind::unsupported, "no usage figures for " + describe()};
    }
    // What this store is, for messages: "sftp://user@server", "local".
    virtual std::string describe() const = 0;
};

// Where the SFTP store connects. server may be an alias of the ssh config file.
struct sftp_target {
    std::string server;
    std::string user;        // empty: ssh config's User, else the running user
    std::string ssh_config;  // empty: ~/.ssh/config if it exists
};

}  // namespace oneds::ports
