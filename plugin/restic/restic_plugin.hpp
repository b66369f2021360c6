// One restic plugin instance: the settings, the adapters behind the ports
// (shared by all requests: the SFTP session pool outlives requests, so MONITOR
// in MAD mode reuses one session), and the request runtime.
#pragma once

#include "plugin/restic/actions/action_env.hpp"
#include "plugin/restic/actions/verify.hpp"
#include "plugin/restic/health.hpp"
#include "plugin/runtime/dispatcher.hpp"
#include "plugin/restic/model/plugin_settings.hpp"

#include "adapters/local/local_store.hpp"
#include "adapters/process/local_runner.hpp"
#include "adapters/sftp/session_pool.hpp"
#include "adapters/sshconfig/ssh_config.hpp"
#include "adapters/ssh/ssh_runner.hpp"

#include <oneds/plugin.hpp>

#include <atomic>
#include <map>
#include <string>
#include <vector>
#include <memory>
#include <mutex>

namespace oneds::restic {

// The ssh multiplexing socket directory in use ("" when off).
struct control_dir_choice {
    std::string dir;
    bool shared = false;  // masters outlive the instance (ControlPersist)
};

class plugin_instance final : public sdk::instance, private store_provider {
public:
    plugin_instance(sdk::host_link host, const sdk::config_map &config);
    ~plugin_instance() override;

    std::int32_t submit(sdk::request req) override;
    std::int32_t cancel(std::uint64_t id) override;

private:
    ports::result<std::shared_ptr<ports::repo_store>> store_for(const datastore_attributes &a) override;
    // The oned client, made on first use (only restore and the downloader need
    // it, and a host without oned credentials must still back up).
    ports::result<ports::one_api *> oned();
    // Clients of oned acting as a user (restore), made on first use; they
    // need the server_cipher auth file, not oned_auth_file's credentials.
    ports::result<ports::one_api_as_user *> oned_users();
    // names.hpp: a Host entry of the ssh client configuration with a HostName.
    bool is_ssh_alias(std::string_view host);

    std::vector<std::string> warnings_;  // found at start, logged with the first request
    std::atomic<bool> warned_{false};
    plugin_settings settings_;
    control_dir_choice control_dir_;
    adapters::process::local_runner local_runner_;
    adapters::ssh::ssh_runner runner_;
    adapters::sshconfig::resolver ssh_settings_;  // ssh -G, cached: the SFTP store and the alias check
    std::shared_ptr<adapters::sftp::session_pool> sftp_pool_;
    std::shared_ptr<adapters::local::local_store> local_store_;
    std::map<std::string, std::string> config_;
    std::mutex oned_mutex_;
    std::unique_ptr<ports::one_api> oned_;
    std::unique_ptr<ports::one_api_as_user> oned_users_;
    version_cache versions_;
    verifier verifier_;  // background verification cycles; stopped after the dispatcher
    sdk::host_link host_;
    // Health after MONITOR (health.hpp): stopped in the destructor, after the
    // dispatcher and before the ssh masters go.
    std::unique_ptr<health_reporter> health_;
    runtime::dispatcher dispatcher_;  // last: stopped first, before what requests use
};

}  // namespace oneds::restic
