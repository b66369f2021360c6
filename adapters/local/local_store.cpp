#include "adapters/local/local_store.hpp"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <exception>
#include <filesystem>
#include <system_error>

namespace oneds::adapters::local {

namespace fs = std::filesystem;
using ports::error;
using ports::error_kind;

namespace {

error_kind kind_of(const std::error_code &ec) {
    if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) return error_kind::not_found;
    if (ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted) return error_kind::permission;
    return error_kind::io;
}

error fail(const std::error_code &ec, const std::string &what, const std::string &path) {
    return error{kind_of(ec), what + " " + path + ": " + ec.message()};
}

error empty_path(const char *what) { return error{error_kind::invalid, std::string(what) + ": empty path"}; }

// Nothing throws across the port: what std::filesystem or an allocation
// throws despite the error_code overloads ends here as an io error.
template <typename T, typename Body>
ports::result<T> guarded(const char *what, const std::string &path, const std::stop_token &stop, Body &&body) {
    if (path.empty()) return empty_path(what);
    if (stop.stop_requested()) return error{error_kind::cancelled, std::string(what) + " " + path + ": cancelled"};
    try {
        return body();
    } catch (const std::exception &e) {
        return error{error_kind::io, std::string(what) + " " + path + ": " + e.what()};
    }
}

}  // namespace

ports::result<ports::file_info> local_store::stat(const std::string &path, const std::stop_token &stop) {
    return guarded<ports::file_info>("stat", path, stop, [&]() -> ports::result<ports::file_info> {
        std::error_code ec;
        // status() follows symlinks, as SFTP's stat does, so both stores agree on
        // a repository reached through a link. For ENOENT and ENOTDIR it sets ec
        // and also the type not_found: absent, which is no error here.
        const auto status = fs::status(path, ec);
        ports::file_info info;
        if (status.type() == fs::file_type::not_found) return info;
        if (ec) return fail(ec, "cannot stat", path);
        info.exists = true;
        info.is_directory = status.type() == fs::file_type::directory;
        if (status.type() == fs::file_type::regular) {
            const auto size = fs::file_size(path, ec);
            if (ec) return fail(ec, "cannot stat", path);
            info.size = size;
        }
        return info;
    });
}

ports::status local_store::make_directories(const std::string &path, const std::stop_token &stop) {
    return guarded<ports::none>("mkdir -p", path, stop, [&]() -> ports::status {
        std::error_code ec;
        fs::create_directories(path, ec);
        if (!ec) return ports::ok();
        // A file in the way is bad input rather than a failing disk.
        if (ec == std::errc::file_exists || ec == std::errc::not_a_directory)
            return error{error_kind::invalid, "cannot create directory " + path + ": " + ec.message() +
                                                  " (a component exists and is not a directory)"};
        return fail(ec, "cannot create directory", path);
    });
}

ports::result<ports::capacity_info> local_store::capacity(const std::string &path, const std::stop_token &stop) {
    return guarded<ports::capacity_info>("statvfs", path, stop, [&]() -> ports::result<ports::capacity_info> {
        struct statvfs st {};
        if (::statvfs(path.c_str(), &st) != 0)
            return fail(std::error_code(errno, std::generic_category()), "cannot statvfs", path);
        const std::uint64_t unit = st.f_frsize != 0 ? st.f_frsize : st.f_bsize;
        ports::capacity_info info;
        info.total_bytes = static_cast<std::uint64_t>(st.f_blocks) * unit;
        info.free_bytes = static_cast<std::uint64_t>(st.f_bavail) * unit;
        info.used_bytes = static_cast<std::uint64_t>(st.f_blocks - st.f_bfree) * unit;
        info.read_only = (st.f_flag & ST_RDONLY) != 0;
        return info;
    });
}

ports::result<std::optional<std::vector<ports::dir_entry>>> local_store::list_directory(const std::string &path,
                                                                                        const std::stop_token &stop) {
    using listing = std::optional<std::vector<ports::dir_entry>>;
    return guarded<listing>("list", path, stop, [&]() -> ports::result<listing> {
        std::error_code ec;
        fs::directory_iterator it(path, ec);
        if (ec == std::errc::no_such_file_or_directory) return listing();
        if (ec) return fail(ec, "cannot list", path);
        std::vector<ports::dir_entry> entries;
        for (; it != fs::directory_iterator(); it.increment(ec)) {
            if (ec) return fail(ec, "cannot list", path);
            struct stat st {};
            const std::string full = it->path().string();
            if (::lstat(full.c_str(), &st) != 0) continue;  // gone meanwhile
            ports::dir_entry e;
            e.name = it->path().filename().string();
            e.is_directory = S_ISDIR(st.st_mode);
            e.size = S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
            e.mtime = st.st_mtime;
            e.uid = st.st_uid;
            entries.push_back(std::move(e));
        }
        if (ec) return fail(ec, "cannot list", path);
        return listing(std::move(entries));
    });
}

std::string local_store::describe() const { return "local"; }

}  // namespace oneds::adapters::local
