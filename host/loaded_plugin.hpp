// One plugin loaded into the host: the dlopen handle, the checked function
// table, and one instance. Completions and log lines go to a sink the owner
// provides; the sink is called from plugin threads.
#pragma once

#include <oneds/plugin.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace oneds::host {

struct plugin_sink {
    std::function<void(std::uint64_t id, std::int32_t status, const char *info, const char *error)> complete;
    // object_id: the OpenNebula object the line is about (ABI 1.2 log_object),
    // -1 for a plain log() line.
    std::function<void(std::uint64_t id, std::int32_t level, std::int64_t object_id, const char *text)> log;
    // Empty: the host has no byte stream (write_output answers UNSUPPORTED).
    std::function<std::int32_t(std::uint64_t id, const void *data, std::size_t size)> output;
};

class loaded_plugin {
public:
    // Loads and checks the plugin at path and creates an instance with config.
    // Throws std::runtime_error naming the path and what was wrong. The plugin
    // must serve driver name expected_name (its table's name).
    static std::unique_ptr<loaded_plugin> load(const std::string &path, const std::string &expected_name,
                                               const std::map<std::string, std::string> &config, plugin_sink sink);
    // Destroys the instance (joins its threads), then dlclose()s; the code
    // stays mapped (RTLD_NODELETE, loaded_plugin.cpp).
    ~loaded_plugin();
    loaded_plugin(const loaded_plugin &) = delete;
    loaded_plugin &operator=(const loaded_plugin &) = delete;

    const std::string &name() const noexcept { return name_; }
    const std::string &version() const noexcept { return version_; }
    const std::string &path() const noexcept { return path_; }
    bool supports(const std::string &action) const { return actions_.contains(action); }

    // The C table's submit/cancel; see oneds/plugin.h for the return values.
    std::int32_t submit(const oneds_request &request) noexcept;
    std::int32_t cancel(std::uint64_t id) noexcept;
    // Destroys the instance now (cancels and joins); later calls are no-ops.
    void shutdown() noexcept;

private:
    loaded_plugin() = default;
    static void on_complete(void *self, std::uint64_t id, std::int32_t status, const char *info, const char *error);
    static void on_log(void *self, std::uint64_t id, std::int32_t level, const char *text);
    static void on_log_object(void *self, std::uint64_t id, std::int32_t level, std::int64_t object_id,
                              const char *text);
    static std::int32_t on_output(void *self, std::uint64_t id, const void *data, std::size_t size);

    void *handle_ = nullptr;
    const oneds_plugin_api *api_ = nullptr;
    oneds_instance *instance_ = nullptr;
    oneds_host_api host_api_{};
    plugin_sink sink_;
    std::string name_, version_, path_;
    std::set<std::string, std::less<>> actions_;
};

}  // namespace oneds::host
