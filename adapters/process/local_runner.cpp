#include "adapters/process/local_runner.hpp"

#include "common/child.hpp"
#include "common/unique_fd.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/writable_pipe.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <algorithm>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string_view>
#include <utility>
#include <vector>

namespace oneds::adapters::process {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

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
    child_session(asio::io_context &ioc, common::child &proc, const ports::command &cmd, const ports::run_options &opts,
                  std::chrono::milliseconds drain_timeout)
        : proc_(proc),
          cmd_(cmd),
          opts_(opts),
          drain_timeout_(drain_timeout),
          stdin_(ioc),
          stdout_(ioc),
          stderr_(ioc),
          exit_(ioc),
          grace_timer_(ioc),
          drain_timer_(ioc) {
        if (proc.stdin_pipe()) stdin_.assign(proc.stdin_pipe().release());
        stdout_.assign(proc.stdout_pipe().release());
        stderr_.assign(proc.stderr_pipe().release());
        // The pidfd turns readable when the child ends; the copy is the
        // reactor's to close.
        unique_fd watched(::fcntl(proc.pidfd(), F_DUPFD_CLOEXEC, 0));
        if (!watched) fail(ports::error_kind::io, "cannot watch " + quoted_program(cmd) + ": " + std::strerror(errno));
        exit_.assign(watched.release());
    }

    void start() {
        if (stdin_.is_open())
            asio::async_write(stdin_, asio::buffer(cmd_.stdin_data),
                              [this](error_code ec, std::size_t n) { on_stdin_written(ec, n); });
        read_stdout();
        read_stderr();
        wait_for_exit();
    }

    // SIGINT now, SIGKILL after the grace.
    void cancel() {
        if (exited_ || signalled_) return;
        signalled_ = true;
        if (!proc_.signal(SIGINT)) return;  // already reaped
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

    void wait_for_exit() {
        exit_.async_wait(asio::posix::stream_descriptor::wait_read, [this](error_code ec) {
            if (ec) return;
            if (const auto status = proc_.try_wait()) return on_exit(*status);
            wait_for_exit();
        });
    }

    void on_exit(const common::exit_status &status) {
        exited_ = true;
        // -1 when the child was not ours to reap (the host set SIGCHLD to SIG_IGN).
        result_.exit_code = status.shell_code();
        grace_timer_.cancel();
        error_code ignored;
        stdin_.close(ignored);
        exit_.close(ignored);
        if (stdout_open_ || stderr_open_) {
            drain_timer_.expires_after(drain_timeout_);
            drain_timer_.async_wait([this](error_code tec) { on_drain_over(tec); });
        }
        finish_if_done();
    }

    void on_grace_over(error_code ec) {
        if (ec || exited_) return;
        // The child ignored SIGINT. It leads its process group (setsid), so
        // the group signal also ends helpers it started.
        (void)proc_.signal_group(SIGKILL);
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

    common::child &proc_;
    const ports::command &cmd_;
    const ports::run_options &opts_;
    std::chrono::milliseconds drain_timeout_;

    asio::writable_pipe stdin_;
    asio::readable_pipe stdout_;
    asio::readable_pipe stderr_;
    asio::posix::stream_descriptor exit_;
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

// The child with its three pipes (stdin /dev/null when there is nothing to
// write), in a session of its own: no controlling terminal (ssh cannot prompt
// on the admin's tty), and a process group that signals to the host's group
// (Ctrl-C on one_ds_host) do not reach. The launcher gives it only 0, 1 and
// 2, an empty signal mask and default dispositions.
common::child start_child(const ports::command &cmd) {
    common::child_spec spec;
    spec.argv = cmd.argv;
    spec.env_set = cmd.env;
    spec.in = cmd.stdin_data.empty() ? common::child_stream::null() : common::child_stream::pipe();
    spec.out = common::child_stream::pipe();
    spec.err = common::child_stream::pipe();
    spec.group = common::child_group::new_session;
    try {
        return common::spawn(spec);
    } catch (const common::spawn_error &e) {
        fail(kind_of_errno(e.code().value()), e.what());
    } catch (const std::invalid_argument &e) {
        fail(ports::error_kind::invalid, e.what());
    }
}

ports::command_result run_child(const ports::command &cmd, const ports::run_options &opts,
                                std::chrono::milliseconds drain_timeout) {
    if (cmd.argv.empty()) fail(ports::error_kind::invalid, "cannot run a command with an empty argv");
    if (opts.stop.stop_requested()) {
        ports::command_result never_started;
        never_started.cancelled = true;
        return never_started;
    }

    // Only SIGPIPE from our own stdin write is in question; blocked before the
    // child starts, which resets its mask anyway.
    std::optional<sigpipe_blocker> no_sigpipe;
    if (!cmd.stdin_data.empty()) no_sigpipe.emplace();

    // Declared before the session, so that it outlives it: when a callback
    // throws, its handle's destructor kills and reaps the child.
    common::child proc = start_child(cmd);
    if (proc.pidfd() < 0)
        fail(ports::error_kind::io, "cannot watch " + quoted_program(cmd) + ": the kernel gives no pidfd");
    asio::io_context ioc;
    child_session session(ioc, proc, cmd, opts, drain_timeout);
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
        // A callback threw, or Asio did: the child has been killed and reaped
        // by its handle's destructor.
        const std::string program = cmd.argv.empty() ? std::string("?") : quoted_program(cmd);
        return ports::error{ports::error_kind::io, "while running " + program + ": " + e.what()};
    } catch (...) {
        return ports::error{ports::error_kind::io, "while running a command: unknown exception"};
    }
}

}  // namespace oneds::adapters::process
