// oneds/plugin.hpp: a header-only C++20 layer over the C ABI in oneds/plugin.h for
// plugin authors. It turns the C table into a C++ class with noexcept trampolines:
// every exception stops at the boundary and becomes a status code.
//
// A plugin writes a class derived from oneds::sdk::instance and one exported entry:
//
//     struct my_instance : oneds::sdk::instance { ... };
//     extern "C" ONEDS_EXPORT const oneds_plugin_api *oneds_plugin_entry(uint32_t major) {
//         static const char *const actions[] = {"monitor", nullptr};
//         return oneds::sdk::plugin_table<my_instance>::get(major, "mydrv", "1.0", actions);
//     }
//
// where my_instance has a constructor my_instance(oneds::sdk::host_link, const oneds::sdk::config_map &)
// that throws std::exception (the message becomes create()'s error text) on bad configuration.
#ifndef ONEDS_PLUGIN_HPP
#define ONEDS_PLUGIN_HPP

#include <oneds/plugin.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <new>
#include <string>
#include <string_view>
#include <vector>

namespace oneds::sdk {

using config_map = std::map<std::string, std::string, std::less<>>;

// A request, copied out of the borrowed C struct.
struct request {
    std::uint64_t id = 0;
    std::string action;
    std::vector<std::string> args;
    std::string document;
    std::int32_t origin = ONEDS_ORIGIN_ACTION;
    std::int64_t oned_id = -1;
};

// The host's callbacks. Copyable, thread-safe (the host promises complete/log
// are callable from any plugin thread).
class host_link {
public:
    host_link() = default;
    explicit host_link(const oneds_host_api *api) noexcept : api_(api) {}

    void complete(std::uint64_t id, std::int32_t status, std::string_view info, std::string_view error) const noexcept {
        if (api_ == nullptr || api_->complete == nullptr) return;
        try {
            const std::string i(info), e(error);
            api_->complete(api_->host_data, id, status, i.c_str(), e.c_str());
        } catch (...) {
            api_->complete(api_->host_data, id, ONEDS_ERR_INTERNAL, "", "out of memory");
        }
    }

    void log(std::uint64_t id, std::int32_t level, std::string_view text) const noexcept {
        if (api_ == nullptr || api_->log == nullptr) return;
        try {
            const std::string t(text);
            api_->log(api_->host_data, id, level, t.c_str());
        } catch (...) {}
    }

    // A line about one OpenNebula object (object_id >= 0, e.g. the VM of a
    // backup). ABI 1.2's log_object when the host has it; an older host (or
    // object_id < 0) gets a plain log() line, without the id.
    void log(std::uint64_t id, std::int32_t level, std::int64_t object_id, std::string_view text) const noexcept {
        if (api_ == nullptr) return;
        if (object_id < 0 || !ONEDS_HAS_MEMBER(oneds_host_api, api_, log_object) || api_->log_object == nullptr)
            return log(id, level, text);
        try {
            const std::string t(text);
            api_->log_object(api_->host_data, id, level, object_id, t.c_str());
        } catch (...) {}
    }

    // ABI 1.1: bytes to the action's stdout. ONEDS_ERR_UNSUPPORTED when the
    // host (or the mode) has no byte stream.
    std::int32_t write_output(std::uint64_t id, std::string_view data) const noexcept {
        if (api_ == nullptr || !ONEDS_HAS_MEMBER(oneds_host_api, api_, write_output) || api_->write_output == nullptr)
            return ONEDS_ERR_UNSUPPORTED;
        return api_->write_output(api_->host_data, id, data.data(), data.size());
    }

private:
    const oneds_host_api *api_ = nullptr;
};

// Base class of a plugin instance. submit() must not call complete() on the
// caller's stack (see oneds/plugin.h); cancel() must not block on work.
class instance {
public:
    instance() = default;
    instance(const instance &) = delete;
    instance &operator=(const instance &) = delete;
    // Must cancel everything, wait for every completion, and join every thread.
    virtual ~instance() = default;

    virtual std::int32_t submit(request req) = 0;
    virtual std::int32_t cancel(std::uint64_t id) = 0;
};

namespace detail {
inline void write_error(char *buf, std::size_t size, const char *text) noexcept {
    if (buf == nullptr || size == 0) return;
    std::size_t n = std::strlen(text);
    if (n >= size) n = size - 1;
    std::memcpy(buf, text, n);
    buf[n] = '\0';
}

inline request copy_request(const oneds_request &r) {
    request out;
    out.id = r.id;
    out.action = r.action != nullptr ? r.action : "";
    for (std::int32_t i = 0; i < r.argc && r.argv != nullptr; ++i)
        out.args.emplace_back(r.argv[i] != nullptr ? r.argv[i] : "");
    if (r.document != nullptr) out.document.assign(r.document, r.document_size);
    if (ONEDS_HAS_MEMBER(oneds_request, &r, origin)) out.origin = r.origin;
    if (ONEDS_HAS_MEMBER(oneds_request, &r, oned_id)) out.oned_id = r.oned_id;
    return out;
}
}  // namespace detail

// Builds the static C table for an instance type T. The trampolines are the
// only functions the host calls; each is noexcept with one try/catch guard.
// The table is made once, by the first get() (a thread-safe static), from
// that call's name, version and actions, which must be static themselves;
// later calls return the same table, as plugin.h's entry promises.
template <typename T>
struct plugin_table {
    static const oneds_plugin_api *get(std::uint32_t host_abi_major, const char *name, const char *version,
                                       const char *const *actions) noexcept {
        if (host_abi_major != ONEDS_ABI_MAJOR) return nullptr;
        return &table(name, version, actions);
    }

private:
    static const oneds_plugin_api &table(const char *name = nullptr, const char *version = nullptr,
                                         const char *const *actions = nullptr) noexcept {
        static const oneds_plugin_api api = {sizeof(oneds_plugin_api),
                                             ONEDS_ABI_MAJOR,
                                             ONEDS_ABI_MINOR,
                                             name,
                                             version,
                                             actions,
                                             &create,
                                             &destroy,
                                             &submit,
                                             &cancel};
        return api;
    }

    static T *self(oneds_instance *i) noexcept { return reinterpret_cast<T *>(i); }

    // submit() refuses an action the table does not list, as the ABI
    // promises, so no plugin has to repeat the check. (submit can only be
    // reached through the table, so it has been made.)
    static bool listed(const char *action) noexcept {
        const char *const *a = table().actions;
        if (a == nullptr) return false;
        for (; *a != nullptr; ++a)
            if (std::strcmp(*a, action) == 0) return true;
        return false;
    }

    static std::int32_t create(const oneds_host_api *host, const oneds_config *config, oneds_instance **out,
                               char *errbuf, std::size_t errbuf_size) noexcept {
        if (out == nullptr) return ONEDS_ERR_INVALID;
        *out = nullptr;
        if (host == nullptr || !ONEDS_HAS_MEMBER(oneds_host_api, host, log)) {
            detail::write_error(errbuf, errbuf_size, "host API table missing or too small");
            return ONEDS_ERR_ABI;
        }
        try {
            config_map cfg;
            if (config != nullptr && config->entries != nullptr)
                for (std::size_t i = 0; i < config->count; ++i)
                    if (config->entries[i].key != nullptr)
                        cfg[config->entries[i].key] =
                            config->entries[i].value != nullptr ? config->entries[i].value : "";
            *out = reinterpret_cast<oneds_instance *>(new T(host_link(host), cfg));
            return ONEDS_OK;
        } catch (const std::bad_alloc &) {
            detail::write_error(errbuf, errbuf_size, "out of memory");
            return ONEDS_ERR_INTERNAL;
        } catch (const std::exception &e) {
            detail::write_error(errbuf, errbuf_size, e.what());
            return ONEDS_ERR_INVALID;
        } catch (...) {
            detail::write_error(errbuf, errbuf_size, "unknown error");
            return ONEDS_ERR_INTERNAL;
        }
    }

    static void destroy(oneds_instance *i) noexcept {
        try {
            delete self(i);
        } catch (...) {}
    }

    static std::int32_t submit(oneds_instance *i, const oneds_request *r) noexcept {
        if (i == nullptr || r == nullptr || r->struct_size < offsetof(oneds_request, origin) || r->id == 0 ||
            r->action == nullptr)
            return ONEDS_ERR_INVALID;
        if (!listed(r->action)) return ONEDS_ERR_UNSUPPORTED;
        try {
            return self(i)->submit(detail::copy_request(*r));
        } catch (...) {
            return ONEDS_ERR_INTERNAL;
        }
    }

    static std::int32_t cancel(oneds_instance *i, std::uint64_t id) noexcept {
        if (i == nullptr) return ONEDS_ERR_INVALID;
        try {
            return self(i)->cancel(id);
        } catch (...) {
            return ONEDS_ERR_INTERNAL;
        }
    }
};

}  // namespace oneds::sdk

#endif  // ONEDS_PLUGIN_HPP
