// The process_runner for this machine (host ""): runs an argv vector as a
// child process through the project's launcher (common/child.hpp),
// never through a shell.
//
// Why it is shaped this way: the plugin lives inside someone else's process
// (one_ds_host, or any host that dlopens it). So it installs no SIGCHLD handler
// (the child's end is seen on its pidfd), touches no process-wide state, and
// gives each child a clean start whatever the host has set up.
//
// Contract, in addition to ports/process.hpp:
// * argv[0] without a '/' is searched in PATH (the PATH the child will get, so
//   a PATH in cmd.env is honoured); the child sees argv[0] as written.
// * The child's environment is this process's environment plus cmd.env, and
//   cmd.env wins. Nothing is set in this process's own environment, so a
//   secret in cmd.env (RESTIC_PASSWORD) reaches this one child and no other.
// * The child starts in a session of its own (setsid: no controlling terminal;
//   it leads its own process group), with only descriptors 0, 1 and 2 open,
//   an empty signal mask and default signal dispositions, whatever the calling
//   thread had blocked or the host had ignored.
// * stdin: cmd.stdin_data, then end of file; /dev/null when stdin_data is empty.
// * stdout and stderr are read concurrently on a private io_context run by the
//   calling thread, so any amount of output in either stream cannot deadlock.
//   stdout goes line by line to on_stdout_line (a last line without '\n' too);
//   stderr is kept whole and also handed line by line to on_stderr_line.
// * Cancellation (opts.stop): SIGINT to the child's pid only, never to its
//   group, because restic's own ssh child must survive long enough for restic
//   to delete its lock through it; then, opts.kill_grace later, SIGKILL to the
//   child's process group (it leads it), so helpers it started die with it.
//   result.cancelled tells that a signal was sent. A run whose token has
//   already stopped starts nothing and returns cancelled = true, exit_code -1.
// * After the child has exited, output still in the pipes is read; a
//   descendant that keeps the pipes open (a daemon) holds run() for at most
//   drain_timeout more.
// * Writing stdin to a child that stopped reading never raises SIGPIPE in the
//   host: the signal is blocked on the calling thread while run() writes and
//   a SIGPIPE caused by it is consumed.
// * Errors (ports::error): empty argv, or a NUL byte in argv or cmd.env, or a
//   bad variable name -> invalid; a program not found -> not_found; exec
//   refused (EACCES) -> permission; anything else -> io. Messages name the
//   program (argv[0]) and variable names, never an argument value, a value of
//   cmd.env or stdin_data. Nothing is logged.
// * Thread-safe: run() may be called from any number of threads at once.
#pragma once

#include "plugin/ports/process.hpp"

#include <chrono>
#include <string>

namespace oneds::adapters::process {

struct local_runner_options {
    // How long reading goes on after the child has exited, for output that a
    // descendant still holds open.
    std::chrono::milliseconds drain_timeout{2000};
};

class local_runner final : public ports::process_runner {
public:
    explicit local_runner(local_runner_options options = {});

    // host must be "": this runner knows no other machine (invalid otherwise).
    ports::result<ports::command_result> run(const std::string &host, const ports::command &cmd,
                                             const ports::run_options &opts) override;

private:
    local_runner_options options_;
};

}  // namespace oneds::adapters::process
