// backup_cancel: docs/stock-driver.md#cancelling-a-backup.
//
//   argv   <host>:<vm_dir> <deploy_id>
//   stdin  <VM>...</VM>
//
// A cancel reaches exactly the backup it was asked to stop, and nothing else:
//
// 1. On the front end, the backup-side processes of this backup: a program
//    named backup, backup_live, prebackup or prebackup_live (any folder: our
//    `one_ds_host action restic backup`, a stock script, the TM's prebackup)
//    whose next argument is exactly this cancel's <host>:<vm_dir> and whose
//    third argument after that is exactly <deploy_id>, the positions at which
//    the VMM driver passes them to all of these (is_backup_process_of). The
//    stock driver matched a regular expression on the joined command line, so
//    a deploy id or a folder that held this one's (VM 4 and VM 40) was hit
//    too. Each process is signalled through a pidfd opened before its command
//    line is read again, so a pid that was reused meanwhile is never
//    signalled. SIGTERM: our backup turns it into a cancel (restic gets
//    SIGINT and removes its lock), the stock scripts run their own cleanup.
// 2. Fail-safe, once those have ended or kill_grace has passed: on the
//    hypervisor (LAST_BRIDGE, else the argv host), SIGINT (not SIGTERM, which
//    restic < 0.17 does not handle, leaving its lock) to every restic whose
//    arguments hold exactly <backup folder>/vm.xml, the argument every backup
//    of this VM gives restic (ours and the stock driver's). They are found with
//    `ps -C restic` and `grep -z` over their /proc/<pid>/cmdline, an exact
//    match of one whole argument, not a substring of `ps` output.
#include "plugin/restic/actions/action_env.hpp"
#include "plugin/restic/actions/backup_cancel.hpp"
#include "plugin/restic/model/datastore_conf.hpp"

#include "common/proc.hpp"
#include "common/strings.hpp"
#include "common/unique_fd.hpp"

#include <pugixml.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>

#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace oneds::restic {
namespace {

using runtime::outcome;

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int pidfd_send_signal(int pidfd, int sig) {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

struct watched_process {
    pid_t pid = 0;
    common::unique_fd pidfd;
};

// Whether pid runs as this process's effective user (the owner of /proc/<pid>).
bool ours(pid_t pid) {
    struct stat st {};
    return ::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0 && st.st_uid == ::geteuid();
}

// The processes of this machine that belong to the backup, each held by a
// pidfd opened before its command line was checked again. Only processes of
// this user count: another user's process with the same arguments is not a
// backup this driver started (and could not be signalled anyway).
std::vector<watched_process> find_backup_processes(const std::string &host_dir, const std::string &deploy_id) {
    std::vector<watched_process> found;
    const pid_t self = ::getpid();
    for (const pid_t pid : common::all_pids()) {
        if (pid == self || !is_backup_process_of(common::process_arguments(pid), host_dir, deploy_id)) continue;
        common::unique_fd fd(pidfd_open(pid));
        if (!fd) continue;  // gone meanwhile
        // The pid may have been reused between the first reading and the
        // pidfd: it is the process the pidfd holds whose arguments count.
        if (!is_backup_process_of(common::process_arguments(pid), host_dir, deploy_id) || !ours(pid)) continue;
        found.push_back({pid, std::move(fd)});
    }
    return found;
}

// Waits until every process has exited, the deadline has passed or the
// request is cancelled.
void wait_for_exit(const std::vector<watched_process> &procs, runtime::request_context &ctx,
                   std::chrono::steady_clock::time_point deadline) {
    std::vector<pollfd> fds;
    for (const auto &p : procs) fds.push_back({p.pidfd.get(), POLLIN, 0});
    while (!fds.empty() && !ctx.cancelled()) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return;
        const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left.count(), 50)));
        if (n < 0 && errno != EINTR) return;
        std::erase_if(fds, [](const pollfd &f) { return (f.revents & (POLLIN | POLLHUP | POLLERR)) != 0; });
        for (auto &f : fds) f.revents = 0;
    }
}

}  // namespace

bool is_backup_process_of(const std::vector<std::string> &argv, const std::string &host_dir,
                          const std::string &deploy_id) {
    for (std::size_t i = 0; i + 3 < argv.size(); ++i) {
        const auto slash = argv[i].rfind('/');
        const std::string_view base =
            slash == std::string::npos ? std::string_view(argv[i]) : std::string_view(argv[i]).substr(slash + 1);
        if (base != "backup" && base != "backup_live" && base != "prebackup" && base != "prebackup_live") continue;
        if (argv[i + 1] == host_dir && argv[i + 3] == deploy_id) return true;
    }
    return false;
}

std::vector<std::string> pids_from_grep_listing(std::string_view listing) {
    std::vector<std::string> pids;
    for (const auto &line : common::split(listing, '\n')) {
        const std::string_view l = common::trim(line);
        constexpr std::string_view head = "/proc/", tail = "/cmdline";
        if (!l.starts_with(head) || !l.ends_with(tail) || l.size() <= head.size() + tail.size()) continue;
        const auto pid = l.substr(head.size(), l.size() - head.size() - tail.size());
        if (is_decimal_id(pid)) pids.emplace_back(pid);
    }
    return pids;
}

outcome backup_cancel_action(action_env &env) {
    const auto &args = env.ctx.req().args;
    // Exactly two, as OpenNebula's VMM driver passes them (stock ignores more).
    if (args.size() != 2)
        return outcome::fail("backup_cancel: expected <host>:<vm_dir> <deploy_id>, got " + std::to_string(args.size()) +
                             " arguments");
    const std::string &host_dir = args[0];
    std::string vm_host, argv_vm_dir;
    if (!split_host_dir(host_dir, vm_host, argv_vm_dir))
        return outcome::fail("backup_cancel: first argument must be <host>:<vm_dir>, got '" +
                             common::printable(host_dir) + "'");
    if (auto p = env.host_problem("backup_cancel: the host in <host>:<vm_dir>", vm_host); !p.empty())
        return outcome::fail(p);
    if (auto p = absolute_path_problem(argv_vm_dir); !p.empty())
        return outcome::fail("backup_cancel: the folder in <host>:<vm_dir> " + p + ", got '" +
                             common::printable(argv_vm_dir) + "'");
    if (has_dot_segment(argv_vm_dir))
        return outcome::fail(
            "backup_cancel: the folder in <host>:<vm_dir> must not have '.' or '..' components, got '" +
            common::printable(argv_vm_dir) + "'");
    // Log lines carry the VM id, so that they land in that VM's log: the VM
    // folder's name (<system datastore>/<vm_id>), else the VM document's ID.
    if (const auto dir_name = std::filesystem::path(clean_path(argv_vm_dir)).filename().string();
        is_decimal_id(dir_name)) {
        env.ctx.set_log_object(std::stoll(dir_name));
    } else {
        pugi::xml_document vm;
        const auto &text = env.ctx.req().document;
        if (!text.empty() && vm.load_buffer(text.data(), text.size())) {
            const std::string id(common::trim(vm.select_node("//VM/ID").node().text().as_string()));
            if (is_decimal_id(id)) env.ctx.set_log_object(std::stoll(id));
        }
    }
    const std::string &deploy_id = args[1];
    if (deploy_id.empty()) return outcome::fail("backup_cancel: empty deploy id");

    pugi::xml_document doc;
    const auto &xml = env.ctx.req().document;
    if (!xml.empty() && doc.load_buffer(xml.data(), xml.size())) {
        const std::string bridge(
            common::trim(doc.select_node("//VM/BACKUPS/BACKUP_CONFIG/LAST_BRIDGE").node().text().as_string()));
        if (!bridge.empty()) {
            if (auto p = env.host_problem("LAST_BRIDGE", bridge); !p.empty())
                return outcome::fail("backup_cancel: " + p);
            vm_host = bridge;
        }
    }
    // The folder the backup gave restic, computed as backup does it (stock:
    // BACKUP_BASE_PATH/<basename of the VM dir>, else the VM dir itself).
    const auto conf = read_shell_vars(env.settings.datastore_conf);
    std::string vm_dir = clean_path(argv_vm_dir);
    if (auto it = conf.find("BACKUP_BASE_PATH"); it != conf.end() && !it->second.empty()) {
        if (auto p = absolute_path_problem(it->second); !p.empty())
            return outcome::fail("BACKUP_BASE_PATH in " + env.settings.datastore_conf + " " + p + ", got '" +
                                 common::printable(it->second) + "'");
        vm_dir = clean_path(it->second + "/" + std::filesystem::path(vm_dir).filename().string());
    }
    const std::string vm_xml = vm_dir + "/backup/vm.xml";

    const auto procs = find_backup_processes(host_dir, deploy_id);
    for (const auto &p : procs) {
        env.log('I', "backup_cancel: stopping backup process " + std::to_string(p.pid));
        // One that cannot be signalled must not keep the others, or the
        // fail-safe on the hypervisor, from being stopped.
        if (pidfd_send_signal(p.pidfd.get(), SIGTERM) != 0 && errno != ESRCH)
            env.log('W', "backup_cancel: cannot stop process " + std::to_string(p.pid) + ": " + std::strerror(errno));
    }
    // Let them cancel cleanly (restic removes its lock) before the fail-safe.
    wait_for_exit(procs, env.ctx, std::chrono::steady_clock::now() + env.settings.kill_grace);
    if (env.ctx.cancelled()) return outcome::fail("backup_cancel: cancelled", ONEDS_ERR_CANCELLED);

    const std::string exec_host = env.exec_host(vm_host);
    ports::run_options opts;
    opts.stop = env.stop();
    opts.kill_grace = env.settings.kill_grace;
    const auto run = [&](std::vector<std::string> argv) {
        ports::command cmd;
        cmd.argv = std::move(argv);
        return env.runner.run(exec_host, cmd, opts);
    };
    const auto failed = [&](const ports::result<ports::command_result> &r) {
        return outcome::fail("Unable to stop leftover restic process on " + vm_host + ": " +
                             (!r             ? r.err().message
                              : r->cancelled ? std::string("cancelled")
                                             : common::one_line(common::strip_terminal_controls(r->stderr_text))));
    };
    auto listed = run({"ps", "-o", "pid=", "-C", "restic"});
    // ps exits 1 when no process matched; 255 is ssh's own failure.
    if (!listed || listed->cancelled || (listed->exit_code != 0 && listed->exit_code != 1)) return failed(listed);
    std::vector<std::string> grep = {"grep", "-lszxF", "-e", vm_xml, "--"};
    for (const auto &line : common::split(listed->stdout_text, '\n'))
        if (const auto pid = common::trim(line); is_decimal_id(pid))
            grep.push_back("/proc/" + std::string(pid) + "/cmdline");
    if (grep.size() == 5) return outcome::ok();
    // grep: 0 some matched, 1 none, 2 some file was gone (-s: not reported).
    auto matched = run(grep);
    if (!matched || matched->cancelled || matched->exit_code > 2) return failed(matched);
    const auto leftovers = pids_from_grep_listing(matched->stdout_text);
    if (leftovers.empty()) return outcome::ok();
    std::vector<std::string> kill = {"kill", "-INT"};
    kill.insert(kill.end(), leftovers.begin(), leftovers.end());
    auto k = run(kill);
    // kill exits 1 when a process has ended meanwhile.
    if (!k || k->cancelled || (k->exit_code != 0 && k->exit_code != 1)) return failed(k);
    env.log('I', "backup_cancel: interrupted " + std::to_string(leftovers.size()) + " restic process(es) of " + vm_xml +
                     " on " + vm_host);
    return outcome::ok();
}

}  // namespace oneds::restic
