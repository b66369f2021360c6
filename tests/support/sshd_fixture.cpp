#include "tests/support/sshd_fixture.hpp"

#include "common/child.hpp"
#include "common/proc.hpp"
#include "common/unique_fd.hpp"
#include "tests/support/files.hpp"
#include "tests/support/ports.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

namespace oneds::test {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

[[noreturn]] void throw_errno(int error, const std::string &what) {
    throw std::system_error(error, std::generic_category(), what);
}

using oneds::common::unique_fd;

void set_nonblocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) throw_errno(errno, "fcntl O_NONBLOCK");
}

// argv with the given standard streams, as every child of the fixture starts:
// default signal dispositions, none of the test process's other descriptors
// (sockets, pipes of other children), and SIGTERM when the thread that started
// it ends, so that a crashed or killed test leaves no child (sshd above all)
// running. Its handle sends SIGTERM and gives it 3 s before SIGKILL. Throws
// std::system_error when it cannot be started.
oneds::common::child spawn(const std::vector<std::string> &argv, oneds::common::child_stream in,
                           oneds::common::child_stream out, oneds::common::child_stream err) {
    oneds::common::child_spec spec;
    spec.argv = argv;
    spec.in = std::move(in);
    spec.out = std::move(out);
    spec.err = std::move(err);
    spec.parent_death_signal = SIGTERM;
    spec.stop_grace = 3s;
    return oneds::common::spawn(spec);
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
    using oneds::common::child_stream;
    auto child = spawn(argv, child_stream::pipe(), child_stream::pipe(), child_stream::pipe());
    unique_fd to_stdin = std::move(child.stdin_pipe());
    unique_fd from_stdout = std::move(child.stdout_pipe());
    unique_fd from_stderr = std::move(child.stderr_pipe());
    set_nonblocking(to_stdin.get());
    set_nonblocking(from_stdout.get());
    set_nonblocking(from_stderr.get());
    if (input.empty()) to_stdin.reset();

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
    while (to_stdin || from_stdout || from_stderr) {
        std::array<pollfd, 3> polled{pollfd{to_stdin.get(), POLLOUT, 0}, pollfd{from_stdout.get(), POLLIN, 0},
                                     pollfd{from_stderr.get(), POLLIN, 0}};
        if (::poll(polled.data(), polled.size(), -1) < 0) {
            if (errno == EINTR) continue;
            throw_errno(errno, "poll");
        }
        if (polled[0].revents != 0) {
            const std::string_view rest = std::string_view(input).substr(written);
            const ssize_t n = ::write(to_stdin.get(), rest.data(), rest.size());
            if (n > 0) {
                written += static_cast<std::size_t>(n);
                if (written == input.size()) to_stdin.reset();
            } else if (n < 0 && errno == EPIPE) {
                // The child stopped reading; what it did with less input is its business.
                guard.raised();
                to_stdin.reset();
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                throw_errno(errno, "writing to " + argv.front());
            }
        }
        drain(polled[1], from_stdout, out);
        drain(polled[2], from_stderr, err);
    }
    return child.wait().shell_code();
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
    std::optional<oneds::common::child> sshd;

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
        const unique_fd log(::open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
        if (!log) throw_errno(errno, "open " + log_file.string());
        using oneds::common::child_stream;
        sshd.emplace(spawn({"/usr/sbin/sshd", "-D", "-e", "-f", sshd_config.string()}, child_stream::null(),
                           child_stream::use(log.get()), child_stream::use(log.get())));

        for (;;) {
            if (const auto status = sshd->try_wait()) {
                const std::string text = read_file(log_file);
                if (failed_to_bind(text)) return start_result::port_taken;
                throw std::runtime_error("sshd_fixture: sshd exited with " + std::to_string(status->shell_code()) +
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

void sshd_fixture::kill_server() noexcept {
    auto &s = *state_;
    if (!s.sshd || s.sshd->reaped()) return;
    // The per-connection sshd processes, found before the listener dies (then
    // they are no longer its descendants). Only sshd itself: what a session
    // runs belongs to the user, and a crash of sshd does not kill it.
    std::vector<pid_t> sessions;
    for (const pid_t pid : oneds::common::descendant_pids(s.sshd->pid())) {
        const auto argv = oneds::common::process_arguments(pid);
        if (!argv.empty() && argv.front().starts_with("sshd")) sessions.push_back(pid);
    }
    s.sshd->kill();
    for (const pid_t pid : sessions) ::kill(pid, SIGKILL);
}

void sshd_fixture::restart() {
    auto &s = *state_;
    kill_server();
    s.sshd.reset();
    if (s.start_once(clock_type::now() + 10s) != state::start_result::ready)
        throw std::runtime_error("sshd_fixture: port " + std::to_string(s.port) + " was taken while sshd was down");
}

}  // namespace oneds::test
