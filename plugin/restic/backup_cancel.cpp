// backup_cancel: spec/stock-restic-driver.md §7.2.
//
//   argv   <host>:<vm_dir> <deploy_id>
//   stdin  <VM>...</VM>
//
// 1. On the front end, SIGTERM the running backup of this VM: our own
//    `one_ds_host action restic backup ... <deploy_id> ...` process (which
//    turns SIGTERM into a cancel: restic gets SIGINT, removes its lock, the
//    backup fails with "Backup cancelled") and the TM prebackup scripts, found
//    by their argv in /proc (an exact argument match, not a regex on a
//    command line as stock).
// 2. Fail-safe, once those have had kill_grace to finish: SIGINT (not SIGTERM,
//    which restic < 0.17 does not handle, leaving its lock) to any restic still
//    running on the hypervisor whose command line names the backup folder.
#include "action_env.hpp"

#include <oneds_common/strings.hpp>

#include <pugixml.hpp>

#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include <unistd.h>

namespace oneds::restic {
namespace {

using runtime::outcome;

std::vector<std::string> read_cmdline(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
    std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> argv;
    std::string cur;
    for (char c : raw) {
        if (c == '\0') {
            argv.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(c);
        }
    }
    if (!cur.empty()) argv.push_back(cur);
    return argv;
}

// A backup-side process of this VM: an argument named backup, backup_live,
// prebackup or prebackup_live (any directory), followed later by deploy_id.
bool is_backup_of(const std::vector<std::string> &argv, const std::string &deploy_id) {
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string base = std::filesystem::path(argv[i]).filename().string();
        if (base != "backup" && base != "backup_live" && base != "prebackup" && base != "prebackup_live") continue;
        for (std::size_t j = i + 1; j < argv.size(); ++j)
            if (argv[j] == deploy_id) return true;
    }
    return false;
}

std::vector<pid_t> find_backup_processes(const std::string &deploy_id) {
    std::vector<pid_t> pids;
    const pid_t self = ::getpid();
    std::error_code ec;
    for (const auto &entry : std::filesystem::directory_iterator("/proc", ec)) {
        const auto name = entry.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        const pid_t pid = static_cast<pid_t>(std::stol(name));
        if (pid == self) continue;
        if (is_backup_of(read_cmdline(pid), deploy_id)) pids.push_back(pid);
    }
    return pids;
}

}  // namespace

outcome backup_cancel_action(action_env &env) {
    const auto &args = env.ctx.req().args;
    if (args.size() < 2) return outcome::fail("backup_cancel: expected <host>:<vm_dir> <deploy_id>");
    const auto colon = args[0].find(':');
    if (colon == std::string::npos || colon == 0)
        return outcome::fail("backup_cancel: first argument must be <host>:<vm_dir>, got '" + args[0] + "'");
    std::string vm_host = args[0].substr(0, colon);
    const std::string argv_vm_dir = args[0].substr(colon + 1);
    const std::string &deploy_id = args[1];
    if (deploy_id.empty()) return outcome::fail("backup_cancel: empty deploy id");

    pugi::xml_document doc;
    const auto &xml = env.ctx.req().document;
    if (!xml.empty() && doc.load_buffer(xml.data(), xml.size())) {
        const std::string bridge(
            common::trim(doc.select_node("//VM/BACKUPS/BACKUP_CONFIG/LAST_BRIDGE").node().text().as_string()));
        if (!bridge.empty()) vm_host = bridge;
    }
    // Stock: BACKUP_BASE_PATH/<basename of the VM dir>, else the VM dir itself;
    // restic's command line is matched on it as a substring.
    const auto conf = read_shell_vars(env.settings.datastore_conf);
    std::string vm_dir = clean_path(argv_vm_dir);
    if (auto it = conf.find("BACKUP_BASE_PATH"); it != conf.end() && !it->second.empty())
        vm_dir = clean_path(it->second + "/" + std::filesystem::path(vm_dir).filename().string());

    const auto pids = find_backup_processes(deploy_id);
    for (pid_t pid : pids) {
        env.log('I', "backup_cancel: stopping backup process " + std::to_string(pid));
        if (::kill(pid, SIGTERM) != 0 && errno != ESRCH)
            return outcome::fail("Unable to stop restic backup action: kill " + std::to_string(pid) + ": " +
                                 std::strerror(errno));
    }
    // Let them cancel cleanly (restic removes its lock) before the fail-safe.
    const auto deadline = std::chrono::steady_clock::now() + env.settings.kill_grace;
    for (pid_t pid : pids)
        while (::kill(pid, 0) == 0 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));

    ports::command ps;
    ps.argv = {"ps", "-o", "pid=,args=", "-C", "restic"};
    ports::run_options opts;
    auto listed = env.runner.run(vm_host, ps, opts);
    if (!listed) return outcome::fail("Unable to stop leftover restic process: " + listed.err().message);
    if (listed->exit_code == 255)
        return outcome::fail("Unable to stop leftover restic process: " + common::one_line(listed->stderr_text));
    // ps exits 1 when no process matched.
    std::vector<std::string> leftovers;
    for (const auto &line : common::split(listed->stdout_text, '\n')) {
        const auto t = common::trim(line);
        const auto sp = t.find(' ');
        if (sp == std::string_view::npos) continue;
        const std::string pid(t.substr(0, sp));
        if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
        if (t.find(vm_dir) != std::string_view::npos) leftovers.push_back(pid);
    }
    if (!leftovers.empty()) {
        ports::command kill;
        kill.argv = {"kill", "-INT"};
        kill.argv.insert(kill.argv.end(), leftovers.begin(), leftovers.end());
        auto k = env.runner.run(vm_host, kill, opts);
        if (!k || (k->exit_code != 0 && k->exit_code != 1))
            return outcome::fail("Unable to stop leftover restic process: " +
                                 (k ? common::one_line(k->stderr_text) : k.err().message));
        env.log('I', "backup_cancel: interrupted " + std::to_string(leftovers.size()) + " restic process(es) on " + vm_host);
    }
    return outcome::ok();
}

}  // namespace oneds::restic
