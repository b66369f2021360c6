#include "adapters/sftp/internal/proxy.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <system_error>

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
    common::child_spec spec;
    spec.argv = std::move(*argv);
    spec.in = common::child_stream::use(theirs.get());
    spec.out = common::child_stream::use(theirs.get());
    spec.err = common::child_stream::pipe();  // blocking for the child, as a terminal would be
    spec.group = common::child_group::new_session;
    // SIGTERM when the session goes, SIGKILL if it has not gone within a second.
    spec.stop_grace = std::chrono::seconds(1);
    common::child child;
    try {
        child = common::spawn(spec);
    } catch (const std::exception &e) {
        return error{error_kind::io, description + ": " + e.what()};
    }
    common::unique_fd err_read = std::move(child.stderr_pipe());
    ::fcntl(ours.get(), F_SETFL, ::fcntl(ours.get(), F_GETFL) | O_NONBLOCK);
    try {
        auto proxy =
            std::unique_ptr<proxy_process>(new proxy_process(std::move(child), std::move(err_read), description));
        *session_end = std::move(ours);
        return proxy;
    } catch (const std::exception &e) {
        return error{error_kind::io, description + ": " + e.what()};
    }
}

proxy_process::proxy_process(common::child child, common::unique_fd err, std::string description)
    : child_(std::move(child)), err_(std::move(err)), description_(std::move(description)) {
    int wake[2];
    if (::pipe2(wake, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    wake_read_ = common::unique_fd(wake[0]);
    wake_write_ = common::unique_fd(wake[1]);
    reader_ = std::thread([this] { drain(); });
}

proxy_process::~proxy_process() {
    // The proxy goes first (its stderr then ends); the reader is woken too,
    // in case a process the proxy started still holds the pipe open.
    child_ = common::child();
    const char byte = 0;
    (void)!::write(wake_write_.get(), &byte, 1);
    if (reader_.joinable()) reader_.join();
}

void proxy_process::drain() {
    char buf[4096];
    for (;;) {
        pollfd fds[2] = {{err_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
        if (fds[1].revents != 0) break;
        if (fds[0].revents == 0) continue;
        const ssize_t n = ::read(err_.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        const std::lock_guard lock(mutex_);
        if (collected_.size() < 8192)
            collected_.append(buf, std::min(static_cast<std::size_t>(n), 8192 - collected_.size()));
    }
    const std::lock_guard lock(mutex_);
    eof_ = true;
    ended_.notify_all();
}

std::string proxy_process::stderr_text() const {
    std::string line;
    {
        std::unique_lock lock(mutex_);
        ended_.wait_for(lock, std::chrono::milliseconds(500), [this] { return eof_; });
        for (const char c : collected_) line += (c == '\n' || c == '\r') ? ' ' : c;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    return line;
}

}  // namespace oneds::adapters::sftp::internal
