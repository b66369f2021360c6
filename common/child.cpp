#include "common/child.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <set>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

extern char **environ;  // NOLINT: POSIX declares it nowhere else

// posix_spawn can close every other descriptor from glibc 2.34 on; without
// that the launcher forks.
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define ONEDS_SPAWN_CLOSEFROM 1
#else
#define ONEDS_SPAWN_CLOSEFROM 0
#endif

namespace oneds::common {
namespace {

constexpr int k_close = -2;  // a stdio source: close the descriptor in the child

std::string quoted(const std::string &program) { return "'" + program + "'"; }

[[noreturn]] void fail(int error, const std::string &program, const std::string &step) {
    throw spawn_error(error, "cannot run " + quoted(program) + ": " + (step.empty() ? "" : step + ": ") +
                                 std::generic_category().message(error));
}

void check_no_nul(std::string_view text, const std::string &what) {
    if (text.find('\0') != std::string_view::npos) throw std::invalid_argument(what + " contains a NUL byte");
}

void validate(const child_spec &spec) {
    if (spec.argv.empty()) throw std::invalid_argument("cannot run a command with an empty argv");
    for (std::size_t i = 0; i < spec.argv.size(); ++i)
        check_no_nul(spec.argv[i], "argument " + std::to_string(i) + " of " + quoted(spec.argv.front()));
    for (const auto &[name, value] : spec.env_set) {
        if (name.empty() || name.find('=') != std::string::npos)
            throw std::invalid_argument("environment variable name '" + name + "' is not valid");
        check_no_nul(name, "an environment variable name");
        check_no_nul(value, "the value of environment variable " + name);
    }
    if (spec.env_whole)
        for (const auto &entry : *spec.env_whole) check_no_nul(entry, "an environment entry");
}

// The child's environment as "NAME=value" strings (see the contract).
std::vector<std::string> environment(const child_spec &spec) {
    std::vector<std::string> out;
    std::set<std::string, std::less<>> seen;
    const auto take = [&](std::string_view entry) {
        const auto eq = entry.find('=');
        if (eq == std::string_view::npos || eq == 0) return;
        const std::string name(entry.substr(0, eq));
        if (spec.env_set.contains(name) ||
            std::find(spec.env_unset.begin(), spec.env_unset.end(), name) != spec.env_unset.end())
            return;
        if (seen.insert(name).second) out.emplace_back(entry);
    };
    if (spec.env_whole) {
        for (const auto &entry : *spec.env_whole) take(entry);
    } else {
        for (char **entry = environ; entry != nullptr && *entry != nullptr; ++entry) take(*entry);
    }
    for (const auto &[name, value] : spec.env_set) out.push_back(name + "=" + value);
    return out;
}

// argv[0] itself when it holds a '/', else the first executable regular file
// of that name in the child's PATH.
std::string find_program(const std::string &name, const std::vector<std::string> &env) {
    if (name.find('/') != std::string::npos) return name;
    std::string_view path = "/usr/local/bin:/usr/bin:/bin";
    for (const auto &entry : env)
        if (entry.starts_with("PATH=")) path = std::string_view(entry).substr(5);
    while (true) {
        const auto colon = path.find(':');
        const std::string_view dir = path.substr(0, colon);
        const std::string candidate = (dir.empty() ? std::string(".") : std::string(dir)) + "/" + name;
        struct stat st {};
        if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
            return candidate;
        if (colon == std::string_view::npos) break;
        path.remove_prefix(colon + 1);
    }
    throw spawn_error(ENOENT, "cannot run " + quoted(name) + ": not found in PATH");
}

std::vector<char *> c_strings(const std::vector<std::string> &strings) {
    std::vector<char *> out;
    out.reserve(strings.size() + 1);
    // NOLINTNEXTLINE: exec's signature predates const; nothing writes to them.
    for (const auto &s : strings) out.push_back(const_cast<char *>(s.c_str()));
    out.push_back(nullptr);
    return out;
}

// fd itself when it is above 2, else a close-on-exec copy above 2: a source
// for descriptor 0, 1 or 2 must not be one of them, or putting one in place
// would overwrite another (possible when this process runs with one closed).
unique_fd above_stdio(unique_fd fd, const std::string &program, const std::string &step) {
    if (!fd) fail(errno, program, step);
    if (fd.get() > STDERR_FILENO) return fd;
    unique_fd moved(::fcntl(fd.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1));
    if (!moved) fail(errno, program, step);
    return moved;
}

// Descriptors 0, 1 and 2 of the child, prepared in this process.
struct stdio_plan {
    std::array<int, 3> source{-1, -1, -1};  // put in place; -1 left as inherited; k_close closed
    std::array<unique_fd, 3> held;          // opened for the child, closed once it has started
    std::array<unique_fd, 3> parent;        // this process's pipe ends
};

void prepare(const child_stream &s, int slot, stdio_plan &plan, const std::string &program) {
    using kind = child_stream::kind;
    switch (s.how) {
        case kind::inherit: return;
        case kind::closed: plan.source[slot] = k_close; return;
        case kind::null:
            plan.held[slot] = above_stdio(unique_fd(::open("/dev/null", (slot == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC)),
                                          program, "/dev/null");
            break;
        case kind::file:
            plan.held[slot] =
                above_stdio(unique_fd(::open(s.path.c_str(), s.flags | O_CLOEXEC, s.mode)), program, s.path);
            break;
        case kind::fd:
            if (s.fd < 0) throw std::invalid_argument("no descriptor given for descriptor " + std::to_string(slot));
            if (s.fd > STDERR_FILENO) {
                plan.source[slot] = s.fd;
                return;
            }
            plan.held[slot] = above_stdio(unique_fd(::fcntl(s.fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1)), program, "dup");
            break;
        case kind::pipe: {
            std::array<int, 2> ends{-1, -1};
            if (::pipe2(ends.data(), O_CLOEXEC) != 0) fail(errno, program, "pipe");
            unique_fd read_end(ends[0]);
            unique_fd write_end(ends[1]);
            const bool child_reads = slot == 0;
            plan.parent[slot] = std::move(child_reads ? write_end : read_end);
            plan.held[slot] = above_stdio(std::move(child_reads ? read_end : write_end), program, "pipe");
            break;
        }
    }
    plan.source[slot] = plan.held[slot].get();
}

struct launch {
    const std::string &program;  // the path to execute
    const std::string &name;     // argv[0], for messages
    char *const *argv;
    char *const *envp;
    const stdio_plan &stdio;
    const child_spec &spec;
};

#if ONEDS_SPAWN_CLOSEFROM
class spawn_actions {
public:
    spawn_actions() { ::posix_spawn_file_actions_init(&actions_); }
    ~spawn_actions() { ::posix_spawn_file_actions_destroy(&actions_); }
    spawn_actions(const spawn_actions &) = delete;
    spawn_actions &operator=(const spawn_actions &) = delete;
    posix_spawn_file_actions_t *get() { return &actions_; }

private:
    posix_spawn_file_actions_t actions_{};
};

class spawn_attributes {
public:
    spawn_attributes() { ::posix_spawnattr_init(&attr_); }
    ~spawn_attributes() { ::posix_spawnattr_destroy(&attr_); }
    spawn_attributes(const spawn_attributes &) = delete;
    spawn_attributes &operator=(const spawn_attributes &) = delete;
    posix_spawnattr_t *get() { return &attr_; }

private:
    posix_spawnattr_t attr_{};
};

// glibc keeps the first real-time signals for itself; sigfillset and
// sigaddset leave them out, and posix_spawn sets those outside the default set
// to SIG_IGN in the child, where exec keeps them ignored. Their bits are set
// directly so that the child gets them at the default, as after fork and exec.
void add_libc_signals(sigset_t &set) {
    constexpr std::size_t word_bits = 8 * sizeof set.__val[0];
    for (int sig = __SIGRTMIN; sig < SIGRTMIN; ++sig) {
        const auto bit = static_cast<std::size_t>(sig - 1);
        set.__val[bit / word_bits] |= 1UL << (bit % word_bits);
    }
}

pid_t spawn_posix(const launch &l) {
    spawn_actions actions;
    int rc = 0;
    for (int slot = 0; slot < 3 && rc == 0; ++slot) {
        const int source = l.stdio.source[static_cast<std::size_t>(slot)];
        if (source == k_close)
            rc = ::posix_spawn_file_actions_addclose(actions.get(), slot);
        else if (source >= 0)
            rc = ::posix_spawn_file_actions_adddup2(actions.get(), source, slot);
    }
    if (rc == 0) rc = ::posix_spawn_file_actions_addclosefrom_np(actions.get(), STDERR_FILENO + 1);
    if (rc != 0) fail(rc, l.name, "posix_spawn_file_actions");

    spawn_attributes attr;
    short flags = POSIX_SPAWN_SETSIGDEF;
    sigset_t defaults;
    ::sigemptyset(&defaults);
    if (l.spec.reset_signals) {
        ::sigfillset(&defaults);
        sigset_t none;
        ::sigemptyset(&none);
        ::posix_spawnattr_setsigmask(attr.get(), &none);
        flags |= POSIX_SPAWN_SETSIGMASK;
    }
    add_libc_signals(defaults);
    ::posix_spawnattr_setsigdefault(attr.get(), &defaults);
    if (l.spec.group == child_group::new_session) flags |= POSIX_SPAWN_SETSID;
    if (l.spec.group == child_group::new_group) {
        ::posix_spawnattr_setpgroup(attr.get(), 0);
        flags |= POSIX_SPAWN_SETPGROUP;
    }
    ::posix_spawnattr_setflags(attr.get(), flags);

    pid_t pid = -1;
    rc = ::posix_spawn(&pid, l.program.c_str(), actions.get(), attr.get(), l.argv, l.envp);
    if (rc != 0) fail(rc, l.name, "");
    return pid;
}
#endif

// ---- the fork path (parent_death_signal) ----------------------------------------

struct fork_plan {
    const launch *l;
    int report;  // the child writes its errno here when it cannot exec
    pid_t parent;
    sigset_t mask;  // the starting thread's, for a child that keeps it
    int max_fd;
};

[[noreturn]] void report_and_exit(int report) noexcept {
    const int error = errno;
    [[maybe_unused]] const auto n = ::write(report, &error, sizeof error);
    ::_exit(127);
}

// Between fork and exec: async-signal-safe calls only, no allocation. Every
// signal is still blocked (the parent blocked them across fork), so no handler
// of this process runs here before the dispositions are reset.
[[noreturn]] void exec_forked(const fork_plan &p) noexcept {
    const child_spec &spec = p.l->spec;
    if (::prctl(PR_SET_PDEATHSIG, spec.parent_death_signal) != 0) report_and_exit(p.report);
    if (::getppid() != p.parent) ::_exit(127);  // the parent went before the line above
    if (spec.group == child_group::new_session && ::setsid() < 0) report_and_exit(p.report);
    if (spec.group == child_group::new_group && ::setpgid(0, 0) != 0) report_and_exit(p.report);
    // Handlers become the default as exec would make them; with reset_signals
    // the ignored signals too.
    for (int sig = 1; sig < NSIG; ++sig) {
        struct sigaction now {};
        if (::sigaction(sig, nullptr, &now) != 0) continue;
        if (now.sa_handler == SIG_DFL || (now.sa_handler == SIG_IGN && !spec.reset_signals)) continue;
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        ::sigemptyset(&dfl.sa_mask);
        ::sigaction(sig, &dfl, nullptr);
    }
    for (int slot = 0; slot < 3; ++slot) {
        const int source = p.l->stdio.source[static_cast<std::size_t>(slot)];
        if (source == k_close)
            ::close(slot);
        else if (source >= 0 && ::dup2(source, slot) < 0)
            report_and_exit(p.report);
    }
    // Close-on-exec rather than closed: `report` must stay open until exec.
    // The system call itself, as glibc before 2.34 has no wrapper; 4 is
    // CLOSE_RANGE_CLOEXEC (Linux 5.11; older kernels take the loop).
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, STDERR_FILENO + 1, ~0U, 4U) != 0)
#endif
        for (int fd = STDERR_FILENO + 1; fd < p.max_fd; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, spec.reset_signals ? &none : &p.mask, nullptr);
    ::execve(p.l->program.c_str(), p.l->argv, p.l->envp);
    report_and_exit(p.report);
}

int descriptor_limit() {
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur == RLIM_INFINITY) return 1 << 20;
    return static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1 << 20));
}

pid_t spawn_forked(const launch &l) {
    std::array<int, 2> ends{-1, -1};
    if (::pipe2(ends.data(), O_CLOEXEC) != 0) fail(errno, l.name, "pipe");
    unique_fd report_read(ends[0]);
    unique_fd report_write = above_stdio(unique_fd(ends[1]), l.name, "pipe");

    fork_plan plan{&l, report_write.get(), ::getpid(), {}, descriptor_limit()};
    sigset_t all;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &plan.mask);
    const pid_t pid = ::fork();
    if (pid == 0) exec_forked(plan);
    const int fork_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &plan.mask, nullptr);
    if (pid < 0) fail(fork_errno, l.name, "fork");

    // The child's copy of the write end closes on exec: end of file is success.
    report_write.reset();
    int child_errno = 0;
    ssize_t n = 0;
    do {
        n = ::read(report_read.get(), &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    if (n == 0) return pid;
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {}
    fail(n == sizeof child_errno ? child_errno : EIO, l.name, "");
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
    (void)pid;
    return -1;
#endif
}

}  // namespace

// ---- exit_status, spawn_error ------------------------------------------------------

bool exit_status::exited() const noexcept { return !lost && WIFEXITED(raw); }
int exit_status::exit_code() const noexcept { return exited() ? WEXITSTATUS(raw) : -1; }
int exit_status::term_signal() const noexcept { return !lost && WIFSIGNALED(raw) ? WTERMSIG(raw) : 0; }
int exit_status::shell_code() const noexcept {
    if (exited()) return exit_code();
    if (term_signal() != 0) return 128 + term_signal();
    return -1;
}

bool spawn_error::not_found() const noexcept { return code().value() == ENOENT || code().value() == ENOTDIR; }

// ---- child -------------------------------------------------------------------------

child::~child() {
    if (pid_ > 0 && !status_) (void)stop(stop_grace_, stop_signal_);
}

child::child(child &&other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      status_(std::exchange(other.status_, std::nullopt)),
      reaped_flag_(other.reaped_flag_.load()),
      stop_signal_(other.stop_signal_),
      stop_grace_(other.stop_grace_) {
    for (std::size_t i = 0; i < 3; ++i) pipes_[i] = std::move(other.pipes_[i]);
}

child &child::operator=(child &&other) noexcept {
    if (this == &other) return *this;
    if (pid_ > 0 && !status_) (void)stop(stop_grace_, stop_signal_);
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    for (std::size_t i = 0; i < 3; ++i) pipes_[i] = std::move(other.pipes_[i]);
    status_ = std::exchange(other.status_, std::nullopt);
    reaped_flag_ = other.reaped_flag_.load();
    stop_signal_ = other.stop_signal_;
    stop_grace_ = other.stop_grace_;
    return *this;
}

bool child::signal(int sig) const noexcept {
    if (pid_ <= 0 || reaped_flag_.load()) return false;
#ifdef SYS_pidfd_send_signal
    if (pidfd_) return ::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0U) == 0;
#endif
    return ::kill(pid_, sig) == 0;
}

bool child::signal_group(int sig) const noexcept {
    // The child first: that fails once it is reaped, when its pid (and so the
    // group id) may belong to someone else.
    if (!signal(sig)) return false;
    return ::kill(-pid_, sig) == 0;
}

exit_status child::settle(exit_status s) noexcept {
    status_ = s;
    reaped_flag_ = true;
    return s;
}

std::optional<exit_status> child::try_wait() noexcept {
    if (status_) return status_;
    if (pid_ <= 0) return exit_status{.lost = true};
    int raw = 0;
    pid_t r = 0;
    do {
        r = ::waitpid(pid_, &raw, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return std::nullopt;
    return settle(r < 0 ? exit_status{.lost = true} : exit_status{.raw = raw});
}

std::optional<exit_status> child::wait_for(std::chrono::milliseconds timeout) noexcept {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + timeout;
    for (;;) {
        if (auto s = try_wait()) return s;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) return std::nullopt;
        if (pidfd_) {
            // Readable once the child has ended.
            pollfd p{pidfd_.get(), POLLIN, 0};
            (void)::poll(&p, 1, static_cast<int>(std::min<std::chrono::milliseconds::rep>(left.count(), INT_MAX)));
        } else {
            std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(10)));
        }
    }
}

exit_status child::wait() noexcept {
    if (status_) return *status_;
    if (pid_ <= 0) return exit_status{.lost = true};
    int raw = 0;
    pid_t r = 0;
    do {
        r = ::waitpid(pid_, &raw, 0);
    } while (r < 0 && errno == EINTR);
    return settle(r < 0 ? exit_status{.lost = true} : exit_status{.raw = raw});
}

exit_status child::stop(std::chrono::milliseconds grace, int sig) noexcept {
    if (status_) return *status_;
    if (grace.count() > 0) {
        (void)signal(sig);
        if (auto s = wait_for(grace)) return *s;
    }
    (void)signal(SIGKILL);
    return wait();
}

pid_t child::release() noexcept {
    pidfd_.reset();
    return std::exchange(pid_, -1);
}

// ---- spawn -------------------------------------------------------------------------

child spawn(const child_spec &spec) {
    validate(spec);
    const std::string &name = spec.argv.front();
    const std::vector<std::string> env = environment(spec);
    const std::string program = find_program(name, env);
    const std::vector<char *> argv = c_strings(spec.argv);
    const std::vector<char *> envp = c_strings(env);

    stdio_plan stdio;
    prepare(spec.in, 0, stdio, name);
    prepare(spec.out, 1, stdio, name);
    prepare(spec.err, 2, stdio, name);

    const launch l{program, name, argv.data(), envp.data(), stdio, spec};
    child c;
#if ONEDS_SPAWN_CLOSEFROM
    c.pid_ = spec.parent_death_signal != 0 ? spawn_forked(l) : spawn_posix(l);
#else
    c.pid_ = spawn_forked(l);
#endif
    // Opened while the child is certainly unreaped, so it names this child.
    c.pidfd_ = unique_fd(open_pidfd(c.pid_));
    for (std::size_t i = 0; i < 3; ++i) c.pipes_[i] = std::move(stdio.parent[i]);
    c.stop_signal_ = spec.stop_signal;
    c.stop_grace_ = spec.stop_grace;
    return c;
}

}  // namespace oneds::common
