// Reads an OpenSSH client configuration file and resolves, for one host name
// as a user would type it after `ssh` (possibly an alias), the few settings a
// libssh2 client needs to connect the way ssh itself would.
//
// Semantics follow ssh_config(5) for what is read:
// * keywords are case-insensitive; `Key value`, `Key=value` and `Key = value`;
//   arguments may be quoted with "..." or '...'; `#` starts a comment at the
//   start of a line or of an argument; blank lines are ignored;
// * `Host` patterns use `*` and `?`, `!pattern` negates (a negated match makes
//   the whole line fail), matching is case-insensitive against the name as given;
// * for each keyword the first value obtained wins, except IdentityFile, whose
//   values accumulate in order;
// * `Include` takes one or more paths or globs; relative ones are taken from
//   ~/.ssh; a glob that matches nothing is ignored; an Include inside a block
//   that does not match includes nothing that can apply; at most 16 levels deep;
// * ~/.ssh/config and every included file must not be writable by group or
//   others and must belong to the local user or root, as ssh demands (a
//   writable config could silently turn host key checking off); like `ssh -F`,
//   a file named explicitly is not checked itself;
// * every line is checked for syntax (also in blocks that do not apply), so a
//   broken file fails the same way for every host;
// * IdentityFile and UserKnownHostsFile expand a leading `~` or `~user`, then
//   the tokens %d (local home), %u (local user), %i (local uid), %h (HostName),
//   %n (host as given), %p (port), %r (remote user), %l/%L (local host name,
//   full/short) and %%; HostName expands %h (host as given) and %%; any other
//   token (ssh knows a few more, such as %C and %k) is an error naming file
//   and line rather than a silently wrong path.
//
// Deliberately not supported:
// * `Match` blocks other than `Match all` are treated as NOT matching: the
//   settings inside are ignored and a note is added to host_settings::notes.
//   Evaluating `Match exec` would run commands, and `Match host` needs the
//   two-pass canonicalisation logic of ssh; skipping errs on the side of using
//   fewer settings, never settings meant for another host.
// * Keywords other than Host, Match, Include and those of host_settings are
//   accepted and ignored, so a file that ssh reads is never refused because it
//   uses options libssh2 has no use for.
// * ${ENV} expansion, CanonicalizeHostname, HostKeyAlias, ProxyJump/Command.
//
// Errors are ports::error values: kind `invalid` for a syntax error (message
// "<file> line <n>: <what>"), `not_found` for an explicitly named file that
// does not exist, `permission` for bad ownership or mode, `io` for read errors.
#pragma once

#include "ports/result.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace oneds::adapters::sshconfig {

// How a server host key not (yet) in known_hosts is treated.
enum class host_key_policy {
    strict,      // yes / ask / unset: unknown or changed key refused
    accept_new,  // accept-new: unknown key accepted (and recorded), changed key refused
    accept_any,  // no / off: any key accepted
};

// The local side of token and `~` expansion.
struct local_identity {
    std::string user;            // %u
    std::filesystem::path home;  // ~ and %d
    unsigned uid = 0;            // owner allowed for the config files (besides root)

    // The running user from the password database (as ssh does, not $HOME).
    static ports::result<local_identity> current();
};

struct load_options {
    std::optional<local_identity> local;  // empty: local_identity::current()
    bool check_permissions = true;
};

// What the libssh2 side needs for one host.
struct host_settings {
    std::string host;      // the name as given (an alias, perhaps)
    std::string hostname;  // HostName with %h expanded, else host
    std::uint16_t port = 22;
    // The explicit user given to resolve(), else User, else the local user.
    std::string user;
    // IdentityFile values with ~ and tokens expanded, in order; when the file
    // names none: ~/.ssh/id_ed25519, ~/.ssh/id_ecdsa, ~/.ssh/id_rsa.
    std::vector<std::filesystem::path> identity_files;
    bool identity_files_configured = false;  // false: the defaults above
    // UserKnownHostsFile (expanded), else ~/.ssh/known_hosts and
    // ~/.ssh/known_hosts2; empty for `UserKnownHostsFile none`.
    std::vector<std::filesystem::path> known_hosts_files;
    host_key_policy host_key = host_key_policy::strict;
    bool identities_only = false;
    // Where this reading may differ from ssh's (skipped Match blocks), as
    // "<file> line <n>: ..." for a log line.
    std::vector<std::string> notes;
};

// One line split into its keyword (lower-cased) and arguments (quotes removed).
// A blank or comment line has an empty keyword.
struct config_line {
    std::string keyword;
    std::vector<std::string> args;
};

// The tokenizer of one line; the error message does not name file or line.
ports::result<config_line> split_line(std::string_view line);

// ssh's wildcard match: `*` any run of characters, `?` one character, ASCII
// case-insensitive.
bool match_pattern(std::string_view text, std::string_view pattern);

// A `Host` line's pattern list against a host name: true when some plain
// pattern matches and no `!` pattern does.
bool host_line_matches(std::string_view host, const std::vector<std::string> &patterns);

class ssh_config {
  public:
    // Reads file, which must exist.
    static ports::result<ssh_config> load(const std::filesystem::path &file, load_options options = {});
    // Reads ~/.ssh/config of the local user; no file means no settings.
    static ports::result<ssh_config> load_default(load_options options = {});
    // Parses text as if read from a file called name (Includes are read from disk).
    static ports::result<ssh_config> parse(std::string_view text, std::string name, load_options options = {});

    // The settings for host as typed after `ssh`; explicit_user is what
    // `ssh -l user` would give (empty: none).
    ports::result<host_settings> resolve(std::string_view host, std::string_view explicit_user = {}) const;

    // The file read ("" for no file), for messages.
    const std::string &name() const noexcept;
    const local_identity &local() const noexcept;

    struct parsed_file;

  private:
    ssh_config(std::shared_ptr<const parsed_file> root, local_identity local);

    std::shared_ptr<const parsed_file> root_;
    local_identity local_;
};

// load (or load_default when config_file is empty) and resolve in one step.
ports::result<host_settings> resolve_host(const std::string &config_file, std::string_view host,
                                          std::string_view explicit_user = {}, load_options options = {});

}  // namespace oneds::adapters::sshconfig
