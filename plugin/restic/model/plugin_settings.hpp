// The restic plugin's own settings: the [plugin.restic] section of
// one_ds_host.conf plus the host-wide ones it uses (host.*). Every key, its
// default and its meaning are in conf/one_ds_host.conf.
#pragma once

#include <oneds/plugin.hpp>

#include <chrono>
#include <set>
#include <string>

namespace oneds::restic {

struct plugin_settings {
    std::string restic_bin = "restic";         // on the front end
    std::string remote_restic_bin = "restic";  // on hypervisors (stock: /var/tmp/one/datastore/restic/restic)
    std::string ssh_config;                    // -F for every ssh; "" = ssh's default (~/.ssh/config)
    std::string remote_ssh_config;             // -F for restic's ssh on hypervisors; default = ssh_config
    std::string datastore_conf;                // where BACKUP_BASE_PATH is read from
    std::string lock_dir = "/var/lock/one";    // flock files that serialise repository creation
    unsigned lock_retries = 60;
    std::chrono::milliseconds lock_retry_interval{5000};
    std::chrono::milliseconds kill_grace{10000};
    std::chrono::milliseconds progress_interval{10000};
    std::chrono::seconds sftp_timeout{30};
    std::chrono::seconds ssh_connect_timeout{30};
    std::set<std::string> local_hosts{"localhost"};
    bool ssh_multiplex = true;  // one ssh connection per host and plugin instance
    std::chrono::seconds ssh_control_persist{15};
    // Shared socket directory: masters outlive this instance (ssh_control_persist
    // seconds) and later processes reuse them. "" = a private one per instance.
    std::string ssh_control_dir;
    unsigned threads = 16;
    bool action_mode = false;

    // The systemd slice confinement (docs/confinement.md), on the host where
    // the backup's restic runs: the programs, and "" for the defaults there
    // ($HOME/.config/systemd/user; the user manager's own cgroup).
    std::string systemd_run = "systemd-run";
    std::string systemctl = "systemctl";
    std::string systemd_unit_dir;
    std::string systemd_user_cgroup;
};

// Throws std::invalid_argument naming the key for an unknown key or bad value.
plugin_settings parse_plugin_settings(const sdk::config_map &config);

}  // namespace oneds::restic
