#define BOOST_TEST_MODULE restic_backup
// Backups, monitor and cancel through one_ds_host with the real restic 0.14,
// a real sshd on loopback and real qemu-img disks. The fake restic (0.17+)
// cases say so in their names.
#include "tests/restic/restic_fixture.hpp"

#include "common/base64.hpp"
#include "common/strings.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <filesystem>
#include <future>
#include <regex>
#include <set>
#include <sstream>
#include <iterator>
#include <fstream>
#include <algorithm>
#include <thread>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

using namespace oneds::test;
namespace fs = std::filesystem;

namespace {

struct snapshot {
    std::string id;
    std::vector<std::string> paths, tags;
};

std::vector<snapshot> snapshots(const restic_fixture &f, const std::string &repo) {
    auto r = f.restic(repo, {"snapshots", "--json", "--no-lock"});
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    std::vector<snapshot> out;
    const boost::json::value parsed = boost::json::parse(r.out);
    for (const auto &v : parsed.as_array()) {
        const auto &o = v.as_object();
        snapshot s;
        s.id = std::string(o.at("id").as_string());
        for (const auto &p : o.at("paths").as_array()) s.paths.emplace_back(p.as_string());
        if (o.contains("tags"))
            for (const auto &t : o.at("tags").as_array()) s.tags.emplace_back(t.as_string());
        out.push_back(s);
    }
    return out;
}

std::vector<std::string> backup_args(const restic_fixture &f, int vm, const std::string &host = "hypervisor",
                                     const std::string &bj = "-") {
    return {host + ":" + f.vm_dir(vm), "0:1", "one-" + std::to_string(vm), bj, std::to_string(vm), "0"};
}

// "<8 hex> <size_mb> raw\n"
void check_backup_line(const process_result &r) {
    BOOST_TEST_MESSAGE("stderr: " << r.err);
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "exit " << r.exit_code << ": " << r.err);
    BOOST_TEST(std::regex_match(r.out, std::regex("[0-9a-f]{8} [0-9]+ raw\n")), "stdout: '" << r.out << "'");
}

double added_mib(const std::string &stderr_text) {
    std::smatch m;
    BOOST_REQUIRE(std::regex_search(stderr_text, m, std::regex(R"(processed, ([0-9.]+) MiB added)")));
    return std::stod(m[1]);
}

// Waits until restic has written a file under <repo>/data (a pack, or its
// temporary file): it is past its lock check then, with its lock registered
// for removal on SIGINT (restic 0.14 removes only the locks it registered;
// one that SIGINT meets between writing its lock file and that leaves it to
// the plugin's bounded clean-up).
bool wait_for_upload(const std::string &repo, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    do {
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(repo + "/data", ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
            if (it->is_regular_file(ec)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

std::uint64_t ceil_mib(std::uint64_t b) { return (b + 1048575) / 1048576; }

std::map<std::string, std::uint64_t> parse_monitor(const std::string &out) {
    std::map<std::string, std::uint64_t> v;
    for (const auto &line : oneds::common::split(out, '\n')) {
        const auto eq = line.find('=');
        if (eq != std::string::npos) v[line.substr(0, eq)] = std::stoull(line.substr(eq + 1));
    }
    return v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(backup)

BOOST_AUTO_TEST_CASE(multi_disk_backup_over_sftp_stores_the_stock_file_set) {
    restic_fixture f;
    f.make_vm(7, {{0, 32, 4}, {1, 16, 2}});
    const auto r = f.host_action("backup", backup_args(f, 7), f.document());
    check_backup_line(r);
    // The first backup finds no repository, creates it, and backs up again.
    BOOST_TEST(r.err.find("backup of VM 7: no repository at sftp:") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("INFO: 7 creating restic repository sftp:") != std::string::npos, r.err);

    const std::string repo = f.base_path() + "/7";
    BOOST_TEST(fs::exists(repo + "/config"));
    const auto snaps = snapshots(f, repo);
    BOOST_REQUIRE_EQUAL(snaps.size(), 1u);
    BOOST_TEST(snaps[0].id.substr(0, 8) == r.out.substr(0, 8));
    const std::vector<std::string> want_paths = {f.backup_dir(7) + "/disk.0.0", f.backup_dir(7) + "/disk.1.0",
                                                 f.backup_dir(7) + "/vm.xml"};
    BOOST_TEST(snaps[0].paths == want_paths, boost::test_tools::per_element());
    BOOST_TEST(snaps[0].tags == std::vector<std::string>{"one-7"}, boost::test_tools::per_element());
    for (const auto &p : want_paths) {
        const auto dump = f.restic(repo, {"dump", "--quiet", snaps[0].id, p});
        BOOST_REQUIRE_MESSAGE(dump.exit_code == 0, dump.err);
        BOOST_TEST((dump.out == read_file(p)), p << " differs from its dump");
    }
    // size_mb is total_bytes_processed / MiB of the files backed up.
    std::uint64_t total = 0;
    for (const auto &p : want_paths) total += fs::file_size(p);
    BOOST_TEST(r.out.substr(9, r.out.find(' ', 9) - 9) == std::to_string(total / 1048576));

    // A second backup of unchanged disks stores (almost) nothing new.
    const auto again = f.host_action("backup", backup_args(f, 7), f.document());
    check_backup_line(again);
    BOOST_TEST(again.err.find("creating restic repository") == std::string::npos);
    BOOST_TEST(added_mib(again.err) < 0.5);
    BOOST_TEST(snapshots(f, repo).size() == 2u);
}

BOOST_AUTO_TEST_CASE(backup_folder_without_disks_or_vm_xml_is_refused_before_restic_runs) {
    restic_fixture f;
    f.make_vm(7, {{0, 8, 1}});
    const std::string bk = f.backup_dir(7);
    // A repository with one snapshot, so that a stray backup would show.
    check_backup_line(f.host_action("backup", backup_args(f, 7), f.document()));
    const std::string repo = f.base_path() + "/7";

    fs::rename(bk + "/vm.xml", bk + "/vm.xml.away");
    auto r = f.host_action("backup", backup_args(f, 7), f.document());
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("Backup folder " + bk + " is not ready: no file " + bk + "/vm.xml on hypervisor") !=
                   std::string::npos,
               r.err);
    fs::rename(bk + "/vm.xml.away", bk + "/vm.xml");

    fs::rename(bk + "/disk.0.0", bk + "/Disk.0.0");  // the glob is disk.*, case and all
    r = f.host_action("backup", backup_args(f, 7), f.document());
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("no file " + bk + "/disk.* on hypervisor") != std::string::npos, r.err);

    fs::remove_all(bk);  // the folder itself is gone (postbackup ran early)
    r = f.host_action("backup", backup_args(f, 7), f.document());
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("no file " + bk + "/disk.* on hypervisor") != std::string::npos, r.err);

    BOOST_TEST(snapshots(f, repo).size() == 1u);
    BOOST_TEST(fs::is_empty(repo + "/locks"));
}

BOOST_AUTO_TEST_CASE(shared_ssh_control_dir_keeps_the_connection_for_the_next_action) {
    restic_fixture f;
    f.make_vm(7, {{0, 8, 1}});
    const std::string mux = f.dir().file("mux");
    const std::map<std::string, std::string> cfg = {{"ssh_control_dir", mux}, {"ssh_control_persist", "60"}};
    const std::string ssh_cfg = f.sshd().ssh_config_file().string();
    const auto check_master = [&] {
        return run_process(
            {tool("ssh"), "-F", ssh_cfg, "-o", "ControlPath=" + mux + "/%C", "-O", "check", "hypervisor"});
    };
    check_backup_line(f.host_action("backup", backup_args(f, 7), f.document(), cfg));
    // The action's process is gone, its connection to the hypervisor is not.
    const auto perms = fs::status(mux).permissions();
    BOOST_TEST(((perms & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none));
    auto first = check_master();
    BOOST_TEST_REQUIRE(first.exit_code == 0, first.err);
    BOOST_TEST(first.err.find("Master running") != std::string::npos, first.err);
    // The next action uses that master rather than starting another.
    check_backup_line(f.host_action("backup", backup_args(f, 7), f.document(), cfg));
    auto second = check_master();
    BOOST_TEST(second.err == first.err, "master changed: " << first.err << " -> " << second.err);
    std::size_t sockets = 0;
    for (const auto &e : fs::directory_iterator(mux)) sockets += e.is_socket() ? 1 : 0;
    BOOST_TEST(sockets == 1u);
    (void)run_process({tool("ssh"), "-F", ssh_cfg, "-o", "ControlPath=" + mux + "/%C", "-O", "exit", "hypervisor"});

    // A directory others can reach is refused, naming it.
    fs::permissions(mux,
                    fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec,
                    fs::perm_options::add);
    const auto r = f.host_action("backup", backup_args(f, 7), f.document(), cfg);
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(
        r.err.find("ssh_control_dir " + mux + " must belong to this user and be closed to others") != std::string::npos,
        r.err);
    BOOST_TEST(snapshots(f, f.base_path() + "/7").size() == 2u);
}

// The default socket directory is OpenNebula's /run/one/ssh-socks. Where it
// cannot be used (here: no /run/one, unless something made it), a private
// one serves, with one warning, and the backup runs.
BOOST_AUTO_TEST_CASE(default_ssh_control_dir_is_opennebulas_else_a_private_one_with_a_warning) {
    restic_fixture f;
    f.make_vm(7, {{0, 8, 1}});
    struct stat st {};
    const bool usable = ::lstat("/run/one/ssh-socks", &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == ::geteuid() &&
                        (st.st_mode & 077) == 0;
    const bool parent = fs::is_directory("/run/one");
    const auto r = f.host_action("backup", backup_args(f, 7), f.document(), {{"ssh_control_dir", k_unset}});
    check_backup_line(r);
    const std::string warning = "ssh connection reuse: /run/one/ssh-socks: ";
    if (usable || parent) {
        BOOST_TEST_MESSAGE("/run/one exists here: the fallback is not exercised");
        if (usable) BOOST_TEST(r.err.find(warning) == std::string::npos, r.err);
    } else {
        BOOST_TEST(r.err.find(warning + "cannot create it: No such file or directory; using a private socket "
                                        "directory") != std::string::npos,
                   r.err);
        BOOST_TEST(!fs::exists("/run/one"), "the plugin made /run/one");
    }
    std::size_t count = 0;
    for (std::size_t at = r.err.find(warning); at != std::string::npos; at = r.err.find(warning, at + 1)) ++count;
    BOOST_TEST(count <= 1U, r.err);
}

// docs/stock-driver.md#confinement: RESTIC_NICE / RESTIC_IONICE confine the backup's restic.
BOOST_AUTO_TEST_CASE(restic_nice_and_ionice_confine_the_backup) {
    restic_fixture f;
    f.make_vm(7, {{0, 1024, 400, true}});
    // The repository exists: the first restic backup is the one that runs
    // (else a short first run finds no repository and a second one follows).
    const auto init = f.restic(f.base_path() + "/7", {"init"});
    BOOST_TEST_REQUIRE(init.exit_code == 0, init.err);
    spawned_process p(f.host_argv("backup", backup_args(f, 7)),
                      f.document({{"RESTIC_NICE", "13"}, {"RESTIC_IONICE", "6"}, {"RESTIC_CPU_QUOTA", ""}}));
    const pid_t pid = find_process_with({"backup", "--tag=one-7"}, std::chrono::seconds(60));
    BOOST_TEST_REQUIRE(pid > 0, "restic backup never started");
    // exec keeps the pid: wait until nice and ionice have become restic.
    std::string stat;
    for (int i = 0; i < 200; ++i) {
        stat = read_file("/proc/" + std::to_string(pid) + "/stat");
        if (stat.find("(restic)") != std::string::npos) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    BOOST_TEST_REQUIRE(stat.find("(restic)") != std::string::npos, stat);
    // Field 19 of /proc/<pid>/stat is the nice value (fields counted from the pid).
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::vector<std::string> rest{std::istream_iterator<std::string>(fields), std::istream_iterator<std::string>()};
    BOOST_TEST_REQUIRE(rest.size() > 16u);
    // nice -n adds to the test's own nice value (a suite run under `nice`), capped at 19.
    const int expected_nice = std::min(19, ::getpriority(PRIO_PROCESS, 0) + 13);
    BOOST_TEST(rest[16] == std::to_string(expected_nice));  // rest[0] is field 3 (state)
    const auto io = run_process({tool("ionice"), "-p", std::to_string(pid)});
    BOOST_TEST(io.out == "best-effort: prio 6\n", io.out << io.err);
    const auto r = p.wait(std::chrono::seconds(120));
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(r.err.find("systemd slice") == std::string::npos, r.err);  // an empty limit is unset
    // Values out of range name the attribute.
    const auto bad = f.host_action("backup", backup_args(f, 7), f.document({{"RESTIC_IONICE", "9"}}));
    BOOST_TEST(bad.exit_code == 255);
    BOOST_TEST(bad.err.find("RESTIC_IONICE must be an integer from 0 to 7 (-1 for none), got '9'") != std::string::npos,
               bad.err);
}

// Every line a backup writes on stderr is one OpenNebula's VMM driver turns into
// a LOG message for the VM (DriverExecHelper: ^(ERROR|INFO|WARN|DEBUG):\s+(\d+)?\s*(.*)$,
// the number being the VM id), so that it lands in /var/log/one/7.log.
BOOST_AUTO_TEST_CASE(backup_lines_carry_the_vm_id_for_the_vm_log) {
    restic_fixture f;
    f.make_vm(7, {{0, 8, 1}});
    // restic by name: a front end without OpenNebula's copy adds an
    // instance-wide warning, which is about no VM.
    const auto r = f.host_action("backup", backup_args(f, 7), f.document(), {{"restic_bin", "restic"}});
    check_backup_line(r);
    const std::regex opennebula(R"(^(ERROR|INFO|WARN|DEBUG):\s+(\d+)?\s*(.*)$)");
    std::set<std::string> levels;
    std::istringstream in(r.err);
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        BOOST_TEST_REQUIRE(std::regex_match(line, m, opennebula), "not a log line for OpenNebula: " << line);
        BOOST_TEST(m[2].str() == "7", line);
        levels.insert(m[1].str());
    }
    BOOST_TEST(levels.contains("INFO"), r.err);
    BOOST_TEST(r.err.find("INFO: 7 backup of VM 7: snapshot ") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(ceph_disk_files_give_the_rbd_format) {
    restic_fixture f;
    f.make_vm(7, {{0, 8, 1}});
    const std::string bk = f.backup_dir(7);
    // As the Ceph prebackup leaves them: disk.<id>.rbd2 (full) or .rbdiff.
    fs::rename(bk + "/disk.0.0", bk + "/disk.0.rbd2");
    const auto r = f.host_action("backup", backup_args(f, 7), f.document());
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
    BOOST_TEST(std::regex_match(r.out, std::regex("[0-9a-f]{8} [0-9]+ rbd\n")), r.out);
    const auto snaps = snapshots(f, f.base_path() + "/7");
    BOOST_REQUIRE_EQUAL(snaps.size(), 1u);
    BOOST_TEST(snaps[0].paths == (std::vector<std::string>{bk + "/disk.0.rbd2", bk + "/vm.xml"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(backup_base_path_and_last_bridge_are_honoured) {
    restic_fixture f;
    // BACKUP_BASE_PATH moves the folder to <BACKUP_BASE_PATH>/<vm>/backup.
    const std::string alt = f.dir().file("alt");
    f.dir().write("datastore.conf", "# test\nexport BACKUP_BASE_PATH=\"" + alt + "\"\n");
    f.make_vm(8, {{0, 8, 1}});
    fs::create_directories(alt + "/8");
    fs::rename(f.backup_dir(8), alt + "/8/backup");
    // The argv host does not exist; LAST_BRIDGE names the reachable one.
    const auto r =
        f.host_action("backup", backup_args(f, 8, "no-such-host.invalid"),
                      f.document({},
                                 "<VM><ID>8</ID><BACKUPS><BACKUP_CONFIG><LAST_BRIDGE>hypervisor</LAST_BRIDGE>"
                                 "</BACKUP_CONFIG></BACKUPS></VM>"));
    check_backup_line(r);
    const auto snaps = snapshots(f, f.base_path() + "/8");
    BOOST_REQUIRE_EQUAL(snaps.size(), 1u);
    BOOST_TEST(snaps[0].paths.front() == alt + "/8/backup/disk.0.0");
}

BOOST_AUTO_TEST_CASE(job_repository_takes_concurrent_backups_of_several_vms) {
    restic_fixture f;
    const std::vector<int> vms = {11, 12, 13};
    for (int vm : vms) f.make_vm(vm, {{0, 8, 1}, {1, 8, 1}});
    std::vector<std::future<process_result>> runs;
    for (int vm : vms)
        runs.push_back(std::async(std::launch::async, [&f, vm] {
            return f.host_action("backup", backup_args(f, vm, "hypervisor", "5"), f.document());
        }));
    for (auto &r : runs) check_backup_line(r.get());
    const auto snaps = snapshots(f, f.base_path() + "/job_5");
    BOOST_REQUIRE_EQUAL(snaps.size(), vms.size());
    std::set<std::string> tags;
    for (const auto &s : snaps) tags.insert(s.tags.at(0));
    BOOST_TEST((tags == std::set<std::string>{"one-11", "one-12", "one-13"}));
}

BOOST_AUTO_TEST_CASE(local_backend_backs_up_without_a_server) {
    restic_fixture f;
    f.make_vm(9, {{0, 8, 1}});
    const auto r = f.host_action("backup", backup_args(f, 9, "localhost"),
                                 f.document({{"RESTIC_BACKEND", "LOCAL"}, {"RESTIC_SFTP_SERVER", std::nullopt}}));
    check_backup_line(r);
    BOOST_TEST(snapshots(f, f.base_path() + "/9").size() == 1u);
}

BOOST_AUTO_TEST_CASE(wrong_password_is_a_clear_error_and_leaves_the_repository_alone) {
    restic_fixture f;
    f.make_vm(7, {{0, 8, 1}});
    check_backup_line(f.host_action("backup", backup_args(f, 7), f.document()));
    const auto r = f.host_action("backup", backup_args(f, 7), f.document({{"RESTIC_PASSWORD", "not-it"}}));
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("wrong password") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("not-it") == std::string::npos);
    BOOST_TEST(snapshots(f, f.base_path() + "/7").size() == 1u);
    BOOST_TEST(fs::is_empty(f.base_path() + "/7/locks"));
}

BOOST_AUTO_TEST_CASE(missing_and_bad_attributes_name_the_attribute) {
    restic_fixture f;
    f.make_vm(7, {{0, 8, 1}});
    auto r = f.host_action("backup", backup_args(f, 7), f.document({{"RESTIC_PASSWORD", std::nullopt}}));
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("RESTIC_PASSWORD is required") != std::string::npos, r.err);
    r = f.host_action("backup", backup_args(f, 7), f.document({{"RESTIC_CONNECTIONS", "many"}}));
    BOOST_TEST(r.err.find("RESTIC_CONNECTIONS must be an integer from 1 to 1024, got 'many'") != std::string::npos,
               r.err);
    r = f.host_action("backup", {"hypervisor:" + f.vm_dir(7), "0"}, f.document());
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("expected <host>:<vm_dir>") != std::string::npos, r.err);
    BOOST_TEST(!fs::exists(f.base_path() + "/7"));
}

BOOST_AUTO_TEST_CASE(unreachable_server_and_unknown_host_key_are_clear_errors) {
    restic_fixture f;
    f.make_vm(7, {{0, 8, 1}});
    // The fixture's hosts plus an alias that points at a closed port: restic
    // on the hypervisor cannot reach its backup server.
    const std::string cfg = f.dir().write("closed_ssh_config", read_file(f.sshd().ssh_config_file().string()) +
                                                                   "\nHost closed\n  HostName 127.0.0.1\n  Port 1\n"
                                                                   "  BatchMode yes\n  ConnectTimeout 5\n");
    auto r = f.host_action("backup", backup_args(f, 7), f.document({{"RESTIC_SFTP_SERVER", "closed"}}),
                           {{"ssh_config", cfg}});
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("closed") != std::string::npos, r.err);
    // restic's own words do not always name the cause (its ssh's stderr may
    // come too late); the front end's view of the storage does.
    BOOST_TEST(
        r.err.find("(from the front end: cannot connect to 127.0.0.1:1: Connection refused)") != std::string::npos,
        r.err);
    BOOST_TEST(!fs::exists(f.base_path() + "/7"));
    BOOST_TEST_MESSAGE("unreachable backup server: " << r.err);

    // The right server, but a known_hosts file that does not know its key.
    std::string text = read_file(f.sshd().ssh_config_file().string());
    const std::string empty_kh = f.dir().write("empty_known_hosts", "");
    text = std::regex_replace(text, std::regex("UserKnownHostsFile .*"), "UserKnownHostsFile " + empty_kh);
    const std::string strict_cfg = f.dir().write("strict_ssh_config", text);
    r = f.host_action("backup", backup_args(f, 7), f.document(), {{"ssh_config", strict_cfg}});
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(oneds::common::to_lower(r.err).find("host key") != std::string::npos, r.err);
    BOOST_TEST_MESSAGE("unknown host key: " << r.err);
}

BOOST_AUTO_TEST_CASE(locked_repository_is_retried_logged_and_succeeds_once_released) {
    restic_fixture f;
    f.make_vm(7, {{0, 64, 48, true}});
    check_backup_line(f.host_action("backup", backup_args(f, 7), f.document()));
    const std::string repo = f.base_path() + "/7";
    // Another restic takes the exclusive lock (check --read-data) and is
    // stopped while it holds it.
    auto holder = hold_exclusive_lock(f.dir().file("password"), repo);
    BOOST_REQUIRE_MESSAGE(holder, "could not catch restic check holding its lock");
    auto backup = std::make_unique<spawned_process>(f.host_argv("backup", backup_args(f, 7)), f.document());
    // Release the lock only once our restic backup has met it: its first
    // restic ended and the plugin retries (it looked at the stopped holder
    // and logged the lock before its retry interval).
    BOOST_TEST(wait_for_retry_of({"backup", "--tag=one-7"}, std::chrono::seconds(120)),
               "restic backup never met the lock and retried");
    holder->send_signal(SIGCONT);
    const auto r = backup->wait(std::chrono::seconds(180));
    // Generous: the limit may count from the holder's start (spawned_process),
    // and a SIGKILLed holder would leave its exclusive lock.
    holder->wait(std::chrono::seconds(600));
    BOOST_TEST_MESSAGE(r.err);
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(r.err.find("repository is locked by PID " + std::to_string(holder->pid())) != std::string::npos, r.err);
    // The holder was looked at: it runs (stopped, not gone), so it is waited for.
    BOOST_TEST(r.err.find("(running on ") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("removed the stale lock") == std::string::npos, r.err);
    BOOST_TEST(r.err.find("retry 1/") != std::string::npos);
    BOOST_TEST(snapshots(f, repo).size() == 2u);
}

BOOST_AUTO_TEST_CASE(cancel_in_the_middle_of_a_large_backup_leaves_no_lock) {
    restic_fixture f;
    f.make_vm(7, {{0, 1024, 600, true}});
    const std::string repo = f.base_path() + "/7";
    // kill_grace 30: restic has all the time it needs to act on SIGINT
    // (remove its lock and exit) before it would be SIGKILLed.
    spawned_process p(f.host_argv("backup", backup_args(f, 7), {{"kill_grace", "30"}}), f.document());
    // Wait until restic is uploading (past its lock check, so its lock is
    // registered), then cancel as backup_cancel does: SIGTERM to the backup
    // action.
    BOOST_REQUIRE(wait_for_restic_lock(repo, std::chrono::seconds(60)));
    BOOST_REQUIRE(wait_for_upload(repo, std::chrono::seconds(60)));
    p.send_signal(SIGTERM);
    const auto r = p.wait(std::chrono::seconds(120));
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("Backup cancelled") != std::string::npos, r.err);
    // Strict: a restic cancelled with SIGINT once it holds a registered lock
    // removes that lock itself (and the plugin's unlock comes after that), so
    // it does not depend on the plugin's bounded clean-up.
    BOOST_TEST(restic_lock_files(repo).empty(), "a lock was left behind: " << r.err);
    BOOST_TEST(snapshots(f, repo).empty());
    // No restic left running for this VM.
    BOOST_TEST(own_processes_mentioning(f.backup_dir(7)).empty());
    // The next backup succeeds.
    fs::resize_file(f.backup_dir(7) + "/disk.0.0", 0);
    f.make_vm(7, {{0, 8, 1}});
    check_backup_line(f.host_action("backup", backup_args(f, 7), f.document()));
}

BOOST_AUTO_TEST_CASE(backup_cancel_action_stops_the_running_backup) {
    restic_fixture f;
    f.make_vm(7, {{0, 1024, 600, true}});
    const std::string repo = f.base_path() + "/7";
    // kill_grace 30: restic has all the time it needs to act on SIGINT.
    spawned_process p(f.host_argv("backup", backup_args(f, 7), {{"kill_grace", "30"}}), f.document());
    // restic is past its lock check (its lock registered) once it uploads.
    BOOST_REQUIRE(wait_for_restic_lock(repo, std::chrono::seconds(60)));
    BOOST_REQUIRE(wait_for_upload(repo, std::chrono::seconds(60)));
    const auto c = f.host_action("backup_cancel", {"hypervisor:" + f.vm_dir(7), "one-7"}, "<VM><ID>7</ID></VM>");
    BOOST_TEST(c.exit_code == 0, c.err);
    BOOST_TEST(c.out.empty());
    // Its lines carry the VM id (the VM folder's name), for the VM's log.
    BOOST_TEST(c.err.find("INFO: 7 backup_cancel: stopping backup process ") != std::string::npos, c.err);
    const auto r = p.wait(std::chrono::seconds(120));
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("Backup cancelled") != std::string::npos, r.err);
    // Strict, as above: restic removed its registered lock on SIGINT.
    BOOST_TEST(restic_lock_files(repo).empty(), "a lock was left behind: " << r.err);
}

BOOST_AUTO_TEST_CASE(downloader_streams_a_disk_on_stdout_with_the_datastore_on_stdin) {
    restic_fixture f;
    f.make_vm(7, {{0, 32, 4}});
    const auto b = f.host_action("backup", backup_args(f, 7), f.document());
    check_backup_line(b);
    const std::string source = f.backup_dir(7) + "/disk.0.0";
    const std::string url = "restic://100//0:" + b.out.substr(0, 8) + source;
    const std::string tmp = f.dir().file("rtmp");
    fs::create_directories(tmp);
    // No oned: the datastore comes on stdin.
    const auto r = f.host_action("downloader", {"--stdout", url}, f.document({{"RESTIC_TMP_DIR", tmp}}));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    const std::string got = f.dir().write("got.qcow2", r.out);
    const auto cmp = run_process({tool("qemu-img"), "compare", "-q", source, got});
    BOOST_TEST(cmp.exit_code == 0, "downloaded image differs: " << cmp.out << cmp.err);
    BOOST_TEST(fs::is_empty(tmp), "temporary files left in RESTIC_TMP_DIR");
    // A datastore that is not the URL's is refused.
    const auto wrong =
        f.host_action("downloader", {"--stdout", "restic://101//0:" + b.out.substr(0, 8) + source}, f.document());
    BOOST_TEST(wrong.exit_code == 255);
    BOOST_TEST(wrong.err.find("the URL names 101") != std::string::npos, wrong.err);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(monitor)

BOOST_AUTO_TEST_CASE(monitor_figures_equal_statvfs_of_base_path_for_both_backends) {
    restic_fixture f;
    for (const bool local : {false, true}) {
        fs::remove_all(f.base_path());
        std::map<std::string, std::optional<std::string>> t;
        if (local) t = {{"RESTIC_BACKEND", "LOCAL"}};
        // Other tests write big files meanwhile: what monitor reports must lie
        // between statvfs taken just before and just after it (+- 16 MiB).
        struct statvfs before {
        }, after{};
        BOOST_REQUIRE(::statvfs(f.dir().path().c_str(), &before) == 0);
        const auto r = f.host_action("monitor", {"100"}, oneds::common::base64_encode(f.document(t)));
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        BOOST_TEST(fs::is_directory(f.base_path()), "BASE_PATH is created");
        BOOST_REQUIRE(::statvfs(f.base_path().c_str(), &after) == 0);
        const auto v = parse_monitor(r.out);
        BOOST_TEST(v.size() == 3u);
        BOOST_TEST(v.at("TOTAL_MB") == ceil_mib(after.f_blocks * after.f_frsize));
        const auto within = [](std::uint64_t got, std::uint64_t a, std::uint64_t b) {
            return got + 16 >= std::min(a, b) && got <= std::max(a, b) + 16;
        };
        const auto free_of = [](const struct statvfs &sv) { return ceil_mib(sv.f_bavail * sv.f_frsize); };
        const auto used_of = [](const struct statvfs &sv) {
            return ceil_mib((sv.f_blocks - sv.f_bfree) * sv.f_frsize);
        };
        BOOST_TEST(within(v.at("FREE_MB"), free_of(before), free_of(after)),
                   "FREE_MB " << v.at("FREE_MB") << " not between " << free_of(before) << " and " << free_of(after));
        BOOST_TEST(within(v.at("USED_MB"), used_of(before), used_of(after)),
                   "USED_MB " << v.at("USED_MB") << " not between " << used_of(before) << " and " << used_of(after));
        BOOST_TEST(r.out.find("USED_MB=") == 0u);
    }
}

BOOST_AUTO_TEST_CASE(monitor_in_mad_mode_replies_base64) {
    restic_fixture f;
    std::string input = "INIT\n";
    for (int i = 0; i < 20; ++i) input += "MONITOR  100 " + oneds::common::base64_encode(f.document()) + "\n";
    // -t 20: every request starts at once (queued ones are dropped at EOF).
    const auto r = run_process(
        {ONEDS_TEST_HOST_PATH, "-t 20 -d restic -c " + f.write_config() + " --plugin restic=" + ONEDS_TEST_RESTIC_PATH},
        input, {}, std::chrono::seconds(60));
    const auto lines = oneds::common::split(r.out, '\n');
    BOOST_TEST(lines.at(0) == "INIT SUCCESS");
    int ok = 0;
    for (const auto &l : lines) {
        if (l.rfind("MONITOR SUCCESS 100 ", 0) != 0) continue;
        const auto decoded = oneds::common::base64_decode(l.substr(20));
        BOOST_REQUIRE(decoded.has_value());
        BOOST_TEST(parse_monitor(*decoded).size() == 3u);
        ++ok;
    }
    BOOST_TEST(ok == 20, r.out);
}

// The backup server behind a bastion: monitor (libssh2) follows the
// ProxyJump of the ssh config as backups (ssh) do. A second sshd is the jump
// host; a jump host that refuses to forward proves the path goes through it.
BOOST_AUTO_TEST_CASE(monitor_behind_a_jump_host_works_and_a_refusing_jump_is_named) {
    restic_fixture f;
    for (const bool forwarding : {true, false}) {
        std::vector<std::string> jump_sshd;
        if (!forwarding) jump_sshd.emplace_back("AllowTcpForwarding no");
        const sshd_fixture jump(sshd_options{"jumpbox", jump_sshd});
        const std::string cfg =
            f.dir().write(forwarding ? "jump_ssh_config" : "refusing_jump_ssh_config",
                          "Host jumpbox\n  HostName 127.0.0.1\n  Port " + std::to_string(jump.port()) + "\n  User " +
                              jump.user() + "\n  IdentityFile " + jump.identity_file().string() +
                              "\n  IdentitiesOnly yes\n  UserKnownHostsFile " + jump.known_hosts_file().string() +
                              "\n  BatchMode yes\n"
                              "Host backupserver\n  HostName 127.0.0.1\n  Port " +
                              std::to_string(f.sshd().port()) + "\n  User " + f.sshd().user() + "\n  IdentityFile " +
                              f.sshd().identity_file().string() + "\n  IdentitiesOnly yes\n  UserKnownHostsFile " +
                              f.sshd().known_hosts_file().string() + "\n  ProxyJump jumpbox\n");
        const auto r = f.host_action("monitor", {"100"}, f.document(), {{"ssh_config", cfg}, {"sftp_timeout", "10"}});
        if (forwarding) {
            BOOST_TEST(r.exit_code == 0, r.err);
            BOOST_TEST(parse_monitor(r.out).size() == 3u, r.out);
        } else {
            BOOST_TEST(r.exit_code == 255);
            BOOST_TEST(r.err.find("Error monitoring datastore 100") != std::string::npos, r.err);
            BOOST_TEST(r.err.find("ProxyJump jumpbox") != std::string::npos, r.err);
        }
    }
}

namespace {

std::string read_all(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

ino_t inode_of(const std::string &path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

// docs/restic-binary.md: as stock, monitor keeps the backup server's copy of
// OpenNebula's restic (and VERSION) in step with the front end's remotes.
BOOST_AUTO_TEST_CASE(monitor_copies_opennebula_restic_to_the_backup_server_when_its_version_differs) {
    restic_fixture f;
    const std::string remotes = f.dir().file("remotes");
    const std::string front_bin = remotes + "/datastore/restic/restic";
    const std::string there = f.dir().file("var_tmp_one");
    const std::string bin = there + "/datastore/restic/restic";
    fs::create_directories(remotes + "/datastore/restic");
    fs::copy_file(tool("restic"), front_bin);
    fs::permissions(front_bin, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
    f.dir().write("remotes/VERSION", "6.10.0\n");

    // A fresh backup server gets both on the first monitor.
    auto r = f.host_action("monitor", {"100"}, f.document());
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
    BOOST_TEST(r.err.find("copying OpenNebula's restic (VERSION 6.10.0)") != std::string::npos, r.err);
    BOOST_TEST((read_all(bin) == read_all(front_bin)), bin << " differs from the front end's copy");
    BOOST_TEST(((fs::status(bin).permissions() & fs::perms::all) ==
                (fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                 fs::perms::others_exec)));
    BOOST_TEST(read_all(there + "/VERSION") == "6.10.0\n");
    for (const auto &e : fs::directory_iterator(there + "/datastore/restic"))
        BOOST_TEST(e.path().filename() == "restic", "left behind: " << e.path());
    BOOST_TEST(parse_monitor(r.out).size() == 3u, r.out);

    // The hypervisor (this machine too) now runs that copy: no PATH warning.
    f.make_vm(7, {{0, 8, 1}});
    r = f.host_action("backup", backup_args(f, 7), f.document());
    check_backup_line(r);
    BOOST_TEST(r.err.find("from its PATH") == std::string::npos, r.err);

    // In step: nothing is copied.
    const ino_t first = inode_of(bin);
    r = f.host_action("monitor", {"100"}, f.document());
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
    BOOST_TEST(r.err.find("copying") == std::string::npos, r.err);
    BOOST_TEST(inode_of(bin) == first);

    // A new front-end VERSION copies again, over the old one.
    f.dir().write("remotes/VERSION", "6.10.1\n");
    r = f.host_action("monitor", {"100"}, f.document());
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
    BOOST_TEST(r.err.find("copying OpenNebula's restic (VERSION 6.10.1)") != std::string::npos, r.err);
    BOOST_TEST(inode_of(bin) != first);
    BOOST_TEST((read_all(bin) == read_all(front_bin)));
    BOOST_TEST(read_all(there + "/VERSION") == "6.10.1\n");

    // A binary that lost its execute bit there is copied again too.
    fs::permissions(bin, fs::perms::owner_read | fs::perms::owner_write);
    r = f.host_action("monitor", {"100"}, f.document());
    BOOST_TEST(r.err.find("copying OpenNebula's restic") != std::string::npos, r.err);
    BOOST_TEST(((fs::status(bin).permissions() & fs::perms::owner_exec) != fs::perms::none));

    // A front end without OpenNebula's restic (a distribution one) copies nothing.
    fs::remove(front_bin);
    f.dir().write("remotes/VERSION", "6.10.2\n");
    r = f.host_action("monitor", {"100"}, f.document());
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
    BOOST_TEST(r.err.find("copying") == std::string::npos, r.err);
    BOOST_TEST(read_all(there + "/VERSION") == "6.10.1\n");
}

// docs/restic-binary.md: on a hypervisor OpenNebula's copy runs when it is
// there; else restic from the host's PATH, with a warning saying how to fix it.
BOOST_AUTO_TEST_CASE(backup_runs_opennebula_restic_on_the_hypervisor_else_path_restic_with_a_warning) {
    restic_fixture f;
    f.make_vm(7, {{0, 8, 1}});
    const std::string bin = f.dir().file("var_tmp_one/datastore/restic/restic");
    auto r = f.host_action("backup", backup_args(f, 7), f.document());
    check_backup_line(r);
    BOOST_TEST(
        r.err.find("restic on hypervisor: " + bin + " is not an executable file there, using ") != std::string::npos,
        r.err);
    BOOST_TEST(r.err.find("from its PATH (run `onehost sync` on the front end") != std::string::npos, r.err);
    // The front end's default is OpenNebula's copy too; without it, PATH.
    BOOST_TEST(r.err.find("restic on the front end: " + f.dir().file("remotes/datastore/restic/restic") +
                          " (OpenNebula's copy) is not an executable file, using ") != std::string::npos,
               r.err);
    BOOST_TEST(r.err.find("ONEDS_RESTIC") == std::string::npos, r.err);

    // `onehost sync` placed it: it runs, and nothing is said.
    const std::string marker = f.dir().file("ran");
    fs::create_directories(fs::path(bin).parent_path());
    f.dir().write("var_tmp_one/datastore/restic/restic",
                  "#!/bin/sh\necho \"$*\" >>" + marker + "\nexec " + tool("restic") + " \"$@\"\n");
    fs::permissions(bin, fs::perms::owner_all);
    r = f.host_action("backup", backup_args(f, 7), f.document());
    check_backup_line(r);
    BOOST_TEST(r.err.find("from its PATH") == std::string::npos, r.err);
    BOOST_TEST(read_all(marker).find("backup") != std::string::npos, read_all(marker));

    // An explicit remote_restic_bin is used as given.
    r = f.host_action("backup", backup_args(f, 7), f.document(), {{"remote_restic_bin", tool("restic")}});
    check_backup_line(r);
    const std::string ran = read_all(marker);
    BOOST_TEST(std::count(ran.begin(), ran.end(), '\n') == 1, ran);
}

BOOST_AUTO_TEST_CASE(monitor_of_an_unreachable_server_fails_with_the_reason) {
    restic_fixture f;
    const std::string cfg = f.dir().write("closed_ssh_config", "Host closed\n  HostName 127.0.0.1\n  Port 1\n");
    const auto r = f.host_action("monitor", {"100"}, f.document({{"RESTIC_SFTP_SERVER", "closed"}}),
                                 {{"ssh_config", cfg}, {"sftp_timeout", "5"}});
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("Error monitoring datastore 100") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_SUITE_END()

// restic versions that cannot be installed here, through the scripted fake.
BOOST_AUTO_TEST_SUITE(fake_restic_0_17_and_later)

BOOST_AUTO_TEST_CASE(fake_restic_exit_11_is_retried_and_full_ids_print_as_8_chars) {
    restic_fixture f;
    f.make_vm(7, {{0, 8, 1}});
    fs::create_directories(f.base_path() + "/7");
    std::ofstream(f.base_path() + "/7/config") << "fake";  // the repository exists: no init
    const std::map<std::string, std::string> cfg = {{"remote_restic_bin", FAKE_RESTIC_PATH},
                                                    {"restic_bin", FAKE_RESTIC_PATH}};
    const std::map<std::string, std::string> env = {{"FAKE_RESTIC_PASSWORD", k_password},
                                                    {"FAKE_RESTIC_EXITS", "11,11"},
                                                    {"FAKE_RESTIC_STATE", f.dir().file("state")},
                                                    {"FAKE_RESTIC_LOG", f.dir().file("log")}};
    const auto r =
        f.host_action("backup", backup_args(f, 7, "localhost"), f.document({{"RESTIC_BACKEND", "LOCAL"}}), cfg, env);
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(r.out.substr(0, 9) == "6ca565cd ");
    BOOST_TEST(r.err.find("locked by PID 4711 on node3 by oneadmin") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("retry 2/") != std::string::npos, r.err);
    // Three runs, each with the password in its own environment, not in argv.
    const auto log = read_file(f.dir().file("log"));
    BOOST_TEST(std::count(log.begin(), log.end(), '\n') == 3);
    BOOST_TEST(log.find("password=env") != std::string::npos);
    BOOST_TEST(log.find(k_password) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(fake_restic_exit_12_and_json_errors_give_the_message) {
    restic_fixture f;
    f.make_vm(7, {{0, 8, 1}});
    fs::create_directories(f.base_path() + "/7");
    std::ofstream(f.base_path() + "/7/config") << "fake";
    const std::map<std::string, std::string> cfg = {{"remote_restic_bin", FAKE_RESTIC_PATH}};
    auto r = f.host_action("backup", backup_args(f, 7, "localhost"), f.document({{"RESTIC_BACKEND", "LOCAL"}}), cfg,
                           {{"FAKE_RESTIC_PASSWORD", "other"}});
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("wrong password or no key found") != std::string::npos, r.err);
    // Exit 11 for longer than the budget: the error says so.
    r = f.host_action("backup", backup_args(f, 7, "localhost"),
                      f.document({{"RESTIC_BACKEND", "LOCAL"}, {"RESTIC_LOCK_RETRIES", "1"}}), cfg,
                      {{"FAKE_RESTIC_PASSWORD", k_password},
                       {"FAKE_RESTIC_EXITS", "11,11,11"},
                       {"FAKE_RESTIC_STATE", f.dir().file("state2")}});
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("repository still locked by PID 4711 on node3 by oneadmin") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("after 2 attempts") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_SUITE_END()
