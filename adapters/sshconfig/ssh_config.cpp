#include "sshconfig/ssh_config.hpp"

#include <glob.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

namespace oneds::adapters::sshconfig {

namespace fs = std::filesystem;
using ports::error;
using ports::error_kind;
using ports::result;

namespace {

// OpenSSH's READCONF_MAX_DEPTH: a cycle of Includes ends here instead of
// recursing until the stack is gone.
constexpr int max_include_depth = 16;

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
    return out;
}

error make_error(error_kind kind, std::string message) {
    return error{kind, std::move(message)};
}

std::string where(const std::string &file, std::size_t line) {
    return file + " line " + std::to_string(line) + ": ";
}

std::string errno_text(int code) {
    return std::generic_category().message(code);
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
    unsigned value = 0;
    const auto *end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc() || ptr != end || value == 0 || value > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

std::optional<host_key_policy> parse_host_key_policy(std::string_view text) {
    const std::string value = lower(text);
    if (value == "yes" || value == "true" || value == "ask")
        return host_key_policy::strict;
    if (value == "no" || value == "false" || value == "off")
        return host_key_policy::accept_any;
    if (value == "accept-new")
        return host_key_policy::accept_new;
    return std::nullopt;
}

std::optional<bool> parse_flag(std::string_view text) {
    const std::string value = lower(text);
    if (value == "yes" || value == "true")
        return true;
    if (value == "no" || value == "false")
        return false;
    return std::nullopt;
}

result<std::string> home_of(const std::string &user) {
    std::array<char, 16384> buffer{};
    passwd entry{};
    passwd *found = nullptr;
    const int rc = ::getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (found == nullptr)
        return make_error(error_kind::invalid,
                          "unknown user '" + user + "' in ~" + user + (rc != 0 ? ": " + errno_text(rc) : ""));
    return std::string(entry.pw_dir);
}

// `~` and `~user` at the start of a path, as ssh's tilde_expand_filename.
result<std::string> expand_tilde(const std::string &path, const local_identity &local) {
    if (path.empty() || path.front() != '~')
        return path;
    const auto slash = path.find('/');
    const std::string name = path.substr(1, slash == std::string::npos ? std::string::npos : slash - 1);
    std::string home;
    if (name.empty()) {
        home = local.home.string();
    } else {
        auto found = home_of(name);
        if (!found)
            return found.err();
        home = std::move(*found);
    }
    if (slash == std::string::npos)
        return home;
    std::string rest = path.substr(slash + 1);
    if (!home.empty() && home.back() == '/')
        home.pop_back();
    return home + '/' + rest;
}

std::string local_hostname() {
    std::array<char, 256> buffer{};
    if (::gethostname(buffer.data(), buffer.size() - 1) != 0)
        return {};
    return std::string(buffer.data());
}

// What %-tokens stand for in one resolution.
struct token_values {
    std::string original_host;  // %n
    std::string hostname;       // %h
    std::string port;           // %p
    std::string remote_user;    // %r
    const local_identity *local = nullptr;
};

// ssh's percent_expand for the tokens that make sense without a connection.
// `allowed` lists the token letters valid for this keyword.
result<std::string> expand_tokens(std::string_view text, const token_values &values, std::string_view allowed) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        if (i + 1 >= text.size())
            return make_error(error_kind::invalid, "'%' at the end of \"" + std::string(text) + "\"");
        const char token = text[++i];
        if (token == '%') {
            out += '%';
            continue;
        }
        if (allowed.find(token) == std::string_view::npos)
            return make_error(error_kind::invalid,
                              std::string("token %") + token + " is not supported in \"" + std::string(text) + "\"");
        switch (token) {
        case 'd': out += values.local->home.string(); break;
        case 'u': out += values.local->user; break;
        case 'i': out += std::to_string(values.local->uid); break;
        case 'h': out += values.hostname; break;
        case 'n': out += values.original_host; break;
        case 'p': out += values.port; break;
        case 'r': out += values.remote_user; break;
        case 'l': out += local_hostname(); break;
        case 'L': {
            const std::string full = local_hostname();
            out += full.substr(0, full.find('.'));
            break;
        }
        default: break;  // unreachable: allowed lists only the cases above
        }
    }
    return out;
}

constexpr std::string_view path_tokens = "dhilLnpru";

}  // namespace

struct ssh_config::parsed_file {
    struct entry {
        std::string keyword;  // lower case
        std::vector<std::string> args;
        std::size_t line = 0;
        std::uint16_t port = 0;                                    // "port"
        host_key_policy policy = host_key_policy::strict;          // "stricthostkeychecking"
        bool flag = false;                                         // "identitiesonly"
        std::vector<std::shared_ptr<const parsed_file>> included;  // "include"
    };
    std::string name;
    std::vector<entry> entries;
};

namespace {

using parsed_file = ssh_config::parsed_file;

struct parse_context {
    const local_identity &local;
    bool check_permissions;
};

result<std::shared_ptr<const parsed_file>> parse_text(std::string_view text, std::string name, const parse_context &ctx,
                                                      int depth);

// ssh refuses a config that someone else could have written: it could turn
// host key checking off or point IdentityFile elsewhere.
ports::status check_file_permissions(const std::string &path, const parse_context &ctx) {
    if (!ctx.check_permissions)
        return ports::ok();
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        const int code = errno;
        return make_error(code == ENOENT ? error_kind::not_found : error_kind::io,
                          "cannot read ssh config file " + path + ": " + errno_text(code));
    }
    if ((st.st_uid != 0 && st.st_uid != ctx.local.uid) || (st.st_mode & 022) != 0)
        return make_error(error_kind::permission,
                          "bad owner or permissions on ssh config file " + path +
                              " (must belong to the user or root and not be writable by group or others)");
    return ports::ok();
}

// check_owner: as ssh, for ~/.ssh/config and every included file, but not
// for a file named explicitly (ssh -F).
result<std::shared_ptr<const parsed_file>> read_file(const std::string &path, const parse_context &ctx, int depth,
                                                     bool check_owner) {
    if (check_owner) {
        if (auto checked = check_file_permissions(path, ctx); !checked)
            return checked.err();
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const int code = errno;
        return make_error(code == ENOENT ? error_kind::not_found : error_kind::io,
                          "cannot read ssh config file " + path + ": " + errno_text(code));
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad())
        return make_error(error_kind::io, "cannot read ssh config file " + path);
    return parse_text(text.str(), path, ctx, depth);
}

result<std::vector<std::shared_ptr<const parsed_file>>> read_includes(const std::vector<std::string> &args,
                                                                      const std::string &file, std::size_t line,
                                                                      const parse_context &ctx, int depth) {
    std::vector<std::shared_ptr<const parsed_file>> files;
    if (depth >= max_include_depth)
        return make_error(error_kind::invalid, where(file, line) + "Include nested more than " +
                                                   std::to_string(max_include_depth) + " levels deep");
    for (const auto &arg : args) {
        std::string pattern;
        if (arg.front() == '~') {
            auto expanded = expand_tilde(arg, ctx.local);
            if (!expanded)
                return make_error(error_kind::invalid, where(file, line) + expanded.err().message);
            pattern = std::move(*expanded);
        } else if (arg.front() != '/') {
            pattern = (ctx.local.home / ".ssh" / arg).string();
        } else {
            pattern = arg;
        }
        glob_t found{};
        const int rc = ::glob(pattern.c_str(), 0, nullptr, &found);
        // Owns the glob result for every return below.
        const std::unique_ptr<glob_t, void (*)(glob_t *)> guard(&found, ::globfree);
        if (rc == GLOB_NOMATCH)
            continue;
        if (rc != 0)
            return make_error(error_kind::io, where(file, line) + "cannot expand Include " + pattern);
        for (std::size_t i = 0; i < found.gl_pathc; ++i) {
            const std::string path = found.gl_pathv[i];
            std::error_code ec;
            if (!fs::is_regular_file(path, ec))
                continue;
            auto parsed = read_file(path, ctx, depth + 1, true);
            if (!parsed)
                return parsed.err();
            files.push_back(std::move(*parsed));
        }
    }
    return files;
}

// Checks the arguments of the keywords we use; others pass unchecked.
ports::status validate(parsed_file::entry &entry) {
    const auto &kw = entry.keyword;
    const auto &args = entry.args;
    const bool empty_arg = std::any_of(args.begin(), args.end(), [](const std::string &a) { return a.empty(); });
    const bool list_keyword = kw == "host" || kw == "match" || kw == "include" || kw == "userknownhostsfile";
    const bool single_keyword = kw == "hostname" || kw == "port" || kw == "user" || kw == "identityfile" ||
                                kw == "stricthostkeychecking" || kw == "identitiesonly";
    if (!list_keyword && !single_keyword)
        return ports::ok();
    if (args.empty() || empty_arg)
        return make_error(error_kind::invalid, "missing argument to " + kw);
    if (single_keyword && args.size() > 1)
        return make_error(error_kind::invalid, "garbage at end of line after " + kw + " \"" + args[0] + "\"");
    if (kw == "port") {
        const auto port = parse_port(args[0]);
        if (!port)
            return make_error(error_kind::invalid, "bad port \"" + args[0] + "\" (1 to 65535)");
        entry.port = *port;
    } else if (kw == "stricthostkeychecking") {
        const auto policy = parse_host_key_policy(args[0]);
        if (!policy)
            return make_error(error_kind::invalid, "unsupported StrictHostKeyChecking \"" + args[0] +
                                                       "\" (yes, no, ask, off or accept-new)");
        entry.policy = *policy;
    } else if (kw == "identitiesonly") {
        const auto flag = parse_flag(args[0]);
        if (!flag)
            return make_error(error_kind::invalid, "unsupported IdentitiesOnly \"" + args[0] + "\" (yes or no)");
        entry.flag = *flag;
    }
    return ports::ok();
}

result<std::shared_ptr<const parsed_file>> parse_text(std::string_view text, std::string name, const parse_context &ctx,
                                                      int depth) {
    auto file = std::make_shared<parsed_file>();
    file->name = std::move(name);
    std::size_t line_number = 0;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find('\n', start);
        const auto line = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
        start = end == std::string_view::npos ? text.size() : end + 1;
        ++line_number;

        auto split = split_line(line);
        if (!split)
            return make_error(error_kind::invalid, where(file->name, line_number) + split.err().message);
        if (split->keyword.empty())
            continue;
        parsed_file::entry entry;
        entry.keyword = std::move(split->keyword);
        entry.args = std::move(split->args);
        entry.line = line_number;
        if (auto valid = validate(entry); !valid)
            return make_error(error_kind::invalid, where(file->name, line_number) + valid.err().message);
        if (entry.keyword == "include") {
            auto included = read_includes(entry.args, file->name, line_number, ctx, depth);
            if (!included)
                return included.err();
            entry.included = std::move(*included);
        }
        file->entries.push_back(std::move(entry));
    }
    return std::shared_ptr<const parsed_file>(std::move(file));
}

// Values as found, before expansion; each remembers where it came from so
// that an expansion error can name the line.
template <typename T>
struct located {
    T value{};
    std::string file;
    std::size_t line = 0;
};

struct collected {
    std::optional<located<std::string>> hostname;
    std::optional<std::uint16_t> port;
    std::optional<std::string> user;
    std::vector<located<std::string>> identity_files;
    std::optional<located<std::vector<std::string>>> known_hosts;
    std::optional<host_key_policy> policy;
    std::optional<bool> identities_only;
    std::vector<std::string> notes;
};

void apply(const parsed_file &file, const parsed_file::entry &entry, collected &out) {
    const auto &kw = entry.keyword;
    if (kw == "hostname") {
        if (!out.hostname)
            out.hostname = located<std::string>{entry.args[0], file.name, entry.line};
    } else if (kw == "port") {
        if (!out.port)
            out.port = entry.port;
    } else if (kw == "user") {
        if (!out.user)
            out.user = entry.args[0];
    } else if (kw == "identityfile") {
        out.identity_files.push_back({entry.args[0], file.name, entry.line});
    } else if (kw == "userknownhostsfile") {
        if (!out.known_hosts)
            out.known_hosts = located<std::vector<std::string>>{entry.args, file.name, entry.line};
    } else if (kw == "stricthostkeychecking") {
        if (!out.policy)
            out.policy = entry.policy;
    } else if (kw == "identitiesonly") {
        if (!out.identities_only)
            out.identities_only = entry.flag;
    }
}

// ssh's readconf walk: Host and Match lines switch `active`; an included file
// starts with the includer's state and cannot change it for the lines after
// the Include; nothing in a file included from an inactive block can apply.
void walk(const parsed_file &file, std::string_view host, bool &active, bool never_match, collected &out) {
    for (const auto &entry : file.entries) {
        if (entry.keyword == "host") {
            active = !never_match && host_line_matches(host, entry.args);
        } else if (entry.keyword == "match") {
            const bool match_all = entry.args.size() == 1 && lower(entry.args[0]) == "all";
            active = !never_match && match_all;
            if (!never_match && !match_all)
                out.notes.push_back(where(file.name, entry.line) +
                                    "Match block skipped (not supported); its settings were not applied");
        } else if (entry.keyword == "include") {
            const bool saved = active;
            for (const auto &included : entry.included) {
                walk(*included, host, active, never_match || !saved, out);
                active = saved;
            }
        } else if (active) {
            apply(file, entry, out);
        }
    }
}

result<fs::path> expand_path(const located<std::string> &item, const token_values &values, const local_identity &local,
                             std::string_view keyword) {
    auto tilde = expand_tilde(item.value, local);
    if (!tilde)
        return make_error(error_kind::invalid,
                          where(item.file, item.line) + std::string(keyword) + ": " + tilde.err().message);
    auto expanded = expand_tokens(*tilde, values, path_tokens);
    if (!expanded)
        return make_error(error_kind::invalid,
                          where(item.file, item.line) + std::string(keyword) + ": " + expanded.err().message);
    return fs::path(*expanded);
}

}  // namespace

result<config_line> split_line(std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n'))
        line.remove_suffix(1);
    config_line out;
    std::size_t i = 0;
    const std::size_t n = line.size();
    while (i < n && is_blank(line[i]))
        ++i;
    if (i == n || line[i] == '#')
        return out;
    const std::size_t keyword_start = i;
    while (i < n && !is_blank(line[i]) && line[i] != '=')
        ++i;
    if (i == keyword_start)
        return make_error(error_kind::invalid, "missing keyword before '='");
    out.keyword = lower(line.substr(keyword_start, i - keyword_start));
    while (i < n && is_blank(line[i]))
        ++i;
    if (i < n && line[i] == '=') {
        ++i;
        while (i < n && is_blank(line[i]))
            ++i;
    }
    // Arguments as OpenSSH's argv_split: blanks separate words, quotes group
    // (and may start mid-word), a backslash escapes a quote, a backslash or
    // (outside quotes) a blank, and `#` at the start of a word ends the line.
    while (i < n) {
        while (i < n && is_blank(line[i]))
            ++i;
        if (i == n || line[i] == '#')
            break;
        std::string word;
        char quote = 0;
        while (i < n && (quote != 0 || !is_blank(line[i]))) {
            const char c = line[i];
            if (c == '\\' && i + 1 < n) {
                const char next = line[i + 1];
                if (next == '"' || next == '\'' || next == '\\' || (quote == 0 && is_blank(next))) {
                    word += next;
                    i += 2;
                    continue;
                }
                word += c;
            } else if (quote != 0 && c == quote) {
                quote = 0;
            } else if (quote == 0 && (c == '"' || c == '\'')) {
                quote = c;
            } else {
                word += c;
            }
            ++i;
        }
        if (quote != 0)
            return make_error(error_kind::invalid,
                              std::string("unterminated ") + (quote == '"' ? "double" : "single") + " quote");
        out.args.push_back(std::move(word));
    }
    return out;
}

bool match_pattern(std::string_view text, std::string_view pattern) {
    // Iterative glob with one backtrack point: linear in practice, no recursion
    // on hostile patterns like "*a*a*a*a*b".
    std::size_t t = 0;
    std::size_t p = 0;
    std::size_t star = std::string_view::npos;
    std::size_t resume = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            resume = t;
        } else if (p < pattern.size() && (pattern[p] == '?' || ascii_lower(pattern[p]) == ascii_lower(text[t]))) {
            ++p;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++resume;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*')
        ++p;
    return p == pattern.size();
}

bool host_line_matches(std::string_view host, const std::vector<std::string> &patterns) {
    bool matched = false;
    for (const auto &pattern : patterns) {
        const bool negated = !pattern.empty() && pattern.front() == '!';
        const std::string_view body = negated ? std::string_view(pattern).substr(1) : std::string_view(pattern);
        if (match_pattern(host, body)) {
            if (negated)
                return false;
            matched = true;
        }
    }
    return matched;
}

result<local_identity> local_identity::current() {
    std::array<char, 16384> buffer{};
    passwd entry{};
    passwd *found = nullptr;
    const uid_t uid = ::getuid();
    const int rc = ::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found);
    if (found == nullptr)
        return make_error(error_kind::io, "the running user (uid " + std::to_string(uid) +
                                              ") has no password database entry" +
                                              (rc != 0 ? ": " + errno_text(rc) : ""));
    return local_identity{entry.pw_name, fs::path(entry.pw_dir), static_cast<unsigned>(uid)};
}

ssh_config::ssh_config(std::shared_ptr<const parsed_file> root, local_identity local)
    : root_(std::move(root)), local_(std::move(local)) {}

namespace {

result<local_identity> local_of(load_options &options) {
    if (options.local)
        return *options.local;
    return local_identity::current();
}

}  // namespace

result<ssh_config> ssh_config::load(const fs::path &file, load_options options) {
    auto local = local_of(options);
    if (!local)
        return local.err();
    std::error_code ec;
    if (!fs::exists(file, ec))
        return make_error(error_kind::not_found, "ssh config file " + file.string() + " does not exist");
    const parse_context ctx{*local, options.check_permissions};
    auto parsed = read_file(file.string(), ctx, 0, false);
    if (!parsed)
        return parsed.err();
    return ssh_config(std::move(*parsed), std::move(*local));
}

result<ssh_config> ssh_config::load_default(load_options options) {
    auto local = local_of(options);
    if (!local)
        return local.err();
    const fs::path file = local->home / ".ssh" / "config";
    std::error_code ec;
    if (!fs::exists(file, ec)) {
        auto empty = std::make_shared<parsed_file>();
        return ssh_config(std::move(empty), std::move(*local));
    }
    const parse_context ctx{*local, options.check_permissions};
    auto parsed = read_file(file.string(), ctx, 0, true);
    if (!parsed)
        return parsed.err();
    return ssh_config(std::move(*parsed), std::move(*local));
}

result<ssh_config> ssh_config::parse(std::string_view text, std::string name, load_options options) {
    auto local = local_of(options);
    if (!local)
        return local.err();
    const parse_context ctx{*local, options.check_permissions};
    auto parsed = parse_text(text, std::move(name), ctx, 0);
    if (!parsed)
        return parsed.err();
    return ssh_config(std::move(*parsed), std::move(*local));
}

const std::string &ssh_config::name() const noexcept {
    return root_->name;
}

const local_identity &ssh_config::local() const noexcept {
    return local_;
}

result<host_settings> ssh_config::resolve(std::string_view host, std::string_view explicit_user) const {
    if (host.empty())
        return make_error(error_kind::invalid, "empty host name");
    collected found;
    bool active = true;  // lines before the first Host apply to every host
    walk(*root_, host, active, false, found);

    host_settings out;
    out.host = std::string(host);
    out.port = found.port.value_or(22);
    if (!explicit_user.empty())
        out.user = std::string(explicit_user);
    else if (found.user)
        out.user = *found.user;
    else
        out.user = local_.user;

    token_values values;
    values.original_host = out.host;
    values.local = &local_;
    values.port = std::to_string(out.port);
    values.remote_user = out.user;
    if (found.hostname) {
        // ssh expands only %h (the name as given) in HostName.
        values.hostname = out.host;
        auto expanded = expand_tokens(found.hostname->value, values, "h");
        if (!expanded)
            return make_error(error_kind::invalid, where(found.hostname->file, found.hostname->line) +
                                                       "HostName: " + expanded.err().message);
        out.hostname = std::move(*expanded);
    } else {
        out.hostname = out.host;
    }
    values.hostname = out.hostname;

    if (found.identity_files.empty()) {
        for (const char *name : {"id_ed25519", "id_ecdsa", "id_rsa"})
            out.identity_files.push_back(local_.home / ".ssh" / name);
    } else {
        out.identity_files_configured = true;
        for (const auto &item : found.identity_files) {
            auto path = expand_path(item, values, local_, "IdentityFile");
            if (!path)
                return path.err();
            out.identity_files.push_back(std::move(*path));
        }
    }

    if (!found.known_hosts) {
        out.known_hosts_files = {local_.home / ".ssh" / "known_hosts", local_.home / ".ssh" / "known_hosts2"};
    } else if (!(found.known_hosts->value.size() == 1 && lower(found.known_hosts->value[0]) == "none")) {
        for (const auto &value : found.known_hosts->value) {
            auto path = expand_path({value, found.known_hosts->file, found.known_hosts->line}, values, local_,
                                    "UserKnownHostsFile");
            if (!path)
                return path.err();
            out.known_hosts_files.push_back(std::move(*path));
        }
    }

    out.host_key = found.policy.value_or(host_key_policy::strict);
    out.identities_only = found.identities_only.value_or(false);
    out.notes = std::move(found.notes);
    return out;
}

result<host_settings> resolve_host(const std::string &config_file, std::string_view host,
                                   std::string_view explicit_user, load_options options) {
    auto config = config_file.empty() ? ssh_config::load_default(std::move(options))
                                      : ssh_config::load(config_file, std::move(options));
    if (!config)
        return config.err();
    return config->resolve(host, explicit_user);
}

}  // namespace oneds::adapters::sshconfig
