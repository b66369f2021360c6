// What an action gets to do its work: the settings, the ports, the request.
#pragma once

#include "plugin/restic/model/attributes.hpp"
#include "plugin/runtime/dispatcher.hpp"
#include "plugin/restic/model/names.hpp"
#include "plugin/restic/model/plugin_settings.hpp"
#include "plugin/restic/cli/restic_runner.hpp"
#include "plugin/restic/cli/version_cache.hpp"

#include "plugin/ports/one_api.hpp"
#include "plugin/ports/process.hpp"
#include "plugin/ports/repo_store.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace oneds::restic {

class verifier;  // verify.hpp

// Gives the repository store for a datastore: SFTP sessions are pooled by the
// plugin instance and shared by its requests.
class health_reporter;

class store_provider {
public:
    virtual ~store_provider() = default;
    virtual ports::result<std::shared_ptr<ports::repo_store>> store_for(const datastore_attributes &a) = 0;
};

struct action_env {
    const plugin_settings &settings;
    ports::process_runner &runner;  // runs here ("") or on a host through ssh
    store_provider &stores;
    runtime::request_context &ctx;
    ports::one_api *oned = nullptr;  // null when no oned endpoint is configured
    version_cache *versions = nullptr;
    // Whether a host name outside the DNS/IP grammar is an alias of the ssh
    // client configuration (names.hpp); empty: no such alias is accepted.
    std::function<bool(std::string_view)> is_ssh_alias;
    // oned as the requesting user (restore); null when not configured.
    ports::one_api_as_user *oned_users = nullptr;
    // Whether the S3 bucket was looked at for this request (repo_ops.hpp:
    // check_s3_repository), so that its one request is made once.
    std::atomic<bool> storage_checked{false};
    // The instance's background verification (verify.hpp); null: none.
    verifier *verify = nullptr;
    // The instance's health worker (health.hpp); null: no health is reported.
    health_reporter *health = nullptr;
    std::mutex storage_check_mutex{};
    // Why oned is null, for an action that can do without it (MONITOR,
    // doctor).
    std::string oned_problem{};

    // The request's stop token: every port call of the action takes it (or
    // one linked to it, for one of several calls in parallel).
    std::stop_token stop() const noexcept { return ctx.stop_token(); }

    std::optional<restic_version> restic_version_at(const std::string &host, const std::string &bin) const {
        return restic_version_at(host, bin, stop());
    }
    std::optional<restic_version> restic_version_at(const std::string &host, const std::string &bin,
                                                    const std::stop_token &stop) const {
        if (versions == nullptr) return std::nullopt;
        auto v = versions->get(runner, host, bin, stop);
        if (v) ctx.log('D', "restic " + v->str() + " at " + (host.empty() ? std::string("this host") : host));
        return v;
    }

    // The version of the restic that runs at site.
    std::optional<restic_version> restic_version_at(const repo_site &site, const std::stop_token &stop) const {
        if (!site.unavailable.empty()) return std::nullopt;
        if (versions == nullptr) return std::nullopt;
        auto v = versions->get(runner, site.host, restic_words(site), stop);
        if (v) ctx.log('D', "restic " + v->str() + " at " + (site.host.empty() ? std::string("this host") : site.host));
        return v;
    }

    void log(char level, const std::string &text) const { ctx.log(level, text); }
    // "" for host names that mean this machine (local_hosts): such commands
    // run without ssh, and restic then gets its password in its environment.
    // IPv6 literals lose their brackets (ssh takes them bare).
    std::string exec_host(const std::string &host) const {
        return settings.local_hosts.contains(host) ? std::string() : bare_host(host);
    }
    // "" when host (from argv or LAST_BRIDGE) is a usable host name, else
    // "<what> must be ..., got '...'".
    std::string host_problem(const std::string &what, const std::string &host) const;
    // A runner with the lock budget of this datastore (RESTIC_LOCK_RETRIES wins).
    restic_runner restic(const datastore_attributes &a) const {
        const unsigned retries = a.lock_retries ? static_cast<unsigned>(*a.lock_retries) : settings.lock_retries;
        return restic_runner(runner, lock_policy{retries, settings.lock_retry_interval}, settings.kill_grace,
                             [this](char l, const std::string &t) { log(l, t); });
    }
};

runtime::outcome backup_action(action_env &env);
runtime::outcome backup_cancel_action(action_env &env);
runtime::outcome monitor_action(action_env &env);
runtime::outcome rm_action(action_env &env);
runtime::outcome stat_action(action_env &env);
runtime::outcome ls_action(action_env &env);
runtime::outcome downloader_action(action_env &env);
runtime::outcome increment_flatten_action(action_env &env);
runtime::outcome restore_action(action_env &env);
runtime::outcome doctor_action(action_env &env);

}  // namespace oneds::restic
