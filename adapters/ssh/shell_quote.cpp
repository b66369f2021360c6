#include "adapters/ssh/shell_quote.hpp"

#include <stdexcept>

namespace oneds::adapters::ssh {

bool is_env_name(std::string_view name) noexcept {
    if (name.empty()) return false;
    const auto letter = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
    if (!letter(name.front())) return false;
    for (const char c : name.substr(1))
        if (!letter(c) && !(c >= '0' && c <= '9')) return false;
    return true;
}

std::string remote_command_line(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env,
                                bool report_pid) {
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
        line += shell_quote(argv[i]);
    }
    return line;
}

}  // namespace oneds::adapters::ssh
