// one_ds_host's settings: command line first, then the config file, then
// defaults. See conf/one_ds_host.conf for every key and its default.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace oneds::host {

struct settings {
    // MAD mode
    unsigned threads = 15;                         // -t: requests in flight at once
    std::vector<std::string> drivers;              // -d: DS_MAD names served (empty: any with a plugin)
    std::vector<std::string> system_tms;           // -s: passed to the fallback only
    unsigned timeout_s = 0;                        // -w: per-request timeout, 0 = none
    std::vector<std::string> fallback;             // --fallback: argv of the stock one_datastore
    std::vector<std::string> fallback_args_extra;  // after "--": the fallback's own argv tail
    bool fallback_args_given = false;
    unsigned finalize_grace_s = 5;  // wait for in-flight work after FINALIZE

    // Both modes
    std::optional<std::string> config_file;
    std::map<std::string, std::string> plugins;  // name -> path
    std::string log_file;                        // MAD mode: empty or "-" is stderr; action mode: empty is nowhere
    bool log_file_given = false;                 // MAD mode without it: OpenNebula's place (host/mad_logging.hpp)
    std::string log_level = "info";
    bool log_level_given = false;  // MAD mode without it: debug when ONE_MAD_DEBUG is set
    std::string oned_endpoint;
    std::string oned_auth_file;
    std::string one_cipher_auth;  // server_cipher credentials for restore (onegate_auth)
    std::string ssh_config;
    // [plugin.<name>] sections of the config file: name -> key -> value
    std::map<std::string, std::map<std::string, std::string>> plugin_sections;

    // Action mode
    std::string action_driver;
    std::string action_name;
    std::vector<std::string> action_args;

    // Doctor mode (one_ds_host doctor): DATASTORE_ID or TEMPLATE_FILE, the
    // hypervisors to check, --json, and the driver (--driver, else the file's
    // DS_MAD, else the one plugin there is)
    std::string doctor_subject;
    std::vector<std::string> doctor_hypervisors;
    bool doctor_json = false;
    std::string doctor_driver;
};

struct parse_result {
    settings values;
    bool action_mode = false;
    bool doctor_mode = false;  // action_mode is true as well: one request, then exit
    bool show_help = false;
    bool show_version = false;
    std::string help_text;
};

// Reads the command line (argv[0] excluded) and then the config file (-c, else
// default_config_file()); the command line wins, then the file, then defaults.
// MAD mode re-splits arguments that hold white space, because oned passes the
// whole ARGUMENTS string as one argv element. Throws std::invalid_argument with
// a message naming the bad option, key or value (and the file).
parse_result load_settings(const std::vector<std::string> &args);

// $ONE_LOCATION/etc/one_ds_host.conf or /etc/one/one_ds_host.conf, if it exists.
std::optional<std::string> default_config_file();

// Where a plugin is looked for when no path is configured: beside the host
// executable, as libone_ds_<name>.so.
std::string default_plugin_path(const std::string &name);

}  // namespace oneds::host

namespace oneds::host {
// The entries a plugin's create() gets: its [plugin.<name>] section plus the
// host-wide settings under "host." (threads, log_level, oned_endpoint,
// oned_auth_file, one_cipher_auth, ssh_config, mode).
std::map<std::string, std::string> plugin_config(const settings &s, const std::string &name, bool action_mode);
}  // namespace oneds::host
