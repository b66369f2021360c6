#include "tests/integration/action_process.hpp"

#include <cerrno>
#include <csignal>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace oneds::test {
namespace {

void close_fd(int &fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

// SigCgt of pid from /proc/<pid>/status, 0 when unreadable.
unsigned long long caught_signals(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("SigCgt:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
    return 0;
}

}  // namespace

spawned_process::spawned_process(const std::vector<std::string> &argv, std::string input,
                                 const std::map<std::string, std::string> &env, bool hold_input)
    : input_(std::move(input)), hold_input_(hold_input) {
    std::signal(SIGPIPE, SIG_IGN);
    std::vector<std::string> env_strings;
    for (char **e = environ; *e != nullptr; ++e) {
        const std::string entry(*e);
        if (env.contains(entry.substr(0, entry.find('=')))) continue;
        env_strings.push_back(entry);
    }
    for (const auto &[k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char *> envp, cargv;
    for (auto &e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_copy = argv;
    for (auto &a : argv_copy) cargv.push_back(a.data());
    cargv.push_back(nullptr);

    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    // Default dispositions and an empty mask, as a script started by oned's
    // drivers would have, whatever this test process changed.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    start_ = std::chrono::steady_clock::now();
    const int rc = ::posix_spawn(&pid_, cargv[0], &fa, &attr, cargv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    in_ = in_pipe[1];
    out_ = out_pipe[0];
    err_ = err_pipe[0];
    if (rc != 0) {
        close_fd(in_);
        close_fd(out_);
        close_fd(err_);
        pid_ = -1;
        throw std::system_error(rc, std::generic_category(), "posix_spawn " + argv.at(0));
    }
    pump_ = std::thread([this] { pump(); });
}

spawned_process::~spawned_process() {
    if (pid_ > 0 && !reaped_) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    if (pump_.joinable()) pump_.join();
    close_fd(in_);
    close_fd(out_);
    close_fd(err_);
}

void spawned_process::pump() {
    std::size_t written = 0;
    if (input_.empty())
        close_fd(in_);
    else
        ::fcntl(in_, F_SETFL, ::fcntl(in_, F_GETFL) | O_NONBLOCK);
    while (out_ >= 0 || err_ >= 0) {
        const bool held = hold_input_;
        pollfd fds[3] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}, {held ? -1 : in_, POLLOUT, 0}};
        const int pr = ::poll(fds, 3, held ? 20 : -1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) break;
        if (!held && in_ >= 0 && fds[2].revents != 0) {
            const ssize_t n = ::write(in_, input_.data() + written, input_.size() - written);
            if (n > 0) written += static_cast<std::size_t>(n);
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input_.size()) close_fd(in_);
        }
        for (auto [fd, text] : {std::pair{&out_, &out_text_}, std::pair{&err_, &err_text_}}) {
            const pollfd &p = fd == &out_ ? fds[0] : fds[1];
            if (*fd < 0 || p.revents == 0) continue;
            char buf[4096];
            const ssize_t n = ::read(*fd, buf, sizeof buf);
            if (n > 0)
                text->append(buf, static_cast<std::size_t>(n));
            else if (n == 0 || errno != EINTR)
                close_fd(*fd);
        }
    }
    close_fd(in_);
}

bool spawned_process::wait_for_signal_handler(int sig, std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const unsigned long long bit = 1ULL << (sig - 1);
    while (std::chrono::steady_clock::now() < deadline) {
        if ((caught_signals(pid_) & bit) != 0) return true;
        // No sleep: tests use this to signal as early as the handler allows.
        std::this_thread::yield();
    }
    return false;
}

void spawned_process::send_signal(int sig) const {
    if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
}

process_result spawned_process::wait(std::chrono::milliseconds limit) {
    process_result r;
    int status = 0;
    for (;;) {
        const pid_t w = ::waitpid(pid_, &status, WNOHANG);
        if (w == pid_) break;
        if (std::chrono::steady_clock::now() - start_ >= limit) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            r.killed = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    r.took = std::chrono::steady_clock::now() - start_;
    reaped_ = true;
    // The outputs reach EOF once the child (and anything it left behind) is gone.
    if (pump_.joinable()) pump_.join();
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
    r.out = out_text_;
    r.err = err_text_;
    return r;
}

process_result run_process(const std::vector<std::string> &argv, const std::string &input,
                           const std::map<std::string, std::string> &env, std::chrono::milliseconds limit) {
    spawned_process p(argv, input, env);
    return p.wait(limit);
}

}  // namespace oneds::test
