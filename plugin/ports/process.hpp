// Port: run a program, here or on another host, from an argv vector.
//
// No shell is involved locally. On another host the one unavoidable shell is
// the remote user's login shell that sshd hands the command to; the adapter
// builds that command line with a single quoting function from the argv.
#pragma once

#include "plugin/ports/result.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace oneds::ports {

struct command {
    std::vector<std::string> argv;           // argv[0] is looked up in PATH
    std::map<std::string, std::string> env;  // set for this child only (may hold secrets locally)
    // Written to the child's stdin, which is then closed. May hold a secret (the
    // restic password for a remote restic): never logged, never on a command line.
    std::string stdin_data;
    // Marks which env values are secret: the remote adapter refuses to put them
    // on the remote command line (it cannot pass environment over ssh).
    std::vector<std::string> secret_env;
};

struct command_result {
    int exit_code = -1;       // exit status, or 128 + signal number
    bool cancelled = false;   // the run was stopped through cancellation
    std::string stdout_text;  // stdout lines not handed to on_stdout_line
    std::string stderr_text;  // all of stderr
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
