#include "adapters/process/local_runner.hpp"

#include <oneds_common/unique_fd.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/writable_pipe.hpp>
#include <boost/asio/write.hpp>
#include <boost/process/v2.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <algorithm>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string_view>
#include <utility>
#include <vector>

namespace oneds::adapters::process {
namespace {

namespace asio = boost::asio;
namespace bp = boost::process::v2;
using boost::system::error_code;
using executor = asio::io_context::executor_type;

using common::unique_fd;

// Thrown inside this file only; run() turns it into a ports::error.
struct run_failure {
    ports::error error;
};

[[noreturn]] void fail(ports::error_kind kind, std::string message) { throw run_failure{{kind, std::move(message)}}; }

std::string quoted_program(const ports::command &cmd) { return "'" + cmd.argv.front() + "'"; }

ports::error_kind kind_of_errno(int err) {
    switch (err) {
        case ENOENT:
        case ENOTDIR: return ports::error_kind::not_found;
        case EACCES:
        case EPERM: return ports::error_kind::permission;
        default: return ports::error_kind::io;
    }
}

// Both ends O_CLOEXEC: a child that another thread of the host starts at the
// same moment must not inherit either end (it would hold our pipe open).
std::pair<unique_fd, unique_fd> make_pipe(const ports::command &cmd) {
    std::array<int, 2> fds{-1, -1};
    if (::pipe2(fds.data(), O_CLOEXEC) != 0)
        fail(ports::error_kind::io, "cannot run " + quoted_program(cmd) + ": pipe: " + std::strerror(errno));
    return {unique_fd(fds[0]), unique_fd(fds[1])};
}

void check_no_nul(std::string_view text, const std::string &what) {
    if (text.find('\0') != std::string_view::npos) fail(ports::error_kind::invalid, what + " contains a NUL byte");
}

// The child's environment as "K=V" strings: ours, then cmd.env on top.
std::vector<std::string> child_environment(const ports::command &cmd) {
    std::map<std::string, std::string, std::less<>> merged;
    for (char **entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view kv(*entry);
        const auto eq = kv.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;
        merged.try_emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));  // first one wins, as getenv
    }
    for (const auto &[name, value] : cmd.env) {
        if (name.empty() || name.find('=') != std::string::npos)
            fail(ports::error_kind::invalid, "environment variable name '" + name + "' is not valid");
        check_no_nul(name, "an environment variable name");
        check_no_nul(value, "the value of environment variable " + name);
        merged[name] = value;
    }
    std::vector<std::string> out;
    out.reserve(merged.size());
    for (const auto &[name, value] : merged) out.push_back(name + "=" + value);
    return out;
}

bp::filesystem::path resolve_program(const ports::command &cmd, const std::vector<std::string> &env) {
    const std::string &name = cmd.argv.front();
    if (name.find('/') != std::string::npos) return {name};
    // Search the PATH the child will have; execvp's default when it has none.
    std::string path = "/usr/local/bin:/usr/bin:/bin";
    for (const auto &kv : env)
        if (kv.starts_with("PATH=")) path = kv.substr(5);
    const std::vector<bp::environment::key_value_pair> search{bp::environment::key_value_pair{"PATH", path}};
    auto found = bp::environment::find_executable(name, search);
    if (found.empty()) fail(ports::error_kind::not_found, "cannot run " + quoted_program(cmd) + ": not found in PATH");
    return found;
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int pidfd_send_signal(int pidfd, int sig) {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// Closes [lo, hi]. close_range is one system call; the loop is for kernels
// older than 5.9, bounded by the descriptor limit taken before fork.
void close_fd_range(unsigned lo, unsigned hi, unsigned fd_limit) {
    if (lo > hi) return;
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, lo, hi, 0U) == 0) return;
#endif
    for (unsigned fd = lo; fd <= hi && fd < fd_limit; ++fd) ::close(static_cast<int>(fd));
}

// The child's side of the launch: runs between fork and execve, so it makes
// async-signal-safe system calls only and allocates nothing.
//
// Boost.Process v2 in Boost 1.81 can neither start a session nor reset the
// signal mask, and its close_range-based descriptor cleanup skips the range
// below its own exec-error pipe (it compares a whitelist entry with itself),
// so this initializer does all three through the launcher's customisation
// points.
struct child_setup {
    std::array<int, 3> stdio{-1, -1, -1};  // become descriptors 0, 1 and 2
    unsigned fd_limit = 1024;

    error_code on_exec_setup(bp::posix::default_launcher &launcher, const bp::filesystem::path & /*exe*/,
                             const char *const * /*argv*/) {
        // Move the sources above 2 first, so that no dup2 into 0..2 overwrites
        // a source still needed (possible when the host has closed 0, 1 or 2).
        std::array<int, 3> moved{-1, -1, -1};
        auto next_moved = moved.begin();
        for (const int fd : stdio)
            if ((*next_moved++ = ::fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) return last_error();
        int target = 0;
        for (const int fd : moved)
            if (::dup2(fd, target++) < 0) return last_error();  // clears FD_CLOEXEC on the target

        // A session of its own: no controlling terminal (ssh cannot prompt on
        // the admin's tty), and a process group that signals to the host's
        // group (Ctrl-C on one_ds_host) do not reach.
        if (::setsid() < 0) return last_error();

        // Ignored signals stay ignored across execve and the mask is inherited:
        // a host that ignores SIGINT or blocks signals in this thread would
        // otherwise make the child deaf to our SIGINT.
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        ::sigemptyset(&dfl.sa_mask);
        for (int sig = 1; sig < NSIG; ++sig)
            if (sig != SIGKILL && sig != SIGSTOP)
                (void)::sigaction(sig, &dfl, nullptr);  // EINVAL for libc-internal ones
        sigset_t none;
        ::sigemptyset(&none);
        if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) return last_error();

        // Everything from 3 up, except what the launcher still needs (its
        // exec-error pipe, close-on-exec).
        unsigned lo = 3;
        for (;;) {
            int next = -1;
            for (const int keep : launcher.fd_whitelist)
                if (keep >= static_cast<int>(lo) && (next < 0 || keep < next)) next = keep;
            if (next < 0) {
                close_fd_range(lo, ~0U, fd_limit);
                break;
            }
            if (static_cast<unsigned>(next) > lo) close_fd_range(lo, static_cast<unsigned>(next) - 1, fd_limit);
            lo = static_cast<unsigned>(next) + 1;
        }
        return {};
    }

    // Boost 1.81 ends a child whose execve failed with exit(), which would run
    // the host's atexit handlers and flush copies of its stdio buffers from the
    // child. _exit does neither. Boost has already sent errno to the parent.
    template <typename... Args>
    void on_exec_error(Args &&...) {
        ::_exit(127);
    }

private:
    static error_code last_error() {
        const int err = errno == 0 ? EIO : errno;
        errno = err;  // Boost reports errno, not the returned code, to the parent
        return {err, boost::system::system_category()};
    }
};

// Splits a byte stream into lines without their '\n'; finish() hands out a
// last line that has none.
class line_splitter {
public:
    template <typename Emit>
    void feed(std::string_view chunk, Emit &&emit) {
        while (!chunk.empty()) {
            const auto nl = chunk.find('\n');
            if (nl == std::string_view::npos) {
                pending_.append(chunk);
                return;
            }
            if (pending_.empty()) {
                emit(chunk.substr(0, nl));
            } else {
                pending_.append(chunk.substr(0, nl));
                emit(std::string_view(pending_));
                pending_.clear();
            }
            chunk.remove_prefix(nl + 1);
        }
    }
    template <typename Emit>
    void finish(Emit &&emit) {
        if (pending_.empty()) return;
        std::string last;
        last.swap(pending_);
        emit(std::string_view(last));
    }

private:
    std::string pending_;
};

// Keeps a write to a pipe whose reader has gone from killing the host with
// SIGPIPE: blocked on this thread while run() writes, and a SIGPIPE raised by
// that write (thread-directed) is consumed before the mask is restored.
class sigpipe_blocker {
public:
    sigpipe_blocker() {
        ::sigemptyset(&pipe_only_);
        ::sigaddset(&pipe_only_, SIGPIPE);
        sigset_t pending;
        ::sigpending(&pending);
        was_pending_ = ::sigismember(&pending, SIGPIPE) == 1;
        ::pthread_sigmask(SIG_BLOCK, &pipe_only_, &old_mask_);
    }
    ~sigpipe_blocker() {
        if (!was_pending_) {
            sigset_t pending;
            ::sigpending(&pending);
            if (::sigismember(&pending, SIGPIPE) == 1) {
                const timespec zero{};
                (void)::sigtimedwait(&pipe_only_, nullptr, &zero);
            }
        }
        ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    }
    sigpipe_blocker(const sigpipe_blocker &) = delete;
    sigpipe_blocker &operator=(const sigpipe_blocker &) = delete;
    sigpipe_blocker(sigpipe_blocker &&) = delete;
    sigpipe_blocker &operator=(sigpipe_blocker &&) = delete;

private:
    sigset_t pipe_only_{};
    sigset_t old_mask_{};
    bool was_pending_ = false;
};

// One running child: its pipes, its exit, its cancellation. Every member runs
// on the io_context's (the calling) thread.
class child_session {
public:
    struct pipes {
        unique_fd stdin_write;  // invalid when stdin is /dev/null
        unique_fd stdout_read;
        unique_fd stderr_read;
    };

    child_session(asio::io_context &ioc, bp::basic_process<executor> &proc, unique_fd pidfd, pipes p,
                  const ports::command &cmd, const ports::run_options &opts, std::chrono::milliseconds drain_timeout)
        : proc_(proc),
          pidfd_(std::move(pidfd)),
          cmd_(cmd),
          opts_(opts),
          drain_timeout_(drain_timeout),
          stdin_(ioc),
          stdout_(ioc),
          stderr_(ioc),
          grace_timer_(ioc),
          drain_timer_(ioc) {
        if (p.stdin_write.get() >= 0) stdin_.assign(p.stdin_write.release());
        stdout_.assign(p.stdout_read.release());
        stderr_.assign(p.stderr_read.release());
    }

    void start() {
        if (stdin_.is_open())
            asio::async_write(stdin_, asio::buffer(cmd_.stdin_data),
                              [this](error_code ec, std::size_t n) { on_stdin_written(ec, n); });
        read_stdout();
        read_stderr();
        proc_.async_wait([this](error_code ec, int code) { on_exit(ec, code); });
    }

    // SIGINT now, SIGKILL after the grace.
    void cancel() {
        if (exited_ || signalled_) return;
        signalled_ = true;
        if (pidfd_send_signal(pidfd_.get(), SIGINT) != 0) return;  // already reaped
        result_.cancelled = true;
        grace_timer_.expires_after(opts_.kill_grace);
        grace_timer_.async_wait([this](error_code ec) { on_grace_over(ec); });
    }

    ports::command_result take_result() { return std::move(result_); }

private:
    void on_stdin_written(error_code /*ec*/, std::size_t /*written*/) {
        // Done or refused (the child closed its stdin): either way it gets EOF.
        error_code ignored;
        stdin_.close(ignored);
    }

    void read_stdout() {
        stdout_.async_read_some(asio::buffer(stdout_buf_), [this](error_code ec, std::size_t n) { on_stdout(ec, n); });
    }

    void on_stdout(error_code ec, std::size_t n) {
        const std::string_view chunk(stdout_buf_.data(), n);
        if (opts_.on_stdout_data) {
            if (n > 0) opts_.on_stdout_data(chunk);
        } else if (opts_.on_stdout_line)
            stdout_lines_.feed(chunk, opts_.on_stdout_line);
        else
            result_.stdout_text.append(chunk);
        if (!ec) return read_stdout();
        if (!opts_.on_stdout_data && opts_.on_stdout_line) stdout_lines_.finish(opts_.on_stdout_line);
        error_code ignored;
        stdout_.close(ignored);
        stdout_open_ = false;
        finish_if_done();
    }

    void read_stderr() {
        stderr_.async_read_some(asio::buffer(stderr_buf_), [this](error_code ec, std::size_t n) { on_stderr(ec, n); });
    }

    void on_stderr(error_code ec, std::size_t n) {
        const std::string_view chunk(stderr_buf_.data(), n);
        result_.stderr_text.append(chunk);
        if (opts_.on_stderr_line) stderr_lines_.feed(chunk, opts_.on_stderr_line);
        if (!ec) return read_stderr();
        if (opts_.on_stderr_line) stderr_lines_.finish(opts_.on_stderr_line);
        error_code ignored;
        stderr_.close(ignored);
        stderr_open_ = false;
        finish_if_done();
    }

    void on_exit(error_code ec, int /*portable_code*/) {
        exited_ = true;
        if (ec) {
            result_.exit_code = -1;  // not ours to reap (the host set SIGCHLD to SIG_IGN)
        } else {
            const int status = proc_.native_exit_code();
            if (WIFEXITED(status))
                result_.exit_code = WEXITSTATUS(status);
            else if (WIFSIGNALED(status))
                result_.exit_code = 128 + WTERMSIG(status);
        }
        grace_timer_.cancel();
        error_code ignored;
        stdin_.close(ignored);
        if (stdout_open_ || stderr_open_) {
            drain_timer_.expires_after(drain_timeout_);
            drain_timer_.async_wait([this](error_code tec) { on_drain_over(tec); });
        }
        finish_if_done();
    }

    void on_grace_over(error_code ec) {
        if (ec || exited_) return;
        // The child ignored SIGINT. It leads its process group (setsid), so
        // the group signal also ends helpers it started. The pidfd signal
        // first: it fails once the child is reaped, when its pid (and so the
        // group id) may belong to someone else.
        if (pidfd_send_signal(pidfd_.get(), SIGKILL) == 0) (void)::kill(-proc_.id(), SIGKILL);
    }

    void on_drain_over(error_code ec) {
        if (ec) return;
        // A descendant holds the pipes open; stop waiting for it. The pending
        // reads complete with operation_aborted and close their side.
        stdout_.cancel(ec);
        stderr_.cancel(ec);
    }

    void finish_if_done() {
        if (!exited_ || stdout_open_ || stderr_open_) return;
        drain_timer_.cancel();
        grace_timer_.cancel();
    }

    bp::basic_process<executor> &proc_;
    unique_fd pidfd_;
    const ports::command &cmd_;
    const ports::run_options &opts_;
    std::chrono::milliseconds drain_timeout_;

    asio::writable_pipe stdin_;
    asio::readable_pipe stdout_;
    asio::readable_pipe stderr_;
    asio::steady_timer grace_timer_;
    asio::steady_timer drain_timer_;
    std::array<char, 65536> stdout_buf_{};
    std::array<char, 65536> stderr_buf_{};
    line_splitter stdout_lines_;
    line_splitter stderr_lines_;

    bool exited_ = false;
    bool signalled_ = false;
    bool stdout_open_ = true;
    bool stderr_open_ = true;
    ports::command_result result_;
};

unsigned descriptor_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 1U << 20;
    return static_cast<unsigned>(std::min<rlim_t>(limit.rlim_cur, 1U << 30));
}

ports::command_result run_child(const ports::command &cmd, const ports::run_options &opts,
                                std::chrono::milliseconds drain_timeout) {
    if (cmd.argv.empty()) fail(ports::error_kind::invalid, "cannot run a command with an empty argv");
    for (std::size_t i = 0; i < cmd.argv.size(); ++i)
        check_no_nul(cmd.argv[i], "argument " + std::to_string(i) + " of " + quoted_program(cmd));
    if (opts.stop.stop_requested()) {
        ports::command_result never_started;
        never_started.cancelled = true;
        return never_started;
    }

    const std::vector<std::string> env = child_environment(cmd);
    std::vector<const char *> envp;
    envp.reserve(env.size() + 1);
    for (const auto &kv : env) envp.push_back(kv.c_str());
    envp.push_back(nullptr);
    std::vector<const char *> argv;
    argv.reserve(cmd.argv.size() + 1);
    for (const auto &arg : cmd.argv) argv.push_back(arg.c_str());
    argv.push_back(nullptr);
    const bp::filesystem::path program = resolve_program(cmd, env);

    child_session::pipes parent;
    unique_fd child_stdin;
    if (cmd.stdin_data.empty()) {
        child_stdin = unique_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (child_stdin.get() < 0)
            fail(ports::error_kind::io, "cannot run " + quoted_program(cmd) + ": /dev/null: " + std::strerror(errno));
    } else {
        std::tie(child_stdin, parent.stdin_write) = make_pipe(cmd);
    }
    auto [stdout_read, child_stdout] = make_pipe(cmd);
    auto [stderr_read, child_stderr] = make_pipe(cmd);
    parent.stdout_read = std::move(stdout_read);
    parent.stderr_read = std::move(stderr_read);

    // Only SIGPIPE from our own stdin write is in question; blocked before the
    // fork, the child resets its mask anyway.
    std::optional<sigpipe_blocker> no_sigpipe;
    if (!cmd.stdin_data.empty()) no_sigpipe.emplace();

    // Launched before any I/O object exists on the io_context, so the forked
    // child's notify_fork has no reactor state to rebuild.
    asio::io_context ioc;
    child_setup setup;
    setup.stdio = {child_stdin.get(), child_stdout.get(), child_stderr.get()};
    setup.fd_limit = descriptor_limit();
    bp::posix::default_launcher launcher;
    launcher.env = envp.data();
    error_code ec;
    // The const char ** overload passes argv untouched, argv[0] included.
    auto proc = launcher(ioc.get_executor(), ec, program, argv.data(), setup);
    if (ec) {
        // Boost does not reap a child whose execve failed.
        if (launcher.pid > 0)
            while (::waitpid(launcher.pid, nullptr, 0) < 0 && errno == EINTR) {}
        fail(kind_of_errno(ec.value()), "cannot run " + quoted_program(cmd) + ": " + ec.message());
    }
    // The child holds its ends now; closing ours lets EOF through.
    child_stdin.reset();
    child_stdout.reset();
    child_stderr.reset();

    // Opened while the child is certainly unreaped, so it names this child.
    unique_fd pidfd(pidfd_open(proc.id()));
    if (pidfd.get() < 0)
        fail(ports::error_kind::io, "cannot watch " + quoted_program(cmd) + ": pidfd_open: " + std::strerror(errno));

    child_session session(ioc, proc, std::move(pidfd), std::move(parent), cmd, opts, drain_timeout);
    session.start();
    {
        // The callback may run on another thread (or at once, here): it only
        // posts to the io_context, whose thread then signals the child. Its
        // destructor waits for a callback in progress, so nothing it touches
        // is gone while it runs.
        const std::stop_callback on_stop(opts.stop,
                                         [&ioc, &session] { asio::post(ioc, [&session] { session.cancel(); }); });
        ioc.run();
    }
    return session.take_result();
}

}  // namespace

local_runner::local_runner(local_runner_options options) : options_(options) {}

ports::result<ports::command_result> local_runner::run(const std::string &host, const ports::command &cmd,
                                                       const ports::run_options &opts) {
    if (!host.empty())
        return ports::error{ports::error_kind::invalid, "the local runner cannot run on host '" + host + "'"};
    try {
        return run_child(cmd, opts, options_.drain_timeout);
    } catch (const run_failure &f) {
        return f.error;
    } catch (const std::exception &e) {
        // A callback threw, or Boost did: the child has been killed and reaped
        // by the process object's destructor.
        const std::string program = cmd.argv.empty() ? std::string("?") : quoted_program(cmd);
        return ports::error{ports::error_kind::io, "while running " + program + ": " + e.what()};
    } catch (...) {
        return ports::error{ports::error_kind::io, "while running a command: unknown exception"};
    }
}

}  // namespace oneds::adapters::process
