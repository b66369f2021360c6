// Port: run a program, here or on another host, from an argv vector.
//
// No shell is involved locally. On another host the one unavoidable shell is
// the remote user's login shell that sshd hands the command to; the adapter
// builds that command line with a single quoting function from the argv.
#pragma once

#include "plugin/ports/result.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <map>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace oneds::ports {

// Arguments named by a listing of a directory on the host that runs the
// command, as the shell glob <dir>/<prefix>* names them, without a round trip
// of its own (the stock driver's backup script relies on such a glob): the
// entries of dir whose names start with prefix, as dir/name, are inserted into
// argv before argv[position]. Every path in `required` must exist too. When
// nothing matches or a required path is missing, the program is not started
// and run() fails with error_kind::not_found and a message that starts with
// "no file " and names what is missing ("no file <dir>/<prefix>*").
// Order: byte order here; on another host the remote shell's glob order.
struct dir_expansion {
    std::string dir;                    // absolute, no trailing '/' (but "/" itself)
    std::string prefix;                 // not empty, no '/', no glob character, not starting with '.'
    std::size_t position = 0;           // 1 .. argv.size()
    std::vector<std::string> required;  // absolute paths
};

struct command {
    std::vector<std::string> argv;           // argv[0] is looked up in PATH
    std::map<std::string, std::string> env;  // set for this child only (may hold secrets locally)
    // Written to the child's stdin, which is then closed. May hold a secret (the
    // restic password for a remote restic): never logged, never on a command line.
    std::string stdin_data;
    // Marks which env values are secret: the remote adapter refuses to put them
    // on the remote command line (it cannot pass environment over ssh).
    std::vector<std::string> secret_env;
    std::optional<dir_expansion> expand;
};

// Checks an expansion against the rules above for a command of argc words;
// empty when it is usable, else what is wrong.
inline std::string check_expansion(const dir_expansion &e, std::size_t argc) {
    if (e.dir.empty() || e.dir.front() != '/' || (e.dir.size() > 1 && e.dir.back() == '/'))
        return "the folder to list must be an absolute path without a trailing '/'";
    if (e.prefix.empty() || e.prefix.front() == '.' || e.prefix.find_first_of("/*?[]\\") != std::string::npos)
        return "the name prefix must not be empty, start with '.' or hold '/' or a glob character";
    if (e.position == 0 || e.position > argc) return "the insertion point must lie after the program name";
    for (const auto *s : {&e.dir, &e.prefix})
        if (s->find('\0') != std::string::npos) return "the folder and prefix must not hold a NUL byte";
    for (const auto &r : e.required) {
        if (r.empty() || r.front() != '/') return "a required path must be absolute";
        if (r.find('\0') != std::string::npos) return "a required path must not hold a NUL byte";
    }
    return {};
}

struct command_result {
    int exit_code = -1;                 // exit status, or 128 + signal number
    bool cancelled = false;             // the run was stopped through cancellation
    std::string stdout_text;            // stdout lines not handed to on_stdout_line
    std::string stderr_text;            // all of stderr
    std::vector<std::string> expanded;  // with command::expand: the names inserted, in order
};

struct run_options {
    // Called for each complete stdout line (without '\n'), in order, from the
    // calling thread. When set, stdout_text stays empty.
    std::function<void(std::string_view)> on_stdout_line;
    // Called with stdout's bytes as they arrive (any chunking), from the
    // calling thread; takes precedence over on_stdout_line. For output too
    // large to hold (a disk image streamed through `cat`).
    std::function<void(std::string_view)> on_stdout_data;
    // Called for each complete stderr line; stderr_text is filled either way.
    std::function<void(std::string_view)> on_stderr_line;
    // Stops the run: the child gets SIGINT (see the adapters). Default: never.
    std::stop_token stop;
    // After a stop, how long the child gets after SIGINT before SIGKILL.
    std::chrono::milliseconds kill_grace{10000};
};

// Runs commands on one machine (this one) or through ssh on a named host.
class process_runner {
public:
    virtual ~process_runner() = default;
    // Runs cmd on host ("" = here). Fails only when the program could not be
    // started at all; a non-zero exit is a value in command_result.
    virtual result<command_result> run(const std::string &host, const command &cmd, const run_options &opts) = 0;
};

}  // namespace oneds::ports
