// Starting a child program: the one launcher of this project. The process
// adapter's commands, the host's fallback driver, the SFTP proxy, the test
// fixtures and the benchmark's host all start here.
//
// Contract:
// * argv is run as given, never through a shell. An argv[0] without a '/' is
//   searched in the PATH the child gets (a PATH in env_set counts; without
//   any, /usr/local/bin:/usr/bin:/bin) and executed by the path found, so a
//   script's $0 is that path; the child sees argv[0] as written.
// * Environment: this process's environment (or env_whole when given), less
//   the names in env_unset and env_set, then env_set. A name this process has
//   twice keeps its first value, the one getenv() reads.
// * Descriptors 0, 1 and 2 are what in, out and err say; the child gets no
//   other descriptor of this process, close-on-exec or not.
// * reset_signals (the default): default dispositions and an empty signal
//   mask, whatever this process ignores or the calling thread blocks. Without
//   it the child keeps what exec leaves: the mask and the ignored signals.
// * group: new_group, the child leads a process group of its own;
//   new_session, a session too (no controlling terminal).
// * posix_spawn starts the child. Only parent_death_signal, which posix_spawn
//   cannot set, makes the launcher fork() (test fixtures use it).
// * Errors: std::invalid_argument for an empty argv, a NUL byte in argv or the
//   environment, or a bad variable name; spawn_error when the child cannot be
//   started (its code() is the errno: ENOENT for a program not found). The
//   messages name the program (argv[0]) and variable names, never an argument
//   or a value.
// * The handle owns the child: its destructor stops a child still running
//   (stop_signal, then SIGKILL after stop_grace; SIGKILL at once by default)
//   and reaps it, so none is left running or as a zombie, unless released.
#pragma once

#include "common/unique_fd.hpp"

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace oneds::common {

// What one of the child's descriptors 0, 1 and 2 is.
struct child_stream {
    enum class kind { inherit, null, pipe, fd, file, closed };
    kind how = kind::inherit;
    int fd = -1;       // kind::fd: duplicated into place; the caller keeps (and closes) its own
    std::string path;  // kind::file: opened by the launcher with flags and mode
    int flags = 0;
    mode_t mode = 0600;

    static child_stream inherit() { return {}; }
    // /dev/null, for reading as stdin and for writing as stdout or stderr.
    static child_stream null() { return of(kind::null); }
    // A new pipe: the child gets one end, the handle the other
    // (child::stdin_pipe() and so on, close-on-exec, blocking).
    static child_stream pipe() { return of(kind::pipe); }
    static child_stream use(int fd) {
        child_stream s = of(kind::fd);
        s.fd = fd;
        return s;
    }
    static child_stream file(std::string path, int flags, mode_t mode = 0600) {
        child_stream s = of(kind::file);
        s.path = std::move(path);
        s.flags = flags;
        s.mode = mode;
        return s;
    }
    static child_stream closed() { return of(kind::closed); }

private:
    static child_stream of(kind how) {
        child_stream s;
        s.how = how;
        return s;
    }
};

enum class child_group { same, new_group, new_session };

struct child_spec {
    std::vector<std::string> argv;
    std::map<std::string, std::string> env_set;
    std::vector<std::string> env_unset;
    std::optional<std::vector<std::string>> env_whole;  // "NAME=value" entries
    child_stream in;
    child_stream out;
    child_stream err;
    child_group group = child_group::same;
    bool reset_signals = true;
    int parent_death_signal = 0;  // PR_SET_PDEATHSIG: sent when the starting thread ends
    // What the handle's destructor does to a child still running.
    int stop_signal = SIGTERM;
    std::chrono::milliseconds stop_grace{0};  // 0: SIGKILL at once
};

// How a child ended, as waitpid() told it.
struct exit_status {
    int raw = 0;        // waitpid's status
    bool lost = false;  // reaped by someone else (this process ignores SIGCHLD): nothing known

    [[nodiscard]] bool exited() const noexcept;
    [[nodiscard]] int exit_code() const noexcept;    // -1 unless exited()
    [[nodiscard]] int term_signal() const noexcept;  // the signal that ended it, 0 if none
    // The exit code, or 128 + the signal as a shell reports it; -1 when lost.
    [[nodiscard]] int shell_code() const noexcept;
};

class spawn_error : public std::system_error {
public:
    spawn_error(int error, std::string message)
        : std::system_error(error, std::generic_category()), message_(std::move(message)) {}
    [[nodiscard]] const char *what() const noexcept override { return message_.c_str(); }
    [[nodiscard]] bool not_found() const noexcept;

private:
    std::string message_;
};

class child {
public:
    child() noexcept = default;
    ~child();
    child(child &&other) noexcept;
    child &operator=(child &&other) noexcept;
    child(const child &) = delete;
    child &operator=(const child &) = delete;

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    // -1 when the kernel gives none (before Linux 5.3).
    [[nodiscard]] int pidfd() const noexcept { return pidfd_.get(); }
    // This process's ends of the pipes asked for (invalid otherwise).
    [[nodiscard]] unique_fd &stdin_pipe() noexcept { return pipes_[0]; }
    [[nodiscard]] unique_fd &stdout_pipe() noexcept { return pipes_[1]; }
    [[nodiscard]] unique_fd &stderr_pipe() noexcept { return pipes_[2]; }

    // Sends sig to the child; false once it has been reaped (through the
    // pidfd, so never to a process that reused its pid). Safe from any thread.
    bool signal(int sig) const noexcept;
    // sig to the child, then to the process group it leads (new_group or
    // new_session), so its descendants get it too. False once reaped.
    bool signal_group(int sig) const noexcept;

    // The status once the child has ended (reaping it), nullopt before.
    std::optional<exit_status> try_wait() noexcept;
    // Waits up to timeout; nullopt when it still runs.
    std::optional<exit_status> wait_for(std::chrono::milliseconds timeout) noexcept;
    exit_status wait() noexcept;
    // sig, up to grace for the child to end, then SIGKILL; reaped. SIGKILL at
    // once when grace is 0. The status as it ended (at once when it already had).
    exit_status stop(std::chrono::milliseconds grace, int sig = SIGTERM) noexcept;
    exit_status kill() noexcept { return stop(std::chrono::milliseconds(0)); }
    [[nodiscard]] bool reaped() const noexcept { return status_.has_value(); }

    // Lets the child go: the handle neither stops nor reaps it any more.
    pid_t release() noexcept;

private:
    friend child spawn(const child_spec &spec);
    exit_status settle(exit_status s) noexcept;

    pid_t pid_ = -1;
    unique_fd pidfd_;
    unique_fd pipes_[3];
    std::optional<exit_status> status_;
    std::atomic<bool> reaped_flag_{false};  // status_ for signal() on other threads
    int stop_signal_ = SIGTERM;
    std::chrono::milliseconds stop_grace_{0};
};

// Starts the child that spec describes (see the contract at the top).
[[nodiscard]] child spawn(const child_spec &spec);

}  // namespace oneds::common
