#include "tests/support/sshd_fixture.hpp"

#include <oneds_common/unique_fd.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

extern char **environ;  // NOLINT: POSIX declares it nowhere else

namespace oneds::test {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

[[noreturn]] void throw_errno(int error, const std::string &what) {
    throw std::system_error(error, std::generic_category(), what);
}

using oneds::common::unique_fd;

// Descriptors handed to a child must not be 0, 1 or 2 already: dup2 onto the
// same number would keep FD_CLOEXEC and the child would lose that stream. That
// happens when the test process runs with a standard stream closed.
unique_fd above_stdio(int fd, const char *what) {
    if (fd < 0) throw_errno(errno, what);
    unique_fd owned(fd);
    if (fd > STDERR_FILENO) return owned;
    const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    if (moved < 0) throw_errno(errno, what);
    return unique_fd(moved);
}

struct pipe_ends {
    unique_fd read;
    unique_fd write;
};

pipe_ends make_pipe() {
    std::array<int, 2> fds{};
    if (::pipe2(fds.data(), O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
    unique_fd r(fds[0]);
    unique_fd w(fds[1]);
    return {above_stdio(::fcntl(r.get(), F_DUPFD_CLOEXEC, 0), "pipe"),
            above_stdio(::fcntl(w.get(), F_DUPFD_CLOEXEC, 0), "pipe")};
}

unique_fd open_file(const fs::path &path, int flags, mode_t mode = 0600) {
    return above_stdio(::open(path.c_str(), flags | O_CLOEXEC, mode), ("open " + path.string()).c_str());
}

void set_nonblocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) throw_errno(errno, "fcntl O_NONBLOCK");
}

// execvp searches PATH after fork, where only async-signal-safe calls are
// allowed; resolve the program before forking instead.
std::string resolve_program(const std::string &name) {
    if (name.empty()) throw std::invalid_argument("run_argv: empty program name");
    if (name.find('/') != std::string::npos) return name;
    const char *path_env = std::getenv("PATH");
    std::string path = path_env != nullptr && *path_env != '\0' ? path_env : "/usr/local/bin:/usr/bin:/bin";
    std::istringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
        const fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
        std::error_code ec;
        if (fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
    throw_errno(ENOENT, "cannot find " + name + " in PATH");
}

int decode_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

// Owns a child process: whoever holds it last reaps it, killing it first if it
// is still running, so no test leaves a zombie or a stray server behind.
class child_process {
public:
    explicit child_process(pid_t pid) noexcept : pid_(pid) {}
    ~child_process() { stop(3s); }
    child_process(const child_process &) = delete;
    child_process &operator=(const child_process &) = delete;
    child_process(child_process &&) = delete;
    child_process &operator=(child_process &&) = delete;

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    // The exit status once the child has ended (reaping it), nullopt before.
    std::optional<int> try_wait() {
        if (status_) return status_;
        int status = 0;
        pid_t r = 0;
        do {
            r = ::waitpid(pid_, &status, WNOHANG);
        } while (r < 0 && errno == EINTR);
        if (r < 0) throw_errno(errno, "waitpid");
        if (r == 0) return std::nullopt;
        status_ = decode_status(status);
        return status_;
    }

    int wait() {
        if (status_) return *status_;
        int status = 0;
        pid_t r = 0;
        do {
            r = ::waitpid(pid_, &status, 0);
        } while (r < 0 && errno == EINTR);
        if (r < 0) throw_errno(errno, "waitpid");
        status_ = decode_status(status);
        return *status_;
    }

    // SIGTERM, up to grace for a clean exit, then SIGKILL.
    void stop(std::chrono::milliseconds grace) noexcept {
        try {
            if (status_) return;
            ::kill(pid_, SIGTERM);
            const auto deadline = clock_type::now() + grace;
            while (!try_wait()) {
                if (clock_type::now() >= deadline) {
                    ::kill(pid_, SIGKILL);
                    wait();
                    return;
                }
                std::this_thread::sleep_for(10ms);
            }
        } catch (...) {
            // waitpid only fails when the child is not ours any more
            // (ECHILD): nothing is left to stop.
        }
    }

private:
    pid_t pid_;
    std::optional<int> status_;
};

// What a child gets as stdin, stdout and stderr; none may be 0, 1 or 2.
struct child_streams {
    int in;
    int out;
    int err;
};

[[noreturn]] void report_errno_and_exit(int report) noexcept {
    const int error = errno;
    [[maybe_unused]] const auto n = ::write(report, &error, sizeof error);
    ::_exit(127);
}

// Runs in the child between fork and exec: only async-signal-safe calls, no
// allocation. Any failure is reported as an errno through `report`.
[[noreturn]] void exec_child(const char *program, char *const *argv, const child_streams &streams, int report,
                             pid_t parent, int max_fd) noexcept {
    // Handlers of the test framework must not run in the child; reset them while
    // every signal is still blocked (as the parent left them), then unblock.
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &default_action, nullptr);
    // A crashed or killed test must not leave its children (sshd above all) running.
    if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) report_errno_and_exit(report);
    if (::getppid() != parent) ::_exit(127);
    if (::dup2(streams.in, STDIN_FILENO) < 0 || ::dup2(streams.out, STDOUT_FILENO) < 0 ||
        ::dup2(streams.err, STDERR_FILENO) < 0)
        report_errno_and_exit(report);
    // The child gets the three streams and nothing else of the test process
    // (sockets, pipes of other children). FD_CLOEXEC rather than close keeps
    // `report` open until the exec succeeds.
    if (::close_range(STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        for (int fd = STDERR_FILENO + 1; fd < max_fd; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(program, argv, environ);
    report_errno_and_exit(report);
}

// Starts argv with the given standard streams and returns its pid once the
// exec has succeeded; throws std::system_error when it has not.
pid_t spawn(const std::vector<std::string> &argv, const child_streams &streams) {
    if (argv.empty()) throw std::invalid_argument("run_argv: empty argv");
    const std::string program = resolve_program(argv.front());
    std::vector<char *> c_argv;
    c_argv.reserve(argv.size() + 1);
    for (const auto &arg : argv)
        c_argv.push_back(const_cast<char *>(arg.c_str()));  // NOLINT: execve's signature predates const
    c_argv.push_back(nullptr);

    rlimit files{};
    int max_fd = 1024;
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY)
        max_fd = static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1 << 20));

    auto report = make_pipe();
    const pid_t parent = ::getpid();

    // Block every signal across fork so that no handler runs in the child
    // before exec_child has reset it.
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    const pid_t pid = ::fork();
    if (pid == 0) exec_child(program.c_str(), c_argv.data(), streams, report.write.get(), parent, max_fd);
    const int fork_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) throw_errno(fork_errno, "fork");

    report.write.reset();
    int child_errno = 0;
    ssize_t n = 0;
    do {
        n = ::read(report.read.get(), &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    if (n == 0) return pid;
    child_process failed(pid);
    failed.wait();
    throw_errno(n == sizeof child_errno ? child_errno : EIO, "cannot run " + program);
}

// SIGPIPE is process-directed only in name: a write to a closed pipe raises it
// in the writing thread. Blocking it here turns it into EPIPE; one we raised is
// swallowed so it does not fire once the mask is restored.
class sigpipe_guard {
public:
    sigpipe_guard() {
        sigemptyset(&pipe_set_);
        sigaddset(&pipe_set_, SIGPIPE);
        ::pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
    ~sigpipe_guard() {
        if (raised_ && !was_pending_) {
            const timespec no_wait{};
            while (::sigtimedwait(&pipe_set_, nullptr, &no_wait) < 0 && errno == EINTR) {}
        }
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    sigpipe_guard(const sigpipe_guard &) = delete;
    sigpipe_guard &operator=(const sigpipe_guard &) = delete;
    sigpipe_guard(sigpipe_guard &&) = delete;
    sigpipe_guard &operator=(sigpipe_guard &&) = delete;

    void raised() noexcept { raised_ = true; }

private:
    sigset_t pipe_set_{};
    sigset_t old_{};
    bool was_pending_ = false;
    bool raised_ = false;
};

// A private directory removed with everything in it when the owner goes.
class scoped_temp_dir {
public:
    explicit scoped_temp_dir(const std::string &prefix) {
        const char *tmp_env = std::getenv("TMPDIR");
        const fs::path base = fs::absolute(tmp_env != nullptr && *tmp_env != '\0' ? tmp_env : "/tmp");
        std::string pattern = (base / (prefix + "XXXXXX")).string();
        if (::mkdtemp(pattern.data()) == nullptr) throw_errno(errno, "mkdtemp " + pattern);
        path_ = pattern;
    }
    ~scoped_temp_dir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    scoped_temp_dir(const scoped_temp_dir &) = delete;
    scoped_temp_dir &operator=(const scoped_temp_dir &) = delete;
    scoped_temp_dir(scoped_temp_dir &&) = delete;
    scoped_temp_dir &operator=(scoped_temp_dir &&) = delete;

    [[nodiscard]] const fs::path &path() const noexcept { return path_; }

private:
    fs::path path_;
};

std::string read_file(const fs::path &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_file(const fs::path &path, const std::string &text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string current_user() {
    std::array<char, 4096> buffer{};
    passwd entry{};
    passwd *found = nullptr;
    const int error = ::getpwuid_r(::geteuid(), &entry, buffer.data(), buffer.size(), &found);
    if (found == nullptr)
        throw std::runtime_error("sshd_fixture: the current user (uid " + std::to_string(::geteuid()) +
                                 ") has no passwd entry, so sshd cannot log it in" +
                                 (error != 0 ? ": " + std::generic_category().message(error) : ""));
    return entry.pw_name;
}

// Paths go into sshd_config and ssh_config in double quotes. Both expand '%'
// tokens in some keywords and neither has an escape for '"', so such paths are
// refused rather than silently mangled.
std::string config_path(const fs::path &path) {
    const std::string text = path.string();
    if (text.find_first_of("\"%\\\n") != std::string::npos)
        throw std::runtime_error("sshd_fixture: unusable characters in path " + text + " (set TMPDIR elsewhere)");
    return '"' + text + '"';
}

// "type base64" without the comment ssh-keygen appends: the comment names
// nothing useful in authorized_keys or known_hosts.
std::string public_key_line(const fs::path &pub_file) {
    std::istringstream in(read_file(pub_file));
    std::string type;
    std::string blob;
    in >> type >> blob;
    if (type.empty() || blob.empty()) throw std::runtime_error("sshd_fixture: no key in " + pub_file.string());
    return type + ' ' + blob;
}

void generate_key(const fs::path &file, const std::string &comment) {
    std::string out;
    std::string err;
    const int status =
        run_argv({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file.string()}, &out, &err);
    if (status != 0)
        throw std::runtime_error("sshd_fixture: ssh-keygen for " + file.string() + " exited with " +
                                 std::to_string(status) + ": " + err);
}

unsigned short pick_free_port() {
    const unique_fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) throw_errno(errno, "socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(sock.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0 ||
        ::getsockname(sock.get(), reinterpret_cast<sockaddr *>(&addr), &len) != 0)
        throw_errno(errno, "binding a probe socket to 127.0.0.1:0");
    return ntohs(addr.sin_port);
}

int wait_ms_until(clock_type::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    return static_cast<int>(std::max<std::chrono::milliseconds::rep>(left.count(), 0));
}

// True when 127.0.0.1:port accepts a connection and sends an SSH-2.0 banner
// before the deadline.
bool ssh_banner_answers(unsigned short port, clock_type::time_point deadline) {
    const unique_fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!sock) throw_errno(errno, "socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(sock.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0) {
        if (errno != EINPROGRESS) return false;
        pollfd pfd{sock.get(), POLLOUT, 0};
        if (::poll(&pfd, 1, wait_ms_until(deadline)) <= 0) return false;
        int error = 0;
        socklen_t len = sizeof error;
        if (::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) return false;
    }
    std::string banner;
    while (banner.find('\n') == std::string::npos && banner.size() < 256) {
        pollfd pfd{sock.get(), POLLIN, 0};
        if (::poll(&pfd, 1, wait_ms_until(deadline)) <= 0) return false;
        std::array<char, 256> buf{};
        const ssize_t n = ::read(sock.get(), buf.data(), buf.size());
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) return false;
        banner.append(buf.data(), static_cast<std::size_t>(n));
    }
    return banner.starts_with("SSH-2.0-");
}

std::optional<pid_t> read_pid_file(const fs::path &path) {
    std::istringstream in(read_file(path));
    long pid = 0;
    if (in >> pid && pid > 0) return static_cast<pid_t>(pid);
    return std::nullopt;
}

bool failed_to_bind(const std::string &log) {
    return log.find("Cannot bind any address") != std::string::npos ||
           log.find("Address already in use") != std::string::npos;
}

// sshd re-executes itself by absolute path and refuses to start without its
// privilege-separation directory, which a fresh container does not have.
void ensure_privsep_dir() {
    const fs::path dir = "/run/sshd";
    std::error_code ec;
    if (fs::is_directory(dir, ec)) return;
    if (fs::create_directories(dir, ec)) ::chmod(dir.c_str(), 0755);
    // Without permission to create it (not root) sshd's own error says what is
    // missing, and it ends up in the exception.
}

}  // namespace

int run_argv(const std::vector<std::string> &argv, std::string *out, std::string *err, const std::string &input) {
    auto in_pipe = make_pipe();
    auto out_pipe = make_pipe();
    auto err_pipe = make_pipe();
    child_process child(spawn(argv, {in_pipe.read.get(), out_pipe.write.get(), err_pipe.write.get()}));
    in_pipe.read.reset();
    out_pipe.write.reset();
    err_pipe.write.reset();

    set_nonblocking(in_pipe.write.get());
    set_nonblocking(out_pipe.read.get());
    set_nonblocking(err_pipe.read.get());
    if (input.empty()) in_pipe.write.reset();

    sigpipe_guard guard;
    std::size_t written = 0;
    if (out != nullptr) out->clear();
    if (err != nullptr) err->clear();
    // Appends what is there to *text (when wanted); closes fd at end of file.
    const auto drain = [&argv](const pollfd &polled, unique_fd &fd, std::string *text) {
        if (polled.revents == 0) return;
        std::array<char, 16384> buf{};
        const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n > 0) {
            if (text != nullptr) text->append(buf.data(), static_cast<std::size_t>(n));
        } else if (n == 0) {
            fd.reset();
        } else if (errno != EAGAIN && errno != EINTR) {
            throw_errno(errno, "reading from " + argv.front());
        }
    };

    // Reading both outputs while writing the input: a child that fills one pipe
    // while we block on another would otherwise never finish.
    while (in_pipe.write || out_pipe.read || err_pipe.read) {
        std::array<pollfd, 3> polled{pollfd{in_pipe.write.get(), POLLOUT, 0}, pollfd{out_pipe.read.get(), POLLIN, 0},
                                     pollfd{err_pipe.read.get(), POLLIN, 0}};
        if (::poll(polled.data(), polled.size(), -1) < 0) {
            if (errno == EINTR) continue;
            throw_errno(errno, "poll");
        }
        const auto &[to_stdin, from_stdout, from_stderr] = polled;
        if (to_stdin.revents != 0) {
            const std::string_view rest = std::string_view(input).substr(written);
            const ssize_t n = ::write(in_pipe.write.get(), rest.data(), rest.size());
            if (n > 0) {
                written += static_cast<std::size_t>(n);
                if (written == input.size()) in_pipe.write.reset();
            } else if (n < 0 && errno == EPIPE) {
                // The child stopped reading; what it did with less input is its business.
                guard.raised();
                in_pipe.write.reset();
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                throw_errno(errno, "writing to " + argv.front());
            }
        }
        drain(from_stdout, out_pipe.read, out);
        drain(from_stderr, err_pipe.read, err);
    }
    return child.wait();
}

struct sshd_fixture::state {
    // Declared first so that it is destroyed last, after sshd has stopped.
    scoped_temp_dir dir{"oneds-sshd-"};
    std::string host = "127.0.0.1";
    std::string user;
    std::string alias;
    std::vector<std::string> extra_sshd_config;
    unsigned short port = 0;
    fs::path host_key;
    fs::path identity;
    fs::path public_key;
    fs::path authorized_keys;
    fs::path known_hosts;
    fs::path ssh_config;
    fs::path sshd_config;
    fs::path pid_file;
    fs::path log_file;
    std::optional<child_process> sshd;

    [[nodiscard]] std::vector<std::string> aliases() const {
        std::vector<std::string> all{alias};
        if (alias != "hypervisor") all.emplace_back("hypervisor");
        return all;
    }

    void write_configs() {
        std::ostringstream server;
        server << "# sshd for one test run (oneds::test::sshd_fixture); removed with its directory.\n";
        for (const auto &line : extra_sshd_config) server << line << '\n';
        // Port must come before ListenAddress, or sshd refuses the file.
        server << "Port " << port << '\n'
               << "ListenAddress " << host << '\n'
               << "HostKey " << config_path(host_key) << '\n'
               << "PidFile " << config_path(pid_file) << '\n'
               << "AuthorizedKeysFile " << config_path(authorized_keys) << '\n'
               << "AllowUsers " << user << '\n'
               << "PubkeyAuthentication yes\n"
               << "PasswordAuthentication no\n"
               << "KbdInteractiveAuthentication no\n"
               << "UsePAM no\n"
               // The temporary directory is not laid out like a home directory.
               << "StrictModes no\n"
               << "PermitRootLogin prohibit-password\n"
               << "Subsystem sftp internal-sftp\n"
               << "LogLevel ERROR\n"
               // Tests open many connections and channels at once.
               << "MaxStartups 100:30:200\n"
               << "MaxSessions 100\n"
               << "UseDNS no\n"
               << "PrintMotd no\n"
               << "PrintLastLog no\n"
               << "X11Forwarding no\n";
        write_file(sshd_config, server.str());

        const std::string key = public_key_line(fs::path(host_key.string() + ".pub"));
        std::ostringstream hosts;
        hosts << '[' << host << "]:" << port << ' ' << key << '\n';
        // "[alias]:port" is what libssh2 and ssh look up for the alias itself; the
        // bare alias serves ssh -o HostKeyAlias=<alias>.
        for (const auto &name : aliases())
            hosts << '[' << name << "]:" << port << ' ' << key << '\n' << name << ' ' << key << '\n';
        write_file(known_hosts, hosts.str());

        std::ostringstream client;
        client << "# Client side of oneds::test::sshd_fixture on port " << port << ".\n";
        for (const auto &name : aliases()) {
            client << "Host " << name << '\n'
                   << "    HostName " << host << '\n'
                   << "    Port " << port << '\n'
                   << "    User " << user << '\n'
                   << "    IdentityFile " << config_path(identity) << '\n'
                   << "    IdentitiesOnly yes\n"
                   << "    UserKnownHostsFile " << config_path(known_hosts) << '\n'
                   << "    GlobalKnownHostsFile /dev/null\n"
                   << "    StrictHostKeyChecking yes\n"
                   << "    UpdateHostKeys no\n"
                   << "    CheckHostIP no\n"
                   << "    PasswordAuthentication no\n"
                   << "    KbdInteractiveAuthentication no\n"
                   << "    BatchMode yes\n"
                   << "    ControlMaster no\n"
                   << "    ControlPath none\n"
                   << "    ConnectTimeout 10\n"
                   << "    LogLevel ERROR\n";
        }
        write_file(ssh_config, client.str());
    }

    enum class start_result { ready, port_taken };

    start_result start_once(clock_type::time_point deadline) {
        std::error_code ignored;
        fs::remove(pid_file, ignored);
        const auto null_in = open_file("/dev/null", O_RDONLY);
        const auto log = open_file(log_file, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
        sshd.emplace(
            spawn({"/usr/sbin/sshd", "-D", "-e", "-f", sshd_config.string()}, {null_in.get(), log.get(), log.get()}));

        for (;;) {
            if (const auto status = sshd->try_wait()) {
                const std::string text = read_file(log_file);
                if (failed_to_bind(text)) return start_result::port_taken;
                throw std::runtime_error("sshd_fixture: sshd exited with " + std::to_string(*status) +
                                         " before serving port " + std::to_string(port) + "; its log:\n" + text);
            }
            // sshd writes its pid file only after binding, so a banner seen once
            // the file names our child comes from our server, not from whoever
            // else might hold the port.
            if (read_pid_file(pid_file) == sshd->pid() &&
                ssh_banner_answers(port, std::min(deadline, clock_type::now() + 1s)))
                return start_result::ready;
            if (clock_type::now() >= deadline) {
                sshd.reset();
                throw std::runtime_error("sshd_fixture: sshd did not answer on 127.0.0.1:" + std::to_string(port) +
                                         " within 10 s; its log:\n" + read_file(log_file));
            }
            std::this_thread::sleep_for(20ms);
        }
    }

    void start() {
        ensure_privsep_dir();
        constexpr int attempts = 5;
        const auto deadline = clock_type::now() + 10s;
        for (int attempt = 1; attempt <= attempts; ++attempt) {
            port = pick_free_port();
            write_configs();
            if (start_once(deadline) == start_result::ready) return;
            sshd.reset();
        }
        throw std::runtime_error("sshd_fixture: sshd could not bind a free port in " + std::to_string(attempts) +
                                 " attempts; last log:\n" + read_file(log_file));
    }
};

sshd_fixture::sshd_fixture(sshd_options options) : state_(std::make_unique<state>()) {
    auto &s = *state_;
    s.alias = std::move(options.alias);
    s.extra_sshd_config = std::move(options.extra_sshd_config);
    if (s.alias.empty() || s.alias.find_first_of(" \t\n*?!\"%") != std::string::npos)
        throw std::invalid_argument("sshd_fixture: unusable Host alias '" + s.alias + "'");
    s.user = current_user();

    const fs::path &dir = s.dir.path();
    s.host_key = dir / "ssh_host_ed25519_key";
    s.identity = dir / "id_ed25519";
    s.public_key = dir / "id_ed25519.pub";
    s.authorized_keys = dir / "authorized_keys";
    s.known_hosts = dir / "known_hosts";
    s.ssh_config = dir / "ssh_config";
    s.sshd_config = dir / "sshd_config";
    s.pid_file = dir / "sshd.pid";
    s.log_file = dir / "sshd.log";

    generate_key(s.host_key, "oneds-test-host");
    generate_key(s.identity, "oneds-test-user");
    write_file(s.authorized_keys, public_key_line(s.public_key) + '\n');
    s.start();
}

sshd_fixture::~sshd_fixture() = default;

unsigned short sshd_fixture::port() const noexcept { return state_->port; }
const std::string &sshd_fixture::host() const noexcept { return state_->host; }
const std::string &sshd_fixture::user() const noexcept { return state_->user; }
const std::filesystem::path &sshd_fixture::dir() const noexcept { return state_->dir.path(); }
const std::filesystem::path &sshd_fixture::identity_file() const noexcept { return state_->identity; }
const std::filesystem::path &sshd_fixture::public_key_file() const noexcept { return state_->public_key; }
const std::filesystem::path &sshd_fixture::known_hosts_file() const noexcept { return state_->known_hosts; }
const std::filesystem::path &sshd_fixture::ssh_config_file() const noexcept { return state_->ssh_config; }
const std::string &sshd_fixture::alias() const noexcept { return state_->alias; }
std::string sshd_fixture::log_text() const { return read_file(state_->log_file); }
pid_t sshd_fixture::sshd_pid() const noexcept { return state_->sshd->pid(); }

}  // namespace oneds::test
