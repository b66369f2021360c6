#include "host/config.hpp"

#include "common/strings.hpp"

#include <boost/program_options.hpp>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

namespace po = boost::program_options;

namespace oneds::host {
namespace {

// Options shared by the command line (long names with dashes) and the config
// file (the same names with underscores).
struct option_names {
    const char *cli;
    const char *file;
};

void add_common(po::options_description &d, bool file) {
    auto n = [file](option_names o) { return file ? o.file : o.cli; };
    d.add_options()(n({"plugin", "plugin"}), po::value<std::vector<std::string>>()->composing(),
                    "NAME=PATH: load PATH as the plugin for driver NAME (repeatable)")(
        n({"log-file", "log_file"}), po::value<std::string>(),
        "log file; - for stderr (default: MAD mode /var/log/one/one_ds_host.log, or $ONE_LOCATION/var/one_ds_host.log; "
        "action mode none)")(
        n({"log-level", "log_level"}), po::value<std::string>(),
        "trace, debug, info, warning, error or off (default: info; MAD mode: debug when ONE_MAD_DEBUG is set)")(
        n({"oned-endpoint", "oned_endpoint"}), po::value<std::string>(),
        "oned XML-RPC endpoint (default: $ONE_XMLRPC, ~/.one/one_endpoint, /var/lib/one/.one/one_endpoint, "
        "http://localhost:2633/RPC2)")(
        n({"oned-auth-file", "oned_auth_file"}), po::value<std::string>(),
        "file with oned credentials user:password (default: $ONE_AUTH, ~/.one/one_auth, /var/lib/one/.one/one_auth)")(
        n({"one-cipher-auth", "one_cipher_auth"}), po::value<std::string>(),
        "file with the credentials of oned's server_cipher user, with which restore acts as the requesting user "
        "(default: $ONE_CIPHER_AUTH, /var/lib/one/.one/onegate_auth)")(
        n({"ssh-config", "ssh_config"}), po::value<std::string>(),
        "OpenSSH client config file for every ssh the plugins start (default: ~/.ssh/config)");
}

void add_mad(po::options_description &d, bool file) {
    auto n = [file](option_names o) { return file ? o.file : o.cli; };
    d.add_options()(file ? "threads" : "threads,t", po::value<unsigned>(), "requests in flight at once (default: 15)")(
        file ? "drivers" : "drivers,d", po::value<std::string>(),
        "comma-separated DS_MAD names to serve, each loading libone_ds_NAME.so beside the host unless --plugin names "
        "it "
        "(default: every plugin named with --plugin or in the config file)")(
        file ? "system_tms" : "system-tms,s", po::value<std::string>(),
        "comma-separated TM_MAD names for system datastores (given to the fallback)")(
        file ? "timeout" : "timeout,w", po::value<unsigned>(),
        "seconds a request may run before it is cancelled (default: 0, none)")(
        n({"fallback", "fallback"}), po::value<std::string>(),
        "command of the stock driver to forward other DS_MADs to, e.g. /usr/lib/one/mads/one_datastore")(
        n({"finalize-grace", "finalize_grace"}), po::value<unsigned>(),
        "seconds to let in-flight work finish after FINALIZE before cancelling (default: 5)");
}

std::vector<std::string> csv(const std::string &s) {
    std::vector<std::string> out;
    for (auto &t : common::split(s, ','))
        if (auto v = common::trim(t); !v.empty()) out.emplace_back(v);
    return out;
}

void add_plugin_spec(settings &s, const std::string &spec, const std::string &where) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
        throw std::invalid_argument(where + ": plugin must be NAME=PATH, got '" + spec + "'");
    s.plugins[spec.substr(0, eq)] = spec.substr(eq + 1);
}

template <typename T>
std::optional<T> get(const po::variables_map &vm, const char *key) {
    if (vm.count(key) != 0U) return vm[key].as<T>();
    return std::nullopt;
}

void read_file(const std::string &path, bool action_mode, po::variables_map &file_vm, settings &s) {
    std::ifstream in(path);
    if (!in) throw std::invalid_argument("cannot read config file '" + path + "'");
    po::options_description d;
    add_common(d, true);
    add_mad(d, true);
    (void)action_mode;
    po::parsed_options parsed(&d);
    try {
        parsed = po::parse_config_file(in, d, true);
    } catch (const po::error &e) {
        throw std::invalid_argument("config file '" + path + "': " + e.what());
    }
    for (const auto &o : parsed.options) {
        if (!o.unregistered) continue;
        // [plugin.<name>] key = value  arrives as "plugin.<name>.key"
        const std::string &k = o.string_key;
        if (k.rfind("plugin.", 0) == 0) {
            const auto dot = k.find('.', 7);
            if (dot != std::string::npos && dot > 7 && dot + 1 < k.size()) {
                s.plugin_sections[k.substr(7, dot - 7)][k.substr(dot + 1)] = o.value.empty() ? "" : o.value.front();
                continue;
            }
        }
        throw std::invalid_argument("config file '" + path + "': unknown key '" + k + "'");
    }
    try {
        po::store(parsed, file_vm);
        po::notify(file_vm);
    } catch (const po::error &e) {
        throw std::invalid_argument("config file '" + path + "': " + e.what());
    }
}

}  // namespace

std::optional<std::string> default_config_file() {
    std::string path = "/etc/one/one_ds_host.conf";
    if (const char *loc = std::getenv("ONE_LOCATION"); loc != nullptr && *loc != '\0')
        path = std::string(loc) + "/etc/one_ds_host.conf";
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) return path;
    return std::nullopt;
}

std::string default_plugin_path(const std::string &name) {
    std::string dir = ".";
    char buf[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) dir = std::filesystem::path(std::string(buf, static_cast<std::size_t>(n))).parent_path();
    return dir + "/libone_ds_" + name + ".so";
}

parse_result load_settings(const std::vector<std::string> &raw_args) {
    parse_result r;
    settings &s = r.values;
    std::vector<std::string> args = raw_args;
    r.doctor_mode = !args.empty() && args.front() == "doctor";
    r.action_mode = r.doctor_mode || (!args.empty() && args.front() == "action");
    if (r.action_mode) {
        args.erase(args.begin());
    } else {
        // oned: execlp(cmd, cmd, ARGUMENTS) puts every argument in argv[1].
        std::vector<std::string> split;
        for (const auto &a : args)
            for (auto &t : common::split_ws(a)) split.push_back(std::move(t));
        args = std::move(split);
        // Everything after "--" is the fallback driver's own argument list.
        if (auto dd = std::find(args.begin(), args.end(), "--"); dd != args.end()) {
            s.fallback_args_extra.assign(dd + 1, args.end());
            s.fallback_args_given = true;
            args.erase(dd, args.end());
        }
    }

    po::options_description visible(
        r.doctor_mode   ? "Usage: one_ds_host doctor [options] [--hypervisor HOST]... [--json] (DATASTORE_ID | "
                          "TEMPLATE_FILE)\n"
                          "Checks a datastore's set-up (docs/doctor.md): one line a check, with the fix for each "
                          "FAIL.\nExit 0 when no check fails, 1 when one does, 2 on bad arguments.\nOptions"
        : r.action_mode ? "Usage: one_ds_host action [options] DRIVER ACTION [ARGS...]\nOptions"
                        : "Usage: one_ds_host [options] [-- FALLBACK_ARGS...]\n"
                          "       one_ds_host action [options] DRIVER ACTION [ARGS...]\n"
                          "       one_ds_host doctor [options] [--hypervisor HOST]... [--json] (DATASTORE_ID | "
                          "TEMPLATE_FILE)\n"
                          "       (one_ds_host action --help, one_ds_host doctor --help)\nOptions");
    visible.add_options()("help,h", "show this help")("version", "show the version")(
        "config,c", po::value<std::string>(), "config file (default: /etc/one/one_ds_host.conf)");
    add_common(visible, false);
    if (!r.action_mode) add_mad(visible, false);
    if (r.doctor_mode)
        visible.add_options()("hypervisor", po::value<std::vector<std::string>>()->composing(),
                              "a hypervisor to check: ssh, restic, nice/ionice or the systemd slice (repeatable)")(
            "json", "print a JSON array (check, target, status, detail, fix) instead of the table")(
            "driver", po::value<std::string>(),
            "the plugin to ask (default: the template file's DS_MAD, else the one plugin configured or installed)");
    // Action mode: options end at DRIVER; everything after ACTION belongs to the
    // action unchanged, even when it looks like an option ("ls -i 3").
    std::vector<std::string> positional;
    if (r.action_mode && !r.doctor_mode) {
        std::size_t i = 0;
        while (i < args.size() && args[i].size() > 1 && args[i][0] == '-') {
            const auto &a = args[i];
            const bool flag = a == "-h" || a == "--help" || a == "--version";
            const bool inline_value = a.find('=') != std::string::npos || (a.size() > 2 && a[0] == '-' && a[1] != '-');
            i += (flag || inline_value) ? 1 : 2;
        }
        i = std::min(i, args.size());
        positional.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
        args.resize(i);
    }

    po::variables_map vm;
    try {
        if (r.doctor_mode) {
            // DATASTORE_ID or TEMPLATE_FILE anywhere among the options.
            po::positional_options_description pos;
            pos.add("subject", -1);
            po::options_description all;
            all.add(visible).add_options()("subject", po::value<std::vector<std::string>>());
            po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
        } else {
            po::store(po::command_line_parser(args).options(visible).run(), vm);
        }
        po::notify(vm);
    } catch (const po::error &e) {
        throw std::invalid_argument(e.what());
    }
    if (r.doctor_mode) {
        if (auto v = get<std::vector<std::string>>(vm, "subject")) positional = *v;
        if (auto v = get<std::vector<std::string>>(vm, "hypervisor")) s.doctor_hypervisors = *v;
        s.doctor_json = vm.count("json") != 0U;
        if (auto v = get<std::string>(vm, "driver")) s.doctor_driver = *v;
    }
    std::ostringstream help;
    help << visible;
    r.help_text = help.str();
    r.show_help = vm.count("help") != 0U;
    r.show_version = vm.count("version") != 0U;
    if (r.show_help || r.show_version) return r;

    if (auto c = get<std::string>(vm, "config"))
        s.config_file = *c;
    else
        s.config_file = default_config_file();

    po::variables_map fvm;
    if (s.config_file) read_file(*s.config_file, r.action_mode, fvm, s);

    // Command line wins over the file.
    auto pick_str = [&](const char *cli, const char *file) -> std::optional<std::string> {
        if (auto v = get<std::string>(vm, cli)) return v;
        return get<std::string>(fvm, file);
    };
    auto pick_uint = [&](const char *cli, const char *file) -> std::optional<unsigned> {
        if (auto v = get<unsigned>(vm, cli)) return v;
        return get<unsigned>(fvm, file);
    };
    if (auto v = get<std::vector<std::string>>(fvm, "plugin"))
        for (const auto &p : *v) add_plugin_spec(s, p, "config file '" + *s.config_file + "'");
    if (auto v = get<std::vector<std::string>>(vm, "plugin"))
        for (const auto &p : *v) add_plugin_spec(s, p, "--plugin");
    if (auto v = pick_str("log-file", "log_file")) {
        s.log_file = *v;
        s.log_file_given = true;
    }
    if (auto v = pick_str("log-level", "log_level")) {
        s.log_level = *v;
        s.log_level_given = true;
    }
    if (auto v = pick_str("oned-endpoint", "oned_endpoint")) s.oned_endpoint = *v;
    if (auto v = pick_str("oned-auth-file", "oned_auth_file")) s.oned_auth_file = *v;
    if (auto v = pick_str("one-cipher-auth", "one_cipher_auth")) s.one_cipher_auth = *v;
    if (auto v = pick_str("ssh-config", "ssh_config")) s.ssh_config = *v;
    static const char *const k_levels[] = {"trace", "debug", "info", "warning", "error", "off"};
    if (std::find(std::begin(k_levels), std::end(k_levels), s.log_level) == std::end(k_levels))
        throw std::invalid_argument("log level must be one of trace, debug, info, warning, error, off; got '" +
                                    s.log_level + "'");

    if (!r.action_mode) {
        if (auto v = pick_uint("threads", "threads")) s.threads = *v;
        if (s.threads == 0 || s.threads > 1024)
            throw std::invalid_argument("threads (-t) must be from 1 to 1024, got " + std::to_string(s.threads));
        if (auto v = pick_str("drivers", "drivers")) s.drivers = csv(*v);
        if (auto v = pick_str("system-tms", "system_tms")) s.system_tms = csv(*v);
        if (auto v = pick_uint("timeout", "timeout")) s.timeout_s = *v;
        if (auto v = pick_uint("finalize-grace", "finalize_grace")) s.finalize_grace_s = *v;
        if (s.finalize_grace_s > 8)
            throw std::invalid_argument("finalize_grace must be at most 8 s (oned kills the driver after 10 s), got " +
                                        std::to_string(s.finalize_grace_s));
        if (auto v = pick_str("fallback", "fallback")) s.fallback = common::split_ws(*v);
    } else if (r.doctor_mode) {
        if (positional.size() != 1)
            throw std::invalid_argument(
                "doctor needs one DATASTORE_ID or TEMPLATE_FILE: one_ds_host doctor [options] [--hypervisor HOST]... "
                "[--json] (DATASTORE_ID | TEMPLATE_FILE)");
        s.doctor_subject = positional.front();
        s.action_name = "doctor";
    } else {
        const auto &pos_args = positional;
        if (pos_args.size() < 2)
            throw std::invalid_argument(
                "action mode needs DRIVER and ACTION: one_ds_host action [options] DRIVER ACTION [ARGS...]");
        s.action_driver = pos_args[0];
        s.action_name = pos_args[1];
        s.action_args.assign(pos_args.begin() + 2, pos_args.end());
    }
    return r;
}

}  // namespace oneds::host

namespace oneds::host {
std::map<std::string, std::string> plugin_config(const settings &s, const std::string &name, bool action_mode) {
    std::map<std::string, std::string> out;
    if (auto it = s.plugin_sections.find(name); it != s.plugin_sections.end()) out = it->second;
    out["host.threads"] = std::to_string(action_mode ? 1U : s.threads);
    out["host.log_level"] = s.log_level;
    out["host.mode"] = action_mode ? "action" : "mad";
    if (!s.oned_endpoint.empty()) out["host.oned_endpoint"] = s.oned_endpoint;
    if (!s.oned_auth_file.empty()) out["host.oned_auth_file"] = s.oned_auth_file;
    if (!s.one_cipher_auth.empty()) out["host.one_cipher_auth"] = s.one_cipher_auth;
    if (!s.ssh_config.empty()) out["host.ssh_config"] = s.ssh_config;
    return out;
}
}  // namespace oneds::host
