// The restic plugin's own settings: the [plugin.restic] section of
// one_ds_host.conf plus the host-wide ones it uses (host.*). Every key, its
// default and its meaning are in conf/one_ds_host.conf.
#pragma once

#include <oneds/plugin.hpp>

#include <chrono>
#include <set>
#include <string>
#include <string_view>

namespace oneds::restic {

struct plugin_settings {
    // restic on the front end. Default (restic_bin_set false): OpenNebula's
    // copy, <remotes>/datastore/restic/restic, else restic from PATH with a
    // warning (resolve_frontend_restic). An explicit setting is used as given.
    // (A default-constructed value, as the tests build, runs `restic` from
    // PATH as if set; parse_plugin_settings() gives the defaults.)
    std::string restic_bin = "restic";
    bool restic_bin_set = true;
    std::string restic_bin_missing;  // set by resolve_frontend_restic(): no restic here, why
    // restic on hypervisors and the backup server: OpenNebula's copy there, as
    // stock; a default that is not executable falls back to the host's PATH
    // with a warning, decided on the host (restic_command.hpp). An explicit
    // setting is used as given.
    std::string remote_restic_bin = "restic";  // default: <scripts_remote_dir>/datastore/restic/restic
    bool remote_restic_bin_set = true;
    // OpenNebula's remotes on the front end (VERSION, datastore/restic/restic)
    // and their copy on the other hosts (oned.conf's SCRIPTS_REMOTE_DIR).
    std::string remotes_dir;
    std::string scripts_remote_dir = "/var/tmp/one";
    std::string ssh_config;                  // -F for every ssh; "" = ssh's default (~/.ssh/config)
    std::string remote_ssh_config;           // -F for restic's ssh on hypervisors; default = ssh_config
    std::string datastore_conf;              // where BACKUP_BASE_PATH is read from
    std::string lock_dir = "/var/lock/one";  // flock files that serialise repository creation
    unsigned lock_retries = 720;             // PR #7729's default: an hour at 5 s, for long prunes
    std::chrono::milliseconds lock_retry_interval{5000};
    std::chrono::milliseconds kill_grace{10000};
    std::chrono::milliseconds progress_interval{10000};
    std::chrono::seconds sftp_timeout{30};
    // S3 (RESTIC_BACKEND=S3): the bound of one request of ours to the bucket
    // (a repository probe), and of MONITOR's look at the bucket.
    std::chrono::seconds s3_timeout{20};
    std::chrono::milliseconds s3_monitor_timeout{5000};
    std::chrono::seconds ssh_connect_timeout{30};
    std::set<std::string> local_hosts{"localhost"};
    bool ssh_multiplex = true;  // one ssh connection per host and plugin instance
    std::chrono::seconds ssh_control_persist{15};
    // Shared socket directory: masters outlive this instance (ssh_control_persist
    // seconds) and later processes reuse them. Default: OpenNebula's own; when
    // it cannot be used, a private one with a warning (ssh_control_dir_set
    // false) or an error (set). "" = a private one per instance.
    std::string ssh_control_dir = "/run/one/ssh-socks";
    bool ssh_control_dir_set = false;
    unsigned threads = 16;
    bool action_mode = false;
    // For tests only: MONITOR runs the verification cycle before it replies
    // (in action mode too), instead of on the instance's background thread.
    bool verify_foreground = false;

    // The per-datastore state on the front end (model/ds_state.hpp: the
    // backups, verify.json of docs/verification.md, MONITOR's figures) and the
    // Prometheus text file made from it ("" = none; docs/metrics.md). The
    // defaults of parse_plugin_settings(): /var/lib/one/one_ds_host, and the
    // node_exporter textfile directory's one_ds_restic.prom when that
    // directory exists. (A default-constructed value keeps no state.)
    std::string state_dir;
    std::string metrics_file;
    // How long the instance waits at its end for a health update still
    // going to oned (oned_timeout, at most 3 s).
    std::chrono::milliseconds health_flush_timeout{3000};

    // The systemd slice confinement (docs/confinement.md), on the host where
    // the backup's restic runs: the programs, and "" for the defaults there
    // ($HOME/.config/systemd/user; the user manager's own cgroup).
    std::string systemd_run = "systemd-run";
    std::string systemctl = "systemctl";
    std::string systemd_unit_dir;
    std::string systemd_user_cgroup;
};

// ssh's socket paths: <dir>/<40 hex digits of %C>, and ssh binds a temporary
// name 17 characters longer first, all within 107 bytes.
inline constexpr std::size_t max_ssh_control_dir = 49;

// OpenNebula's remotes directory: $ONE_LOCATION/var/remotes, else
// /var/lib/one/remotes.
std::string default_remotes_dir();

// Decides the front end's restic for a default restic_bin: OpenNebula's copy
// when it is an executable file, else restic from path_env (a PATH value)
// and the returned warning naming both, else restic_bin_missing. An explicit
// restic_bin is left alone. Returns the warning ("" when none).
std::string resolve_frontend_restic(plugin_settings &s, std::string_view path_env);

// Throws std::invalid_argument naming the key for an unknown key or bad value.
plugin_settings parse_plugin_settings(const sdk::config_map &config);

}  // namespace oneds::restic
