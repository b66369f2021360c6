#include "adapters/ssh/shell_quote.hpp"

#include <oneds_common/shell_quote.hpp>

#include <optional>
#include <stdexcept>

namespace oneds::adapters::ssh {

std::string shell_quote(std::string_view word) { return common::shell_quote(word); }

bool is_env_name(std::string_view name) noexcept {
    if (name.empty()) return false;
    const auto letter = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
    if (!letter(name.front())) return false;
    for (const char c : name.substr(1))
        if (!letter(c) && !(c >= '0' && c <= '9')) return false;
    return true;
}

namespace {

// remote_command_line() with, when insert_at is set, the unquoted word "$@"
// placed before argv[*insert_at].
std::string command_words(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env,
                          bool report_pid, std::optional<std::size_t> insert_at) {
    if (argv.empty()) throw std::invalid_argument("cannot build a remote command line from an empty argv");
    const std::string &program = argv.front();
    if (program.empty() || program.front() == '-')
        throw std::invalid_argument("the program name (argument 0) must not be empty or start with '-'");
    if (!env.empty() && program.find('=') != std::string::npos)
        throw std::invalid_argument("the program name (argument 0) must not contain '=' when environment is set");
    for (std::size_t i = 0; i < argv.size(); ++i)
        if (argv[i].find('\0') != std::string::npos)
            throw std::invalid_argument("argument " + std::to_string(i) + " contains a NUL byte");

    std::string line;
    if (report_pid) line += pid_report_prefix;
    if (!env.empty()) {
        line += shell_quote("env");
        for (const auto &[name, value] : env) {
            if (!is_env_name(name))
                throw std::invalid_argument("environment variable name '" + name + "' is not valid");
            if (value.find('\0') != std::string::npos)
                throw std::invalid_argument("the value of environment variable " + name + " contains a NUL byte");
            line += ' ';
            line += shell_quote(name + "=" + value);
        }
        line += ' ';
    }
    for (std::size_t i = 0; i < argv.size(); ++i) {
        if (i != 0) line += ' ';
        if (insert_at && *insert_at == i) line += "\"$@\" ";
        line += shell_quote(argv[i]);
    }
    if (insert_at && *insert_at == argv.size()) line += " \"$@\"";
    return line;
}

}  // namespace

std::string remote_command_line(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env,
                                bool report_pid) {
    return command_words(argv, env, report_pid, std::nullopt);
}

std::string expand_base(const ports::dir_expansion &expand) {
    return expand.dir == "/" ? std::string("/") : expand.dir + "/";
}

std::string remote_command_line(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env,
                                bool report_pid, const ports::dir_expansion &expand) {
    if (auto why = ports::check_expansion(expand, argv.size()); !why.empty()) throw std::invalid_argument(why);
    // Checked first so that a bad argv is reported as such.
    std::string tail = command_words(argv, env, report_pid, expand.position);
    std::string line = "set -- " + shell_quote(expand_base(expand) + expand.prefix) + "*; [ -e \"$1\" ] || { echo " +
                       std::string(expand_nomatch_marker) + " >&2; exit 1; }; ";
    for (std::size_t i = 0; i < expand.required.size(); ++i)
        line += "[ -e " + shell_quote(expand.required[i]) + " ] || { echo " + std::string(expand_missing_marker) +
                std::to_string(i) + " >&2; exit 1; }; ";
    line += "printf '" + std::string(expand_arg_marker) + "%s\\n' \"$@\" >&2; ";
    return line + tail;
}

}  // namespace oneds::adapters::ssh
