#include "bench/mad_peer.hpp"

#include <cerrno>
#include <csignal>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

namespace oneds::bench {
namespace {

using clock = std::chrono::steady_clock;

[[noreturn]] void throw_errno(const char *what) { throw std::system_error(errno, std::generic_category(), what); }

void close_fd(int &fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

}  // namespace

bool exit_report::clean() const { return exited && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0; }

std::string exit_report::describe() const {
    std::ostringstream out;
    if (killed)
        out << "SIGKILLed after " << std::chrono::duration<double>(took).count() << " s";
    else if (!exited)
        out << "not reaped";
    else if (WIFEXITED(wait_status))
        out << "exit " << WEXITSTATUS(wait_status);
    else if (WIFSIGNALED(wait_status))
        out << "signal " << WTERMSIG(wait_status);
    else
        out << "wait status " << wait_status;
    return out.str();
}

mad_peer::mad_peer(const std::string &executable, const std::string &arguments) {
    int to_pipe[2];
    int from_pipe[2];
    if (::pipe2(to_pipe, O_CLOEXEC) != 0) throw_errno("pipe2");
    if (::pipe2(from_pipe, O_CLOEXEC) != 0) {
        ::close(to_pipe[0]);
        ::close(to_pipe[1]);
        throw_errno("pipe2");
    }
    const char *cmd = executable.c_str();
    const char *args = arguments.c_str();
    pid_ = ::fork();
    if (pid_ < 0) {
        for (int fd : {to_pipe[0], to_pipe[1], from_pipe[0], from_pipe[1]}) ::close(fd);
        throw_errno("fork");
    }
    if (pid_ == 0) {
        // Only async-signal-safe calls from here to exec. dup2() clears
        // O_CLOEXEC on 0 and 1; every other pipe end closes on exec.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::dup2(to_pipe[0], 0);
        ::dup2(from_pipe[1], 1);
        ::close(2);
        ::execlp(cmd, cmd, args, static_cast<char *>(nullptr));
        ::_exit(127);
    }
    ::close(to_pipe[0]);
    ::close(from_pipe[1]);
    to_driver_ = to_pipe[1];
    from_driver_ = from_pipe[0];
}

mad_peer::~mad_peer() {
    if (!reaped_) kill();
    close_fd(to_driver_);
    close_fd(from_driver_);
}

void mad_peer::init() {
    if (!write_line("INIT")) throw std::runtime_error("cannot write INIT: the driver's stdin is closed");
    fd_set rfds;
    FD_ZERO(&rfds);
    FD_SET(from_driver_, &rfds);
    timeval tv{10, 0};
    int rc;
    do {
        rc = ::select(from_driver_ + 1, &rfds, nullptr, nullptr, &tv);
    } while (rc < 0 && errno == EINTR);
    if (rc <= 0) throw std::runtime_error("no answer to INIT within 10 s");
    char buffer[32];
    const ssize_t n = ::read(from_driver_, buffer, 31);
    if (n <= 0) throw std::runtime_error("the driver closed its stdout instead of answering INIT");
    const std::string raw(buffer, static_cast<std::size_t>(n));
    std::istringstream tokens(raw);
    std::string first;
    std::string second;
    tokens >> first >> second;
    if (first != "INIT" || second != "SUCCESS") throw std::runtime_error("bad answer to INIT: '" + raw + "'");
}

bool mad_peer::write_line(std::string_view line) {
    std::string buf;
    buf.reserve(line.size() + 1);
    buf.append(line);
    buf.push_back('\n');
    std::size_t off = 0;
    while (off < buf.size()) {
        const ssize_t n = ::write(to_driver_, buf.data() + off, buf.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        off += static_cast<std::size_t>(n);
    }
    return true;
}

exit_report mad_peer::finalize() {
    if (reaped_) return exit_;
    const auto start = clock::now();
    write_line("FINALIZE");
    close_fd(to_driver_);
    close_fd(from_driver_);
    return reap(start, std::chrono::seconds(10));
}

exit_report mad_peer::kill() {
    if (reaped_) return exit_;
    const auto start = clock::now();
    ::kill(pid_, SIGKILL);
    close_fd(to_driver_);
    close_fd(from_driver_);
    exit_ = reap(start, std::chrono::seconds(10));
    exit_.killed = true;
    return exit_;
}

exit_report mad_peer::reap(clock::time_point start, clock::duration limit) {
    exit_report r;
    for (;;) {
        int status = 0;
        const pid_t got = ::waitpid(pid_, &status, WNOHANG);
        if (got == pid_) {
            r.exited = true;
            r.wait_status = status;
            break;
        }
        if (got < 0 && errno != EINTR) break;
        if (clock::now() - start >= limit) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            r.killed = true;
            r.wait_status = status;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    r.took = clock::now() - start;
    reaped_ = true;
    exit_ = r;
    return r;
}

}  // namespace oneds::bench
