// A recording stand-in for systemd-run and systemctl --user, for tests on
// machines without a systemd user manager (docs/confinement.md).
//
//   fake_systemd run <state_dir> <systemd-run's arguments...>
//   fake_systemd ctl <state_dir> <systemctl's arguments...>
//
// Tests point the plugin's systemd_run / systemctl settings at two small
// scripts that exec this program with the mode and a state directory of the
// test's own (mktemp), so it works the same through sshd.
//
// run: records its argv (<state>/run.<pid>.argv, one word a line) and its
// environment (<state>/run.<pid>.env); writes <state>/run.<pid>.secret when
// it sees a secret (RESTIC_PASSWORD*, AWS_* keys) in its environment or in a
// --setenv/--property word, which must never happen. Requires --user --quiet
// --pipe --collect --wait, refuses an option it does not know, then runs the
// command the way the user manager runs a transient service: in a session of
// its own, with default signal handling, the manager's environment (HOME,
// PATH, USER, LOGNAME) plus the --setenv values, and (as --pipe does) this
// process's stdin, stdout and stderr. Like the real systemd-run with --pipe
// and no --pty, it installs no handler for SIGINT or SIGTERM: a signal ends
// it and the "unit" goes on running. It waits for the command and exits as
// systemd-run --wait does: 0, the command's exit status, or 255 when the
// command died of a signal (EXIT_EXCEPTION). <state>/units/<unit> holds the
// command's pid while it runs.
//
// ctl: appends its argv as one line to <state>/systemctl.log. Knows
// `--user daemon-reload` (fails as an unreachable manager does when
// <state>/unreachable exists) and `--user kill --kill-who=main
// --signal=SIGINT|SIGTERM|SIGKILL <unit>` (signals the unit's pid).
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace {

bool exists(const std::string &path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

bool secret_name(std::string_view name) {
    return name.starts_with("RESTIC_PASSWORD") || name == "AWS_SECRET_ACCESS_KEY" || name == "AWS_ACCESS_KEY_ID";
}

int fail(const std::string &text, int code = 1) {
    std::fprintf(stderr, "%s\n", text.c_str());
    return code;
}

int run(const std::string &state, const std::vector<std::string> &args) {
    const std::string me = state + "/run." + std::to_string(::getpid());
    {
        std::ofstream a(me + ".argv");
        a << "systemd-run\n";
        for (const auto &w : args) a << w << "\n";
        std::ofstream e(me + ".env");
        std::string secrets;
        for (char **p = environ; *p != nullptr; ++p) {
            e << *p << "\n";
            const std::string_view kv(*p);
            if (secret_name(kv.substr(0, kv.find('=')))) secrets += std::string(kv.substr(0, kv.find('='))) + "\n";
        }
        for (const auto &w : args)
            for (const std::string_view opt : {"--setenv=", "-E", "--property=", "-p"})
                if (std::string_view(w).starts_with(opt) &&
                    (w.find("PASSWORD") != std::string::npos || w.find("AWS_") != std::string::npos))
                    secrets += w + "\n";
        if (!secrets.empty()) std::ofstream(me + ".secret") << secrets;
    }
    std::map<std::string, bool> required{
        {"--user", false}, {"--quiet", false}, {"--pipe", false}, {"--collect", false}, {"--wait", false}};
    std::string unit, slice;
    std::vector<std::string> setenv;
    std::size_t i = 0;
    for (; i < args.size() && args[i].starts_with("-"); ++i) {
        const std::string &w = args[i];
        if (auto it = required.find(w); it != required.end())
            it->second = true;
        else if (w.starts_with("--slice="))
            slice = w.substr(8);
        else if (w.starts_with("--unit="))
            unit = w.substr(7);
        else if (w.starts_with("--setenv="))
            setenv.push_back(w.substr(9));
        else
            return fail("fake systemd-run: unknown option " + w);
    }
    for (const auto &[flag, seen] : required)
        if (!seen) return fail("fake systemd-run: expected " + flag);
    if (i == args.size()) return fail("fake systemd-run: no command");
    if (exists(state + "/unreachable")) return fail("Failed to connect to bus: No medium found");
    if (unit.empty()) unit = "run-u" + std::to_string(::getpid()) + ".service";

    const pid_t child = ::fork();
    if (child < 0) return fail(std::string("fake systemd-run: fork: ") + std::strerror(errno));
    if (child == 0) {
        ::setsid();
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int s = 1; s < NSIG; ++s)
            if (s != SIGKILL && s != SIGSTOP) std::signal(s, SIG_DFL);
        std::vector<std::string> env;
        for (const char *name : {"HOME", "PATH", "USER", "LOGNAME"})
            if (const char *v = std::getenv(name)) env.push_back(std::string(name) + "=" + v);
        env.insert(env.end(), setenv.begin(), setenv.end());
        std::vector<char *> envp, argv;
        for (auto &e : env) envp.push_back(e.data());
        envp.push_back(nullptr);
        std::vector<std::string> cmd(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
        for (auto &w : cmd) argv.push_back(w.data());
        argv.push_back(nullptr);
        ::execvpe(argv[0], argv.data(), envp.data());
        std::fprintf(stderr, "fake systemd-run: %s: %s\n", argv[0], std::strerror(errno));
        ::_exit(203);  // systemd's EXIT_EXEC
    }
    ::mkdir((state + "/units").c_str(), 0700);
    const std::string pid_file = state + "/units/" + unit;
    std::ofstream(pid_file) << child << "\n";
    std::ofstream(me + ".slice") << slice << "\n";
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    ::unlink(pid_file.c_str());
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 255;
}

int ctl(const std::string &state, const std::vector<std::string> &args) {
    {
        std::ofstream log(state + "/systemctl.log", std::ios::app);
        std::string line = "systemctl";
        for (const auto &w : args) line += " " + w;
        log << line << "\n";
    }
    if (args.size() == 2 && args[0] == "--user" && args[1] == "daemon-reload") {
        if (exists(state + "/unreachable"))
            return fail("Failed to connect to bus: $DBUS_SESSION_BUS_ADDRESS and $XDG_RUNTIME_DIR not defined");
        return 0;
    }
    if (args.size() == 5 && args[0] == "--user" && args[1] == "kill" && args[2] == "--kill-who=main" &&
        args[3].starts_with("--signal=")) {
        const std::string sig = args[3].substr(9);
        const int signo = sig == "SIGINT" ? SIGINT : sig == "SIGTERM" ? SIGTERM : sig == "SIGKILL" ? SIGKILL : 0;
        if (signo == 0) return fail("fake systemctl: unknown signal " + sig);
        std::ifstream in(state + "/units/" + args[4]);
        long pid = 0;
        if (!(in >> pid) || pid <= 0)
            return fail("Failed to kill unit " + args[4] + ": Unit " + args[4] + " not loaded.");
        return ::kill(static_cast<pid_t>(pid), signo) == 0 ? 0 : fail("fake systemctl: kill failed");
    }
    return fail("fake systemctl: unsupported command");
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 3) return fail("usage: fake_systemd run|ctl <state_dir> args...", 2);
    const std::string mode = argv[1], state = argv[2];
    const std::vector<std::string> args(argv + 3, argv + argc);
    if (mode == "run") return run(state, args);
    if (mode == "ctl") return ctl(state, args);
    return fail("fake_systemd: unknown mode " + mode, 2);
}
