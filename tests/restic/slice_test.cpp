#define BOOST_TEST_MODULE restic_slice
// The systemd slice confinement of the backup's restic (docs/confinement.md)
// through one_ds_host, with the real restic 0.14 and the real sshd, and
// recording stand-ins for systemd-run and systemctl --user
// (tests/support/fake_systemd.cpp): this machine has no systemd user manager.
// The stand-in runs restic the way the user manager runs a transient service
// (its own session, a clean environment plus --setenv, stdin/stdout passed
// through as --pipe does) and, like systemd-run --pipe, dies of SIGINT
// without stopping the "unit".
#include "tests/restic/restic_fixture.hpp"

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

using namespace oneds::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> backup_args(const restic_fixture &f, int vm, const std::string &host = "hypervisor") {
    return {host + ":" + f.vm_dir(vm), "0", "one-" + std::to_string(vm), "-", std::to_string(vm), "0"};
}

// The stand-ins, a unit directory and a user manager cgroup, all in the test's own scratch tree.
struct systemd_scene {
    std::string state, units, cgroup;
    std::map<std::string, std::string> cfg;

    explicit systemd_scene(const restic_fixture &f, const std::string &controllers = "cpuset cpu io memory pids") {
        state = f.dir().file("systemd-state");
        units = f.dir().file("home/.config/systemd/user");
        cgroup = f.dir().file("user@.service");
        fs::create_directories(state);
        fs::create_directories(cgroup);
        std::ofstream(cgroup + "/cgroup.controllers") << controllers << "\n";
        for (const auto &[name, mode] : {std::pair{"systemd-run", "run"}, std::pair{"systemctl", "ctl"}}) {
            const std::string path = state + "/" + name;
            std::ofstream(path) << "#!/bin/sh\nexec '" << FAKE_SYSTEMD_PATH << "' " << mode << " '" << state
                                << "' \"$@\"\n";
            fs::permissions(path, fs::perms::owner_all);
        }
        cfg = {{"systemd_run", state + "/systemd-run"},
               {"systemctl", state + "/systemctl"},
               {"systemd_unit_dir", units},
               {"systemd_user_cgroup", cgroup},
               // restic by name on both sides, so that the recorded argv is
               // restic's own (OpenNebula's copy and its PATH fallback are
               // restic_backup_test's).
               {"restic_bin", "restic"},
               {"remote_restic_bin", "restic"}};
    }

    // The recorded argv of each systemd-run, oldest first.
    std::vector<std::vector<std::string>> runs() const {
        std::vector<std::pair<fs::file_time_type, std::string>> files;
        for (const auto &e : fs::directory_iterator(state))
            if (e.path().extension() == ".argv") files.emplace_back(e.last_write_time(), e.path().string());
        std::sort(files.begin(), files.end());
        std::vector<std::vector<std::string>> out;
        for (const auto &[t, path] : files) {
            std::ifstream in(path);
            std::vector<std::string> argv;
            for (std::string line; std::getline(in, line);) argv.push_back(line);
            out.push_back(argv);
        }
        return out;
    }
    std::string systemctl_log() const {
        return fs::exists(state + "/systemctl.log") ? read_file(state + "/systemctl.log") : "";
    }

    // Every file the stand-ins and the launcher left: none may hold the password.
    void check_no_secret() const {
        for (const auto &root : {state, units})
            for (const auto &e : fs::recursive_directory_iterator(root)) {
                if (!e.is_regular_file()) continue;
                BOOST_TEST(e.path().extension() != ".secret", "the stand-in saw a secret: " << read_file(e.path()));
                const std::string text = read_file(e.path());
                BOOST_TEST(text.find(k_password) == std::string::npos, e.path() << " holds the password");
                BOOST_TEST(text.find("RESTIC_PASSWORD") == std::string::npos, e.path() << " names RESTIC_PASSWORD");
            }
    }
};

const std::map<std::string, std::optional<std::string>> k_all_four = {{"RESTIC_MAX_RIOPS", "100"},
                                                                      {"RESTIC_MAX_WIOPS", "200"},
                                                                      {"RESTIC_CPU_QUOTA", "150"},
                                                                      {"RESTIC_MEMORY_MAX_MB", "512"},
                                                                      {"RESTIC_NICE", "10"}};

std::size_t snapshot_count(const restic_fixture &f, const std::string &repo) {
    const auto r = f.restic(repo, {"snapshots", "--json", "--no-lock"});
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
    std::size_t n = 0;
    for (auto at = r.out.find("\"short_id\""); at != std::string::npos; at = r.out.find("\"short_id\"", at + 1)) ++n;
    return n;
}

}  // namespace

// A backup over ssh with all four limits: the recorded systemd-run argv, the
// slice file as stock writes it, daemon-reload, a snapshot made by the real
// restic, and the password nowhere but on restic's stdin. Then the same on
// this machine (no ssh).
BOOST_AUTO_TEST_CASE(a_backup_in_the_slice_makes_a_snapshot_and_leaks_no_secret) {
    restic_fixture f;
    systemd_scene sd(f);
    f.make_vm(7, {{0, 8, 1}});
    const std::string repo = f.base_path() + "/7";
    BOOST_TEST_REQUIRE(f.restic(repo, {"init"}).exit_code == 0);
    const auto r = f.host_action("backup", backup_args(f, 7), f.document(k_all_four), sd.cfg);
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
    BOOST_TEST(std::regex_match(r.out, std::regex("[0-9a-f]{8} [0-9]+ raw\n")), r.out);
    BOOST_TEST(snapshot_count(f, repo) == 1U);
    const auto runs = sd.runs();
    BOOST_TEST_REQUIRE(runs.size() == 1U);
    std::string shown;
    for (const auto &w : runs[0]) shown += " " + w;
    BOOST_TEST_MESSAGE("recorded systemd-run argv:" << shown);
    std::vector<std::string> argv = runs[0];
    BOOST_TEST_REQUIRE(argv.size() > 9U);
    BOOST_TEST(std::regex_match(argv[7], std::regex("--unit=oneds-backup\\.100-[0-9]+\\.service")), argv[7]);
    argv.erase(argv.begin() + 7);
    // The forwarded agent's socket, for restic's own ssh to the backup server.
    BOOST_TEST(argv[7].starts_with("--setenv=SSH_AUTH_SOCK=/"), argv[7]);
    argv.erase(argv.begin() + 7);
    BOOST_TEST_REQUIRE(argv.size() == 17U);
    const std::string bk = f.backup_dir(7);
    const std::vector<std::string> expected = {"systemd-run",
                                               "--user",
                                               "--quiet",
                                               "--pipe",
                                               "--collect",
                                               "--wait",
                                               "--slice=backup.100.slice",
                                               "--setenv=RESTIC_PROGRESS_FPS=1",
                                               "restic",
                                               "--force",
                                               "--json",
                                               "--tag=one-7",
                                               argv[12],
                                               argv[13],
                                               "backup",
                                               bk + "/disk.0.0",
                                               bk + "/vm.xml"};
    BOOST_TEST(argv == expected, boost::test_tools::per_element());
    BOOST_TEST(argv[12].starts_with("--option=sftp.command=ssh -F "), argv[12]);
    BOOST_TEST((argv[13].starts_with("--repo=sftp:") && argv[13].ends_with("@backupserver:" + repo)), argv[13]);
    BOOST_TEST(read_file(sd.units + "/backup.100.slice") == "[Slice]\nCPUQuota=150%\nMemoryMax=512M\nIOReadIOPSMax=" +
                                                                bk + " 100\nIOWriteIOPSMax=" + bk + " 200\n\n");
    BOOST_TEST(fs::exists(sd.units + "/.lock"));
    BOOST_TEST(sd.systemctl_log() == "systemctl --user daemon-reload\n");
    sd.check_no_secret();

    // On this machine: the same launcher, the password on stdin as well.
    const auto here =
        f.host_action("backup", backup_args(f, 7, "localhost"), f.document({{"RESTIC_CPU_QUOTA", "50"}}), sd.cfg);
    BOOST_TEST_REQUIRE(here.exit_code == 0, here.err);
    BOOST_TEST(snapshot_count(f, repo) == 2U);
    BOOST_TEST(sd.runs().size() == 2U);
    BOOST_TEST(read_file(sd.units + "/backup.100.slice") ==
               "[Slice]\nCPUQuota=50%\nMemoryMax=\nIOReadIOPSMax=\nIOWriteIOPSMax=\n\n");
    sd.check_no_secret();
}

// A cancel (SIGTERM to the backup action) reaches restic in the unit: the
// launcher turns the runner's SIGINT into systemctl --user kill; restic
// removes its lock and no restic is left.
BOOST_AUTO_TEST_CASE(a_cancel_reaches_restic_through_systemctl_kill) {
    restic_fixture f;
    systemd_scene sd(f);
    f.make_vm(7, {{0, 1024, 600, true}});
    const std::string repo = f.base_path() + "/7";
    BOOST_TEST_REQUIRE(f.restic(repo, {"init"}).exit_code == 0);
    spawned_process p(f.host_argv("backup", backup_args(f, 7), sd.cfg), f.document({{"RESTIC_MAX_WIOPS", "100000"}}));
    BOOST_REQUIRE(wait_for_restic_lock(repo, std::chrono::seconds(60)));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    p.send_signal(SIGTERM);
    const auto r = p.wait(std::chrono::seconds(60));
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("Backup cancelled") != std::string::npos, r.err);
    BOOST_TEST(sd.systemctl_log().find("systemctl --user kill --kill-who=main --signal=SIGINT oneds-backup.100-") !=
                   std::string::npos,
               sd.systemctl_log());
    BOOST_TEST(fs::is_empty(repo + "/locks"), "a lock was left behind");
    BOOST_TEST(snapshot_count(f, repo) == 0U);
    BOOST_TEST(own_processes_mentioning(f.backup_dir(7)).empty());
    sd.check_no_secret();
}

// restic killed inside the unit (SIGKILL, as the kernel's OOM killer under
// MemoryMax= or an admin would): systemd-run --wait says only 255; the
// backup is reported as a killed restic, its lock is removed, and the next
// backup of the VM succeeds.
BOOST_AUTO_TEST_CASE(a_restic_killed_in_the_unit_is_reported_and_its_lock_removed) {
    restic_fixture f;
    systemd_scene sd(f);
    f.make_vm(7, {{0, 1024, 600, true}});
    const std::string repo = f.base_path() + "/7";
    BOOST_TEST_REQUIRE(f.restic(repo, {"init"}).exit_code == 0);
    spawned_process p(f.host_argv("backup", backup_args(f, 7), sd.cfg), f.document({{"RESTIC_MAX_WIOPS", "100000"}}));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    pid_t restic = -1;
    while (std::chrono::steady_clock::now() < deadline && restic < 0) {
        if (!restic_lock_files(repo).empty() && fs::exists(sd.state + "/units"))
            for (const auto &e : fs::directory_iterator(sd.state + "/units")) {
                std::ifstream in(e.path());
                if (pid_t pid = -1; in >> pid && pid > 0) restic = pid;
            }
        if (restic < 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    BOOST_REQUIRE(restic > 0);
    BOOST_REQUIRE(::kill(restic, SIGKILL) == 0);
    const auto r = p.wait(std::chrono::seconds(60));
    BOOST_TEST(r.exit_code == 255);
    BOOST_TEST(r.err.find("restic was killed by signal 9") != std::string::npos, r.err);
    // The clean-up is attempted at once (a `restic unlock` bounded by 10 s);
    // under a heavy load it can miss its bound once, and then it says so.
    // Only restic's lock files count: the temporary file of a second lock
    // written as restic died is ignored by every restic (restic_lock_files).
    const bool no_lock = restic_lock_files(repo).empty();
    BOOST_TEST((no_lock || r.err.find("could not remove the stale lock of the killed restic") != std::string::npos),
               "the killed restic's lock was left without a word: " << r.err);
    // Either way the next backup finds no live holder and goes on at once.
    f.make_vm(7, {{0, 8, 1}});
    const auto started = std::chrono::steady_clock::now();
    const auto again = f.host_action("backup", backup_args(f, 7), f.document({{"RESTIC_MAX_WIOPS", "100000"}}), sd.cfg);
    BOOST_TEST(again.exit_code == 0, again.err);
    BOOST_TEST(again.err.find("repository is locked by") == std::string::npos, "waited on a dead lock: " << again.err);
    const bool quick = std::chrono::steady_clock::now() - started < std::chrono::seconds(60);
    BOOST_TEST(quick, "the next backup took a minute or more");
    BOOST_TEST(snapshot_count(f, repo) == 1U);
    BOOST_TEST(restic_lock_files(repo).empty(), "a lock was left after the next backup");
    sd.check_no_secret();
}

// An unreachable user manager, or one without the io controller, fails the
// backup naming the attribute and the fix, before anything starts; so do
// values that are not integers in range.
BOOST_AUTO_TEST_CASE(an_unusable_user_manager_or_a_bad_value_starts_nothing) {
    restic_fixture f;
    f.make_vm(7, {{0, 8, 1}});
    const std::string repo = f.base_path() + "/7";
    {
        systemd_scene sd(f);
        std::ofstream(sd.state + "/unreachable");
        const auto r = f.host_action("backup", backup_args(f, 7), f.document({{"RESTIC_CPU_QUOTA", "50"}}), sd.cfg);
        BOOST_TEST(r.exit_code == 255);
        BOOST_TEST(std::regex_search(r.err, std::regex("RESTIC_CPU_QUOTA is set but the systemd user manager of [^ ]+ "
                                                       "on hypervisor is not reachable \\(systemctl --user "
                                                       "daemon-reload: Failed to connect to bus: ")),
                   r.err);
        BOOST_TEST(r.err.find("enable lingering (loginctl enable-linger ") != std::string::npos, r.err);
        BOOST_TEST(r.err.find("/etc/systemd/system/user@.service.d/delegate.conf with Delegate=cpu cpuset io") !=
                       std::string::npos,
                   r.err);
        BOOST_TEST(sd.runs().empty());
        BOOST_TEST(!fs::exists(repo));  // not even the repository was created
        fs::remove_all(sd.state);
        fs::remove_all(f.dir().file("home"));
    }
    {
        systemd_scene sd(f, "cpu memory pids");
        const auto r = f.host_action("backup", backup_args(f, 7),
                                     f.document({{"RESTIC_CPU_QUOTA", "50"}, {"RESTIC_MAX_RIOPS", "10"}}), sd.cfg);
        BOOST_TEST(r.exit_code == 255);
        BOOST_TEST(r.err.find("RESTIC_MAX_RIOPS is set but the systemd user manager of ") != std::string::npos, r.err);
        BOOST_TEST(r.err.find("on hypervisor has no io controller delegated to it") != std::string::npos, r.err);
        BOOST_TEST(sd.runs().empty());
        BOOST_TEST(sd.systemctl_log().empty());
        fs::remove_all(sd.state);
    }
    {
        // A slice lock that cannot be opened (here a directory) is named as such.
        systemd_scene sd(f);
        fs::create_directories(sd.units + "/.lock");
        const auto r = f.host_action("backup", backup_args(f, 7), f.document({{"RESTIC_CPU_QUOTA", "50"}}), sd.cfg);
        BOOST_TEST(r.exit_code == 255);
        BOOST_TEST(r.err.find("RESTIC_CPU_QUOTA is set but the slice file of ") != std::string::npos, r.err);
        BOOST_TEST(r.err.find("could not be written: cannot open " + sd.units + "/.lock") != std::string::npos, r.err);
        BOOST_TEST(sd.runs().empty());
        BOOST_TEST(sd.systemctl_log().empty());
        fs::remove_all(sd.state);
        fs::remove_all(f.dir().file("home"));
    }
    systemd_scene sd(f);
    for (const auto &[name, value] : std::vector<std::pair<std::string, std::string>>{
             {"RESTIC_CPU_QUOTA", "half"}, {"RESTIC_MEMORY_MAX_MB", "0"}, {"RESTIC_MAX_WIOPS", "1e9"}}) {
        const auto r = f.host_action("backup", backup_args(f, 7), f.document({{name, value}}), sd.cfg);
        BOOST_TEST(r.exit_code == 255);
        BOOST_TEST(r.err.find(name + " must be an integer from 1 to ") != std::string::npos, r.err);
    }
    BOOST_TEST(sd.runs().empty());
    BOOST_TEST(!fs::exists(repo));
}
