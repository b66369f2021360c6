// fake_restic: a STAND-IN for restic versions that cannot be installed here
// (Debian 12 ships 0.14.0; users run 0.16 to 0.19). It reproduces the
// behaviours of 0.17+ the driver depends on, nothing more:
//   - exit codes 10 (no repository), 11 (locked), 12 (wrong password);
//   - the full 64-hex snapshot_id in the backup summary (0.15+);
//   - JSON error lines on stderr ({"message_type":"exit_error",...}, 0.18+);
//   - the password from RESTIC_PASSWORD, or the first line of a non-terminal stdin.
// Driven by environment variables:
//   FAKE_RESTIC_VERSION   version to claim (default 0.18.1)
//   FAKE_RESTIC_PASSWORD  the repository password (default "pw")
//   FAKE_RESTIC_EXITS     comma list of exit codes for successive runs of the
//                         main subcommand (backup/init/snapshots...); after
//                         the list is used up, runs succeed. 10/11/12 print the
//                         matching restic messages.
//   FAKE_RESTIC_STATE     file counting the runs (required with FAKE_RESTIC_EXITS)
//   FAKE_RESTIC_LOG       file that gets one line per run: argv joined by '|'
//                         and "password=env|stdin|none"
//   FAKE_RESTIC_SLEEP_MS  sleep this long before finishing a backup (cancel tests)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

std::string env(const char *name, const char *def = "") {
    const char *v = std::getenv(name);
    return v != nullptr ? v : def;
}

int next_exit() {
    const std::string list = env("FAKE_RESTIC_EXITS");
    const std::string state = env("FAKE_RESTIC_STATE");
    if (list.empty() || state.empty()) return 0;
    int n = 0;
    {
        std::ifstream in(state);
        in >> n;
    }
    {
        std::ofstream out(state, std::ios::trunc);
        out << n + 1;
    }
    std::vector<int> codes;
    std::size_t pos = 0;
    while (pos <= list.size()) {
        const auto comma = list.find(',', pos);
        codes.push_back(std::atoi(list.substr(pos, comma - pos).c_str()));
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    return n < static_cast<int>(codes.size()) ? codes[static_cast<std::size_t>(n)] : 0;
}

[[noreturn]] void exit_error(int code, const std::string &msg) {
    std::cerr << "Fatal: " << msg << "\n";
    std::cerr << R"({"message_type":"exit_error","code":)" << code << R"(,"message":"Fatal: )" << msg << "\"}\n";
    std::exit(code);
}

}  // namespace

int main(int argc, char **argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string sub;
    std::vector<std::string> rest;
    for (const auto &a : args) {
        if (sub.empty() && !a.empty() && a[0] == '-') continue;
        if (sub.empty())
            sub = a;
        else
            rest.push_back(a);
    }
    if (sub == "version") {
        std::cout << "restic " << env("FAKE_RESTIC_VERSION", "0.18.1") << " compiled with go1.24.1 on linux/amd64\n";
        return 0;
    }
    std::string password, source = "none";
    if (const char *p = std::getenv("RESTIC_PASSWORD")) {
        password = p;
        source = "env";
    } else if (!isatty(0) && std::getline(std::cin, password)) {
        source = "stdin";
    }
    if (auto log = env("FAKE_RESTIC_LOG"); !log.empty()) {
        std::ofstream out(log, std::ios::app);
        for (const auto &a : args) out << a << '|';
        out << "password=" << source << "\n";
    }
    if (password != env("FAKE_RESTIC_PASSWORD", "pw")) exit_error(12, "wrong password or no key found");
    switch (next_exit()) {
        case 0: break;
        case 10:
            exit_error(
                10, "repository does not exist: unable to open config file: stat /r/config: no such file or directory");
        case 11:
            std::cerr
                << "unable to create lock in backend: repository is already locked exclusively by PID 4711 on node3 by "
                   "oneadmin (UID 9869, GID 9869)\nlock was created at 2026-01-02 03:04:05 (1m2s ago)\nstorage ID "
                   "1a2b3c4d\nthe `unlock` command can be used to remove stale locks\n";
            std::cerr
                << R"({"message_type":"exit_error","code":11,"message":"Fatal: unable to create lock in backend"})"
                   "\n";
            return 11;
        case 12: exit_error(12, "wrong password or no key found");
        default: exit_error(1, "simulated failure");
    }
    if (sub == "backup") {
        unsigned long long total = 0;
        for (const auto &f : rest) {
            struct stat st {};
            if (::stat(f.c_str(), &st) != 0) exit_error(1, "file " + f + " does not exist");
            total += static_cast<unsigned long long>(st.st_size);
        }
        std::cout << R"({"message_type":"status","percent_done":0.5,"total_files":)" << rest.size()
                  << R"(,"total_bytes":)" << total << R"(,"bytes_done":)" << total / 2 << R"(,"seconds_elapsed":1})"
                  << std::endl;
        if (auto ms = env("FAKE_RESTIC_SLEEP_MS"); !ms.empty())
            std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(ms.c_str())));
        std::cout << R"({"message_type":"summary","files_new":)" << rest.size() << R"(,"data_added":)" << total
                  << R"(,"total_files_processed":)" << rest.size() << R"(,"total_bytes_processed":)" << total
                  << R"(,"snapshot_id":"6ca565cd0123456789abcdef0123456789abcdef0123456789abcdef01234567"})"
                  << std::endl;
    }
    return 0;
}
