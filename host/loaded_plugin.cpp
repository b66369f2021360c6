#include "host/loaded_plugin.hpp"

#include <cstddef>
#include <cstring>
#include <stdexcept>

#include <dlfcn.h>

namespace oneds::host {

std::unique_ptr<loaded_plugin> loaded_plugin::load(const std::string &path, const std::string &expected_name,
                                                   const std::map<std::string, std::string> &config, plugin_sink sink) {
    std::unique_ptr<loaded_plugin> p(new loaded_plugin());
    p->path_ = path;
    p->sink_ = std::move(sink);
    const auto fail = [&](const std::string &why) {
        return std::runtime_error("plugin '" + expected_name + "' at " + path + ": " + why);
    };
    // RTLD_LOCAL: plugins must not see each other's symbols. RTLD_NODELETE:
    // the plugin and the libraries it brought stay mapped after dlclose. A
    // plugin may leave a detached thread in its code (the S3 adapter's name
    // lookup, which getaddrinfo cannot interrupt) that must not find its code
    // gone, and memory that a library keeps in its globals stays reachable,
    // so that LeakSanitizer reports only real leaks, with their stacks,
    // instead of "<unknown module>". The host never loads a plugin twice.
    p->handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (p->handle_ == nullptr) {
        const char *e = ::dlerror();
        throw fail(e != nullptr ? e : "dlopen failed");
    }
    void *sym = ::dlsym(p->handle_, ONEDS_PLUGIN_ENTRY_SYMBOL);
    if (sym == nullptr) throw fail("no symbol " ONEDS_PLUGIN_ENTRY_SYMBOL);
    oneds_plugin_entry_fn entry = nullptr;
    static_assert(sizeof entry == sizeof sym);
    std::memcpy(&entry, &sym, sizeof sym);
    const oneds_plugin_api *api = entry(ONEDS_ABI_MAJOR);
    if (api == nullptr) throw fail("does not speak ABI major version " + std::to_string(ONEDS_ABI_MAJOR));
    if (api->struct_size < offsetof(oneds_plugin_api, cancel) + sizeof api->cancel)
        throw fail("function table too small (" + std::to_string(api->struct_size) + " bytes)");
    if (api->abi_major != ONEDS_ABI_MAJOR)
        throw fail("ABI major " + std::to_string(api->abi_major) + ", host speaks " + std::to_string(ONEDS_ABI_MAJOR));
    if (api->name == nullptr || api->create == nullptr || api->destroy == nullptr || api->submit == nullptr ||
        api->cancel == nullptr || api->actions == nullptr)
        throw fail("function table has null members");
    p->api_ = api;
    p->name_ = api->name;
    p->version_ = api->version != nullptr ? api->version : "";
    if (p->name_ != expected_name) throw fail("serves driver '" + p->name_ + "', not '" + expected_name + "'");
    for (const char *const *a = api->actions; *a != nullptr; ++a) p->actions_.emplace(*a);

    p->host_api_.struct_size = sizeof(oneds_host_api);
    p->host_api_.abi_minor = ONEDS_ABI_MINOR;
    p->host_api_.host_data = p.get();
    p->host_api_.complete = &loaded_plugin::on_complete;
    p->host_api_.log = &loaded_plugin::on_log;
    p->host_api_.write_output = &loaded_plugin::on_output;
    p->host_api_.log_object = &loaded_plugin::on_log_object;

    std::vector<oneds_config_entry> entries;
    entries.reserve(config.size());
    for (const auto &[k, v] : config) entries.push_back({k.c_str(), v.c_str()});
    oneds_config cfg{sizeof(oneds_config), entries.size(), entries.data()};
    char err[1024] = {0};
    const std::int32_t rc = api->create(&p->host_api_, &cfg, &p->instance_, err, sizeof err);
    if (rc != ONEDS_OK || p->instance_ == nullptr) {
        p->instance_ = nullptr;
        throw fail(std::string("create failed: ") + (err[0] != '\0' ? err : "status " + std::to_string(rc)));
    }
    return p;
}

loaded_plugin::~loaded_plugin() {
    shutdown();
    if (handle_ != nullptr) ::dlclose(handle_);
}

void loaded_plugin::shutdown() noexcept {
    if (instance_ != nullptr && api_ != nullptr) {
        api_->destroy(instance_);
        instance_ = nullptr;
    }
}

std::int32_t loaded_plugin::submit(const oneds_request &request) noexcept {
    if (instance_ == nullptr) return ONEDS_ERR_SHUTTING_DOWN;
    return api_->submit(instance_, &request);
}

std::int32_t loaded_plugin::cancel(std::uint64_t id) noexcept {
    if (instance_ == nullptr) return ONEDS_ERR_NOT_FOUND;
    return api_->cancel(instance_, id);
}

void loaded_plugin::on_complete(void *self, std::uint64_t id, std::int32_t status, const char *info,
                                const char *error) {
    auto *p = static_cast<loaded_plugin *>(self);
    try {
        if (p->sink_.complete)
            p->sink_.complete(id, status, info != nullptr ? info : "", error != nullptr ? error : "");
    } catch (...) {
        // A host callback must not throw into the plugin.
    }
}

void loaded_plugin::on_log(void *self, std::uint64_t id, std::int32_t level, const char *text) {
    auto *p = static_cast<loaded_plugin *>(self);
    try {
        if (p->sink_.log) p->sink_.log(id, level, -1, text != nullptr ? text : "");
    } catch (...) {}
}

void loaded_plugin::on_log_object(void *self, std::uint64_t id, std::int32_t level, std::int64_t object_id,
                                  const char *text) {
    auto *p = static_cast<loaded_plugin *>(self);
    try {
        if (p->sink_.log) p->sink_.log(id, level, object_id < 0 ? -1 : object_id, text != nullptr ? text : "");
    } catch (...) {}
}

std::int32_t loaded_plugin::on_output(void *self, std::uint64_t id, const void *data, std::size_t size) {
    auto *p = static_cast<loaded_plugin *>(self);
    try {
        if (!p->sink_.output) return ONEDS_ERR_UNSUPPORTED;
        return p->sink_.output(id, data, size);
    } catch (...) {
        return ONEDS_ERR_INTERNAL;
    }
}

}  // namespace oneds::host
