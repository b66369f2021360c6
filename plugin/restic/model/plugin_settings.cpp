#include "plugin/restic/model/plugin_settings.hpp"

#include "common/strings.hpp"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include <sys/stat.h>
#include <unistd.h>

namespace oneds::restic {
namespace {

// node_exporter's textfile collector directory as Debian's package sets it.
constexpr const char *k_textfile_dir = "/var/lib/prometheus/node-exporter";

double number(const std::string &key, const std::string &value, double min, double max) {
    try {
        std::size_t used = 0;
        const double v = std::stod(value, &used);
        if (used != value.size() || v < min || v > max) throw std::out_of_range(key);
        return v;
    } catch (const std::exception &) {
        throw std::invalid_argument("[plugin.restic] " + key + " must be a number from " +
                                    std::to_string(min).substr(0, 6) + " to " + std::to_string(max).substr(0, 8) +
                                    ", got '" + value + "'");
    }
}

std::chrono::milliseconds seconds(const std::string &key, const std::string &value) {
    return std::chrono::milliseconds(static_cast<long long>(number(key, value, 0, 86400) * 1000));
}

}  // namespace

std::string resolve_frontend_restic(plugin_settings &s, std::string_view path_env) {
    if (s.restic_bin_set) return {};
    const auto runnable = [](const std::string &p) {
        struct stat st {};
        return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
    };
    const std::string ours = s.restic_bin;
    if (runnable(ours)) return {};
    for (const auto &dir : common::split(std::string(path_env), ':')) {
        const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/restic";
        if (dir.empty() || dir.front() != '/' || !runnable(candidate)) continue;
        s.restic_bin = candidate;
        return "restic on the front end: " + ours + " (OpenNebula's copy) is not an executable file, using " +
               candidate + " from PATH";
    }
    s.restic_bin_missing = "no restic on the front end: " + ours +
                           " (OpenNebula's copy) is not an executable file and restic is not on PATH; install "
                           "OpenNebula's restic there or set restic_bin in the [plugin.restic] section";
    return {};
}

std::string default_remotes_dir() {
    if (const char *loc = std::getenv("ONE_LOCATION"); loc != nullptr && *loc != '\0')
        return std::string(loc) + "/var/remotes";
    return "/var/lib/one/remotes";
}

namespace {

// The systemd slice keys (docs/confinement.md); false for any other key.
bool systemd_setting(plugin_settings &s, const std::string &key, const std::string &value) {
    std::string *field = key == "systemd_run"           ? &s.systemd_run
                         : key == "systemctl"           ? &s.systemctl
                         : key == "systemd_unit_dir"    ? &s.systemd_unit_dir
                         : key == "systemd_user_cgroup" ? &s.systemd_user_cgroup
                                                        : nullptr;
    if (field == nullptr) return false;
    const bool program = key == "systemd_run" || key == "systemctl";
    if ((program && (value.empty() || value.front() == '-')) || (!program && !value.empty() && value.front() != '/'))
        throw std::invalid_argument("[plugin.restic] " + key + " must be " +
                                    (program ? "a program name or path" : "empty or an absolute path") + ", got '" +
                                    value + "'");
    *field = value;
    return true;
}

}  // namespace

plugin_settings parse_plugin_settings(const sdk::config_map &config) {
    plugin_settings s;
    s.remotes_dir = default_remotes_dir();
    s.restic_bin_set = s.remote_restic_bin_set = false;
    bool datastore_conf_set = false;
    bool remote_cfg_set = false;
    bool state_dir_set = false;
    bool metrics_file_set = false;
    for (const auto &[key, value] : config) {
        if (key == "host.threads")
            s.threads = static_cast<unsigned>(number(key, value, 1, 1024)) + 1;
        else if (key == "host.mode")
            s.action_mode = value == "action";
        else if (key == "host.ssh_config") {
            if (s.ssh_config.empty()) s.ssh_config = value;
        } else if (key.rfind("host.", 0) == 0)
            continue;  // host settings this plugin does not use
        else if (key == "restic_bin" || key == "remote_restic_bin") {
            if (value.empty()) throw std::invalid_argument("[plugin.restic] " + key + " must not be empty");
            (key == "restic_bin" ? s.restic_bin : s.remote_restic_bin) = value;
            (key == "restic_bin" ? s.restic_bin_set : s.remote_restic_bin_set) = true;
        } else if (key == "ssh_config")
            s.ssh_config = value;
        else if (key == "remote_ssh_config") {
            s.remote_ssh_config = value;
            remote_cfg_set = true;
        } else if (key == "datastore_conf") {
            s.datastore_conf = value;
            datastore_conf_set = true;
        } else if (key == "remotes_dir" || key == "scripts_remote_dir") {
            if (value.empty() || value.front() != '/')
                throw std::invalid_argument("[plugin.restic] " + key + " must be an absolute path, got '" + value +
                                            "'");
            (key == "remotes_dir" ? s.remotes_dir : s.scripts_remote_dir) = value;
        } else if (key == "verify_foreground") {
            if (value != "yes" && value != "no")
                throw std::invalid_argument("[plugin.restic] verify_foreground must be yes or no, got '" + value + "'");
            s.verify_foreground = value == "yes";
        } else if (key == "lock_dir")
            s.lock_dir = value;
        else if (key == "oned_timeout") {
            // read by the oned adapter; also bounds the wait for a health
            // update at the instance's end (at most 3 s: in action mode the
            // reply is written after it, and in MAD mode oned kills the
            // driver 10 s after FINALIZE).
            s.health_flush_timeout = std::min(seconds(key, value), std::chrono::milliseconds(3000));
        } else if (key == "oned_max_response_bytes")
            continue;  // read by the oned adapter
        else if (key == "state_dir" || key == "metrics_file") {
            if (!value.empty() && value.front() != '/')
                throw std::invalid_argument("[plugin.restic] " + key + " must be empty or an absolute path, got '" +
                                            value + "'");
            (key == "state_dir" ? s.state_dir : s.metrics_file) = value;
            (key == "state_dir" ? state_dir_set : metrics_file_set) = true;
        } else if (key == "lock_retries")
            s.lock_retries = static_cast<unsigned>(number(key, value, 0, 100000));
        else if (key == "lock_retry_interval")
            s.lock_retry_interval = seconds(key, value);
        else if (key == "kill_grace")
            s.kill_grace = seconds(key, value);
        else if (key == "progress_interval")
            s.progress_interval = seconds(key, value);
        else if (key == "sftp_timeout")
            s.sftp_timeout = std::chrono::seconds(static_cast<long long>(number(key, value, 1, 3600)));
        else if (key == "s3_timeout")
            s.s3_timeout = std::chrono::seconds(static_cast<long long>(number(key, value, 1, 3600)));
        else if (key == "s3_monitor_timeout")
            s.s3_monitor_timeout = std::chrono::seconds(static_cast<long long>(number(key, value, 1, 3600)));
        else if (key == "ssh_connect_timeout")
            s.ssh_connect_timeout = std::chrono::seconds(static_cast<long long>(number(key, value, 1, 3600)));
        else if (key == "ssh_multiplex") {
            if (value != "yes" && value != "no")
                throw std::invalid_argument("[plugin.restic] ssh_multiplex must be yes or no, got '" + value + "'");
            s.ssh_multiplex = value == "yes";
        } else if (key == "ssh_control_dir") {
            if (!value.empty() && (value.front() != '/' || value.size() > max_ssh_control_dir))
                throw std::invalid_argument("[plugin.restic] ssh_control_dir must be an absolute path of at most " +
                                            std::to_string(max_ssh_control_dir) + " characters, got '" + value + "'");
            s.ssh_control_dir = value;
            s.ssh_control_dir_set = true;
        } else if (key == "ssh_control_persist")
            s.ssh_control_persist = std::chrono::seconds(static_cast<long long>(number(key, value, 1, 3600)));
        else if (key == "local_hosts") {
            s.local_hosts.clear();
            for (auto &h : common::split(value, ','))
                if (auto t = common::trim(h); !t.empty()) s.local_hosts.emplace(t);
        } else if (!systemd_setting(s, key, value))
            throw std::invalid_argument("[plugin.restic] unknown key '" + key + "'");
    }
    // An explicit ssh_config from the [plugin.restic] section wins over host.ssh_config.
    if (auto it = config.find("ssh_config"); it != config.end()) s.ssh_config = it->second;
    if (!state_dir_set) s.state_dir = "/var/lib/one/one_ds_host";
    if (!metrics_file_set) {
        struct stat st {};
        if (::stat(k_textfile_dir, &st) == 0 && S_ISDIR(st.st_mode))
            s.metrics_file = std::string(k_textfile_dir) + "/one_ds_restic.prom";
    }
    if (!remote_cfg_set) s.remote_ssh_config = s.ssh_config;
    if (!datastore_conf_set) s.datastore_conf = s.remotes_dir + "/etc/datastore/datastore.conf";
    if (!s.restic_bin_set) s.restic_bin = s.remotes_dir + "/datastore/restic/restic";
    if (!s.remote_restic_bin_set) s.remote_restic_bin = s.scripts_remote_dir + "/datastore/restic/restic";
    return s;
}

}  // namespace oneds::restic
