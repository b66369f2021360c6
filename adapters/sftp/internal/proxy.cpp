#include "adapters/sftp/internal/proxy.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

extern char **environ;  // NOLINT: POSIX

namespace oneds::adapters::sftp::internal {

using ports::error;
using ports::error_kind;

namespace {

bool is_ipv6(const std::string &host) { return host.find(':') != std::string::npos; }

}  // namespace

ports::result<std::vector<std::string>> proxy_process::argv_for(const sshconfig::host_settings &s) {
    if (!s.proxy_command.empty()) {
        auto command = sshconfig::expanded_proxy_command(s);
        if (!command) return command.err();
        return std::vector<std::string>{"/bin/sh", "-c", "exec " + *command};
    }
    if (s.proxy_jump.empty()) return error{error_kind::invalid, "no ProxyJump or ProxyCommand for " + s.host};
    // "a,b,c": through a and b to c, which opens the channel to the host.
    const auto last_comma = s.proxy_jump.rfind(',');
    const std::string last = last_comma == std::string::npos ? s.proxy_jump : s.proxy_jump.substr(last_comma + 1);
    std::vector<std::string> argv{"ssh"};
    if (!s.config_file.empty()) argv.insert(argv.end(), {"-F", s.config_file});
    argv.insert(argv.end(), {"-o", "BatchMode=yes"});
    if (last_comma != std::string::npos) argv.insert(argv.end(), {"-J", s.proxy_jump.substr(0, last_comma)});
    const std::string target =
        (is_ipv6(s.hostname) ? "[" + s.hostname + "]" : s.hostname) + ":" + std::to_string(s.port);
    if (last.empty() || last.front() == '-')
        return error{error_kind::invalid, "ProxyJump " + s.proxy_jump + " is not a host"};
    // The ssh:// form takes [user@]host[:port], as ProxyJump writes them.
    argv.insert(argv.end(), {"-W", target, "--", "ssh://" + last});
    return argv;
}

ports::result<std::unique_ptr<proxy_process>> proxy_process::start(const sshconfig::host_settings &s,
                                                                   common::unique_fd *session_end) {
    auto argv = argv_for(s);
    if (!argv) return argv.err();
    const std::string description =
        s.proxy_command.empty() ? "ProxyJump " + s.proxy_jump : "ProxyCommand " + s.proxy_command;
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
        return error{error_kind::io, description + ": socketpair: " + std::strerror(errno)};
    common::unique_fd ours(pair[0]), theirs(pair[1]);
    int err_pipe[2];
    if (::pipe2(err_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return error{error_kind::io, description + ": pipe: " + std::strerror(errno)};
    common::unique_fd err_read(err_pipe[0]), err_write(err_pipe[1]);
    // The child's end of the error pipe must block for it, as a terminal would.
    ::fcntl(err_write.get(), F_SETFL, ::fcntl(err_write.get(), F_GETFL) & ~O_NONBLOCK);

    std::vector<char *> c_argv;
    for (auto &a : *argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, theirs.get(), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, theirs.get(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err_write.get(), STDERR_FILENO);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    sigset_t defaults;
    sigfillset(&defaults);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, c_argv[0], &actions, &attr, c_argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) return error{error_kind::io, description + ": cannot start " + (*argv)[0] + ": " + std::strerror(rc)};
    ::fcntl(ours.get(), F_SETFL, ::fcntl(ours.get(), F_GETFL) | O_NONBLOCK);
    *session_end = std::move(ours);
    return std::unique_ptr<proxy_process>(new proxy_process(pid, std::move(err_read), description));
}

std::string proxy_process::stderr_text() {
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(err_.get(), buf, sizeof buf);
        if (n <= 0) break;
        if (collected_.size() < 8192) collected_.append(buf, static_cast<std::size_t>(n));
    }
    std::string line;
    for (const char c : collected_) line += (c == '\n' || c == '\r') ? ' ' : c;
    while (!line.empty() && line.back() == ' ') line.pop_back();
    return line;
}

proxy_process::~proxy_process() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {}
}

}  // namespace oneds::adapters::sftp::internal
