// The OpenSSH client's settings for a host, as OpenSSH itself resolves them:
// `ssh -G [-F config] [-l user] -- host` prints the configuration ssh would
// use for that host after evaluating every Host and Match block, Include,
// CanonicalizeHostname, HostKeyAlias and the defaults. The libssh2 side (the
// SFTP store) connects with exactly those settings, so it reaches a host the
// way `ssh` and restic's ssh do, ProxyJump and ProxyCommand included.
//
// What `ssh -G` leaves to the caller, and this does: `~`, `~user` and the
// %-tokens in IdentityFile (%d %u %i %h %n %p %r %l %L %%; any other token is
// an error naming it rather than a silently wrong path).
//
// Resolutions are cached per (config file, host, user) for the resolver's
// life (a plugin instance's): a changed config is read by a new instance.
// A failure is not cached. `ssh -G` runs through the process port (no shell);
// errors are ssh's own words: not_found for a config file that does not
// exist, permission for one ssh refuses (bad owner or mode), invalid for a
// syntax error ("<file> line <n>: ..."), io otherwise.
#pragma once

#include "plugin/ports/process.hpp"
#include "plugin/ports/result.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace oneds::adapters::sshconfig {

// How a server host key not (yet) in known_hosts is treated.
enum class host_key_policy {
    strict,      // yes / ask: unknown or changed key refused
    accept_new,  // accept-new: unknown key accepted (and recorded), changed key refused
    accept_any,  // no / off: any key accepted
};

// The local side of token and `~` expansion.
struct local_identity {
    std::string user;            // %u
    std::filesystem::path home;  // ~ and %d
    unsigned uid = 0;            // %i

    // The running user from the password database (as ssh does, not $HOME).
    static ports::result<local_identity> current();
};

// What the libssh2 side needs for one host.
struct host_settings {
    std::string host;      // the name as given (an alias, perhaps)
    std::string hostname;  // where to connect (HostName, canonicalized)
    std::uint16_t port = 22;
    std::string user;                                      // the explicit user, else User, else the local user
    std::vector<std::filesystem::path> identity_files;     // expanded, in order
    std::vector<std::filesystem::path> known_hosts_files;  // UserKnownHostsFile; empty for `none`
    std::string host_key_alias;                            // HostKeyAlias ("" when unset)
    host_key_policy host_key = host_key_policy::strict;
    bool identities_only = false;
    std::string proxy_jump;     // ProxyJump ("" when none): [user@]host[:port][,...]
    std::string proxy_command;  // ProxyCommand ("" when none), tokens not expanded
    std::string config_file;    // the -F file it came from ("" = ~/.ssh/config)
};

// ProxyCommand with its %-tokens (%h %p %r %n %%) expanded, as ssh expands it
// before handing it to the shell; kind invalid for another token.
ports::result<std::string> expanded_proxy_command(const host_settings &settings);

// Parses `ssh -G` output for host (as given) into settings; `~` and tokens
// expanded with local. Kind invalid for a value it cannot use.
ports::result<host_settings> parse_resolved(std::string_view ssh_g_output, std::string_view host,
                                            std::string_view explicit_user, const local_identity &local);

class resolver {
public:
    // local runs `ssh -G` (the local process adapter); it must outlive this.
    explicit resolver(ports::process_runner &local, std::string ssh_binary = "ssh");
    resolver(const resolver &) = delete;
    resolver &operator=(const resolver &) = delete;

    // The settings for host as typed after `ssh` with config as -F ("" = the
    // user's ~/.ssh/config) and explicit_user as -l ("" = none). Thread-safe.
    ports::result<host_settings> resolve(const std::string &config, std::string_view host,
                                         std::string_view explicit_user, const std::stop_token &stop = {});
    // How many times `ssh -G` ran (cache misses), for tests.
    [[nodiscard]] std::size_t runs() const noexcept;

private:
    ports::process_runner &local_;
    std::string ssh_binary_;
    mutable std::mutex mutex_;
    std::map<std::tuple<std::string, std::string, std::string>, host_settings> cache_;
    std::size_t runs_ = 0;
};

}  // namespace oneds::adapters::sshconfig
