#include "common/proc.hpp"

#include <cerrno>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace oneds::common {

std::string read_proc_file(const std::string &path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > (1U << 20)) break;  // no /proc file we read is this large
    }
    ::close(fd);
    return out;
}

std::vector<std::string> process_arguments(pid_t pid) {
    const std::string raw = read_proc_file("/proc/" + std::to_string(pid) + "/cmdline");
    std::vector<std::string> argv;
    std::string cur;
    for (const char c : raw) {
        if (c == '\0') {
            argv.push_back(std::move(cur));
            cur.clear();
        } else {
            cur.push_back(c);
        }
    }
    if (!cur.empty()) argv.push_back(std::move(cur));
    return argv;
}

std::vector<pid_t> all_pids() {
    std::vector<pid_t> pids;
    DIR *dir = ::opendir("/proc");
    if (dir == nullptr) return pids;
    while (const dirent *e = ::readdir(dir)) {
        const std::string name = e->d_name;
        if (name.empty() || name.size() > 9 || name.find_first_not_of("0123456789") != std::string::npos) continue;
        pids.push_back(static_cast<pid_t>(std::stol(name)));
    }
    ::closedir(dir);
    return pids;
}

pid_t parent_pid(pid_t pid) {
    const std::string stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
    // "pid (comm) state ppid ...": comm may hold blanks and parentheses.
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(stat.substr(close + 1));
    std::string state;
    long ppid = 0;
    if (!(rest >> state >> ppid)) return -1;
    return static_cast<pid_t>(ppid);
}

std::vector<pid_t> signal_descendants(pid_t root, int sig) {
    const std::vector<pid_t> tree = descendant_pids(root);
    const std::set<pid_t> family(tree.begin(), tree.end());
    // First pin every member with a pidfd and check its parent while the
    // whole tree still stands; only then signal anyone. Signalling a parent
    // before its children were checked would let them be reparented (to init
    // or a subreaper) and then look like strangers. Once pinned, order does
    // not matter for reaching them; parents go first, so a shell does not
    // see its children die and exit on its own before its signal.
    std::vector<std::pair<pid_t, int>> pinned;
    for (const pid_t pid : tree) {
        const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
        if (fd < 0) continue;  // gone
        const pid_t parent = parent_pid(pid);
        if (parent == root || family.contains(parent))
            pinned.emplace_back(pid, fd);
        else
            ::close(fd);
    }
    std::vector<pid_t> signalled;
    for (const auto &[pid, fd] : pinned) {
        if (::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0) == 0) signalled.push_back(pid);
        ::close(fd);
    }
    return signalled;
}

std::vector<pid_t> descendant_pids(pid_t root) {
    std::multimap<pid_t, pid_t> children;
    for (const pid_t pid : all_pids()) {
        const pid_t ppid = parent_pid(pid);
        if (ppid >= 0) children.emplace(ppid, pid);
    }
    std::vector<pid_t> out;
    std::vector<pid_t> todo{root};
    while (!todo.empty()) {
        const pid_t p = todo.back();
        todo.pop_back();
        const auto [b, e] = children.equal_range(p);
        for (auto it = b; it != e; ++it) {
            out.push_back(it->second);
            todo.push_back(it->second);
        }
    }
    return out;
}

}  // namespace oneds::common
