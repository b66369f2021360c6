#include "adapters/sshconfig/ssh_config.hpp"

#include <pwd.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <sstream>
#include <system_error>
#include <utility>

namespace oneds::adapters::sshconfig {

namespace fs = std::filesystem;
using ports::error;
using ports::error_kind;
using ports::result;

namespace {

std::string errno_text(int code) { return std::generic_category().message(code); }

result<std::string> home_of(const std::string &user) {
    std::array<char, 16384> buffer{};
    passwd entry{};
    passwd *found = nullptr;
    const int rc = ::getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (found == nullptr)
        return error{error_kind::invalid,
                     "unknown user '" + user + "' in ~" + user + (rc != 0 ? ": " + errno_text(rc) : "")};
    return std::string(entry.pw_dir);
}

// `~` and `~user` at the start of a path, as ssh's tilde_expand_filename.
result<std::string> expand_tilde(const std::string &path, const local_identity &local) {
    if (path.empty() || path.front() != '~') return path;
    const auto slash = path.find('/');
    const std::string name = path.substr(1, slash == std::string::npos ? std::string::npos : slash - 1);
    std::string home;
    if (name.empty()) {
        home = local.home.string();
    } else {
        auto found = home_of(name);
        if (!found) return found.err();
        home = std::move(*found);
    }
    if (slash == std::string::npos) return home;
    if (!home.empty() && home.back() == '/') home.pop_back();
    return home + '/' + path.substr(slash + 1);
}

std::string local_hostname() {
    std::array<char, 256> buffer{};
    if (::gethostname(buffer.data(), buffer.size() - 1) != 0) return {};
    return std::string(buffer.data());
}

// ssh's percent_expand for IdentityFile (which `ssh -G` prints unexpanded).
result<std::string> expand_tokens(std::string_view text, const host_settings &s, const local_identity &local) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        if (i + 1 >= text.size()) return error{error_kind::invalid, "'%' at the end of \"" + std::string(text) + "\""};
        switch (const char token = text[++i]) {
            case '%': out += '%'; break;
            case 'd': out += local.home.string(); break;
            case 'u': out += local.user; break;
            case 'i': out += std::to_string(local.uid); break;
            case 'h': out += s.hostname; break;
            case 'n': out += s.host; break;
            case 'p': out += std::to_string(s.port); break;
            case 'r': out += s.user; break;
            case 'l': out += local_hostname(); break;
            case 'L': {
                const std::string full = local_hostname();
                out += full.substr(0, full.find('.'));
                break;
            }
            default:
                return error{error_kind::invalid,
                             std::string("token %") + token + " is not supported in \"" + std::string(text) + "\""};
        }
    }
    return out;
}

std::vector<std::string> words(std::string_view text) {
    std::vector<std::string> out;
    std::istringstream in{std::string(text)};
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

// ssh's own words for a failed `ssh -G`, as an error of the right kind.
error failure(const std::string &config, std::string_view host, const ports::command_result &r) {
    std::string text = r.stderr_text;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    for (auto &c : text)
        if (c == '\n' || c == '\r') c = ' ';
    if (text.empty()) text = "ssh -G exited with status " + std::to_string(r.exit_code);
    const std::string where = config.empty() ? std::string("~/.ssh/config") : config;
    error_kind kind = error_kind::invalid;
    if (text.find("No such file") != std::string::npos)
        kind = error_kind::not_found;
    else if (text.find("Bad owner or permissions") != std::string::npos)
        kind = error_kind::permission;
    return error{kind, "ssh configuration " + where + " for " + std::string(host) + ": " + text};
}

}  // namespace

result<std::string> expanded_proxy_command(const host_settings &s) {
    std::string out;
    const std::string &text = s.proxy_command;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        if (i + 1 >= text.size()) return error{error_kind::invalid, "ProxyCommand: '%' at the end"};
        switch (const char token = text[++i]) {
            case '%': out += '%'; break;
            case 'h': out += s.hostname; break;
            case 'p': out += std::to_string(s.port); break;
            case 'r': out += s.user; break;
            case 'n': out += s.host; break;
            default:
                return error{error_kind::invalid, std::string("ProxyCommand: token %") + token + " is not supported"};
        }
    }
    return out;
}

result<local_identity> local_identity::current() {
    std::array<char, 16384> buffer{};
    passwd entry{};
    passwd *found = nullptr;
    const uid_t uid = ::getuid();
    const int rc = ::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found);
    if (found == nullptr)
        return error{error_kind::io, "the running user (uid " + std::to_string(uid) +
                                         ") has no password database entry" + (rc != 0 ? ": " + errno_text(rc) : "")};
    return local_identity{entry.pw_name, fs::path(entry.pw_dir), static_cast<unsigned>(uid)};
}

result<host_settings> parse_resolved(std::string_view output, std::string_view host, std::string_view explicit_user,
                                     const local_identity &local) {
    host_settings s;
    s.host = std::string(host);
    std::vector<std::string> identities;
    std::istringstream lines{std::string(output)};
    for (std::string line; std::getline(lines, line);) {
        const auto space = line.find(' ');
        if (space == std::string::npos) continue;
        std::string key = line.substr(0, space);
        for (auto &c : key) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        const std::string value = line.substr(space + 1);
        if (key == "hostname") {
            s.hostname = value;
        } else if (key == "port") {
            unsigned port = 0;
            const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), port);
            if (ec != std::errc() || p != value.data() + value.size() || port == 0 || port > 65535)
                return error{error_kind::invalid, "ssh -G printed a bad port for " + s.host + ": " + value};
            s.port = static_cast<std::uint16_t>(port);
        } else if (key == "user") {
            s.user = value;
        } else if (key == "identityfile") {
            identities.push_back(value);
        } else if (key == "userknownhostsfile") {
            if (value != "none")
                for (auto &w : words(value)) s.known_hosts_files.emplace_back(w);
        } else if (key == "hostkeyalias") {
            s.host_key_alias = value;
        } else if (key == "stricthostkeychecking") {
            if (value == "false" || value == "no" || value == "off")
                s.host_key = host_key_policy::accept_any;
            else if (value == "accept-new")
                s.host_key = host_key_policy::accept_new;
            else
                s.host_key = host_key_policy::strict;  // true, ask
        } else if (key == "identitiesonly") {
            s.identities_only = value == "yes" || value == "true";
        } else if (key == "proxyjump") {
            if (value != "none") s.proxy_jump = value;
        } else if (key == "proxycommand") {
            if (value != "none") s.proxy_command = value;
        }
    }
    if (s.hostname.empty()) s.hostname = s.host;
    if (!explicit_user.empty()) s.user = std::string(explicit_user);
    if (s.user.empty()) s.user = local.user;
    for (const auto &id : identities) {
        auto tilde = expand_tilde(id, local);
        if (!tilde) return error{error_kind::invalid, "IdentityFile " + id + ": " + tilde.err().message};
        auto expanded = expand_tokens(*tilde, s, local);
        if (!expanded) return error{error_kind::invalid, "IdentityFile " + id + ": " + expanded.err().message};
        s.identity_files.emplace_back(*expanded);
    }
    return s;
}

resolver::resolver(ports::process_runner &local, std::string ssh_binary)
    : local_(local), ssh_binary_(std::move(ssh_binary)) {}

std::size_t resolver::runs() const noexcept {
    const std::lock_guard lock(mutex_);
    return runs_;
}

result<host_settings> resolver::resolve(const std::string &config, std::string_view host,
                                        std::string_view explicit_user, const std::stop_token &stop) {
    const auto key = std::make_tuple(config, std::string(host), std::string(explicit_user));
    {
        const std::lock_guard lock(mutex_);
        if (auto it = cache_.find(key); it != cache_.end()) return it->second;
        ++runs_;
    }
    if (host.empty() || host.front() == '-')
        return error{error_kind::invalid, "ssh host name '" + std::string(host) + "' is not valid"};
    auto local = local_identity::current();
    if (!local) return local.err();
    ports::command cmd;
    cmd.argv = {ssh_binary_, "-G"};
    if (!config.empty()) cmd.argv.insert(cmd.argv.end(), {"-F", config});
    if (!explicit_user.empty()) cmd.argv.insert(cmd.argv.end(), {"-l", std::string(explicit_user)});
    cmd.argv.emplace_back("--");
    cmd.argv.emplace_back(host);
    ports::run_options opts;
    opts.stop = stop;
    auto r = local_.run("", cmd, opts);
    if (!r) return error{r.err().kind, "cannot run ssh -G for " + std::string(host) + ": " + r.err().message};
    if (r->cancelled) return error{error_kind::cancelled, "ssh -G for " + std::string(host) + ": cancelled"};
    if (r->exit_code != 0) return failure(config, host, *r);
    auto parsed = parse_resolved(r->stdout_text, host, explicit_user, *local);
    if (!parsed) return parsed;
    parsed->config_file = config;
    const std::lock_guard lock(mutex_);
    cache_.emplace(key, *parsed);
    return parsed;
}

}  // namespace oneds::adapters::sshconfig
