// A ports::repo_store double: a set of paths that exist, a capacity, and a
// scripted failure; records every call. For fast tests of the actions that
// probe a repository or report capacity.
#pragma once

#include "plugin/ports/repo_store.hpp"

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace oneds::test {

class memory_store final : public ports::repo_store {
public:
    std::set<std::string> files;        // stat() finds these
    std::set<std::string> directories;  // and these (make_directories adds)
    ports::capacity_info capacity_value{1024ULL << 30, 512ULL << 30, 256ULL << 30};
    std::optional<ports::error> failure;  // every call fails with it when set
    std::vector<std::string> calls;       // "stat <path>", "mkdir <path>", "statvfs <path>"

    ports::result<ports::file_info> stat(const std::string &path, const std::stop_token &stop) override {
        record("stat " + path);
        if (stop.stop_requested()) return ports::error{ports::error_kind::cancelled, "cancelled"};
        if (failure) return *failure;
        ports::file_info info;
        info.exists = files.contains(path) || directories.contains(path);
        info.is_directory = directories.contains(path);
        return info;
    }
    ports::status make_directories(const std::string &path, const std::stop_token &stop) override {
        record("mkdir " + path);
        if (stop.stop_requested()) return ports::error{ports::error_kind::cancelled, "cancelled"};
        if (failure) return *failure;
        directories.insert(path);
        return ports::ok();
    }
    ports::result<ports::capacity_info> capacity(const std::string &path, const std::stop_token &stop) override {
        record("statvfs " + path);
        if (stop.stop_requested()) return ports::error{ports::error_kind::cancelled, "cancelled"};
        if (failure) return *failure;
        return capacity_value;
    }
    std::string describe() const override { return "memory"; }

private:
    void record(std::string call) {
        const std::lock_guard lock(mutex_);
        calls.push_back(std::move(call));
    }
    std::mutex mutex_;
};

}  // namespace oneds::test
