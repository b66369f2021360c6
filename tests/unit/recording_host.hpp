// A fake host for unit tests: an oneds_host_api whose callbacks record every
// completion and log line, thread-safe, with timed waits. Lives only as long as
// the test that owns it, so it must outlive every dispatcher or instance it is
// given to (the callbacks point at it).
#pragma once

#include <oneds/plugin.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace oneds::test {

struct completion {
    std::uint64_t id = 0;
    std::int32_t status = ONEDS_OK;
    std::string info;
    std::string error;
};

struct log_line {
    std::uint64_t id = 0;
    std::int32_t level = 0;
    std::string text;
};

class recording_host {
public:
    recording_host() {
        api_.struct_size = sizeof(api_);
        api_.abi_minor = ONEDS_ABI_MINOR;
        api_.host_data = this;
        api_.complete = &on_complete;
        api_.log = &on_log;
    }
    recording_host(const recording_host &) = delete;
    recording_host &operator=(const recording_host &) = delete;

    const oneds_host_api *api() const noexcept { return &api_; }
    sdk::host_link link() const noexcept { return sdk::host_link(&api_); }

    std::vector<completion> completions() const {
        std::lock_guard lock(mutex_);
        return completions_;
    }

    std::vector<completion> completions_of(std::uint64_t id) const {
        std::lock_guard lock(mutex_);
        std::vector<completion> out;
        for (const auto &c : completions_)
            if (c.id == id) out.push_back(c);
        return out;
    }

    std::vector<log_line> logs() const {
        std::lock_guard lock(mutex_);
        return logs_;
    }

    // True once at least n completions in total have arrived within timeout.
    bool wait_for_count(std::size_t n, std::chrono::milliseconds timeout) const {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return completions_.size() >= n; });
    }

    // The first completion of id, once it arrives within timeout.
    std::optional<completion> wait_for(std::uint64_t id, std::chrono::milliseconds timeout) const {
        std::unique_lock lock(mutex_);
        std::optional<completion> found;
        changed_.wait_for(lock, timeout, [&] {
            for (const auto &c : completions_)
                if (c.id == id) {
                    found = c;
                    return true;
                }
            return false;
        });
        return found;
    }

private:
    static void on_complete(void *host_data, std::uint64_t id, std::int32_t status, const char *info,
                            const char *error) {
        auto *self = static_cast<recording_host *>(host_data);
        {
            std::lock_guard lock(self->mutex_);
            self->completions_.push_back({id, status, info != nullptr ? info : "", error != nullptr ? error : ""});
        }
        self->changed_.notify_all();
    }

    static void on_log(void *host_data, std::uint64_t id, std::int32_t level, const char *text) {
        auto *self = static_cast<recording_host *>(host_data);
        std::lock_guard lock(self->mutex_);
        self->logs_.push_back({id, level, text != nullptr ? text : ""});
    }

    oneds_host_api api_{};
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<completion> completions_;
    std::vector<log_line> logs_;
};

}  // namespace oneds::test
