#define BOOST_TEST_MODULE restic_actions
// The restic actions against test doubles of their ports (tests/fakes): a
// recording process runner (with the real ssh_runner over it for the ssh
// form) and an in-memory repository store. Fast and exact:
// * golden command lines: the whole argv, environment and stdin each action
//   hands to the process port, and the whole ssh command line of the ssh
//   form, pinned here (docs/stock-driver.md#restic-command-composition);
// * each branch of the backup (repository missing, locked, cancelled,
//   unreachable), decided by what the scripted restic answers.
// The real restic, sshd and qemu-img run in the integration tests beside this.
#include "plugin/restic/actions/action_env.hpp"
#include "plugin/restic/actions/backup_folder.hpp"
#include "plugin/restic/repo_ops.hpp"

#include "tests/fakes/memory_store.hpp"
#include "tests/unit/recording_host.hpp"
#include "tests/fakes/recording_runner.hpp"
#include "tests/integration/scratch_dir.hpp"

#include "adapters/ssh/ssh_runner.hpp"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stop_token>
#include <thread>
#include <string>
#include <vector>

using namespace oneds;
using namespace oneds::restic;
using test::recorded_run;
using test::scripted_result;
namespace fs = std::filesystem;

namespace {

const std::string k_vm_dir = "/var/lib/one/datastores/0/7";
const std::string k_backup_dir = k_vm_dir + "/backup";
const std::string k_repo = "/var/lib/one/datastores/100/7";
const std::string k_summary =
    R"({"message_type":"summary","snapshot_id":"6ca565cd0a1b2c3d","total_bytes_processed":5242880,"data_added":1048576})";

std::string document(const std::string &tmpl_extra = {}, const std::string &extra = "<VM><ID>7</ID></VM>") {
    return "<DS_DRIVER_ACTION_DATA><DATASTORE><ID>100</ID><BASE_PATH>/var/lib/one/datastores/100</BASE_PATH>"
           "<TEMPLATE><RESTIC_PASSWORD>p w'$x</RESTIC_PASSWORD><RESTIC_SFTP_SERVER>backup</RESTIC_SFTP_SERVER>" +
           tmpl_extra + "</TEMPLATE></DATASTORE>" + extra + "</DS_DRIVER_ACTION_DATA>";
}

// One plugin's worth of ports around the test doubles. Actions run on the
// calling thread; `stop` is the request's cancel.
struct harness : store_provider {
    test::scratch_dir dir;
    test::recording_host host;
    test::recording_runner recorder;
    std::unique_ptr<adapters::ssh::ssh_runner> ssh;  // over recorder: the ssh form
    std::shared_ptr<test::memory_store> store = std::make_shared<test::memory_store>();
    plugin_settings settings;
    version_cache versions;

    explicit harness(test::recording_runner::script s = {}) : recorder(std::move(s)) {
        settings.datastore_conf = dir.file("datastore.conf");
        settings.lock_dir = dir.file("locks");
        settings.lock_retry_interval = std::chrono::milliseconds(1);
        settings.lock_retries = 3;
        settings.kill_grace = std::chrono::milliseconds(50);
        settings.remote_restic_bin = "/var/tmp/one/datastore/restic/restic";
        adapters::ssh::ssh_options o;
        o.local_hosts.clear();
        o.connect_timeout = std::chrono::seconds(30);
        ssh = std::make_unique<adapters::ssh::ssh_runner>(recorder, o);
    }

    ports::result<std::shared_ptr<ports::repo_store>> store_for(const datastore_attributes &) override {
        return std::shared_ptr<ports::repo_store>(store);
    }

    runtime::outcome run(runtime::outcome (*action)(action_env &), const std::string &name,
                         std::vector<std::string> args, const std::string &doc, std::stop_source *stop = nullptr) {
        sdk::request req;
        req.id = 1;
        req.action = name;
        req.args = std::move(args);
        req.document = doc;
        runtime::request_context ctx(std::move(req), host.link());
        std::optional<std::stop_callback<std::function<void()>>> link;
        if (stop != nullptr) link.emplace(stop->get_token(), [&ctx] { ctx.request_cancel(); });
        action_env env{settings, *ssh, *this, ctx, nullptr, &versions, {}};
        return action(env);
    }

    std::vector<std::string> log_texts() const {
        std::vector<std::string> out;
        for (const auto &l : host.logs()) out.push_back(l.text);
        return out;
    }
};

bool logged(const harness &h, const std::string &part) {
    for (const auto &t : h.log_texts())
        if (t.find(part) != std::string::npos) return true;
    return false;
}

std::vector<std::string> backup_args(const std::string &host = "node1", const std::string &vm_dir = k_vm_dir) {
    return {host + ":" + vm_dir, "0", "one-7", "-", "7", "0"};
}

// restic backup succeeding through the ssh runner: the login shell's pid,
// the folder lister's report, restic's summary.
scripted_result backup_ok() {
    scripted_result r;
    r.stderr_lines = {"ONEDS_PID=4242"};
    r.stdout_lines = {"ONEDS_DISK=" + k_backup_dir + "/disk.0.0", k_summary};
    return r;
}

std::string remote_line(const recorded_run &r) { return r.cmd.argv.back(); }

// The backup folder lister and the slice launcher as the remote line quotes them.
const std::string k_lister_quoted =
    R"q('d=$1; shift; for f in "$d"/disk.*; do [ -e "$f" ] || { printf "ONEDS_MISSING=%s/disk.*\n" "$d")q"
    R"q(; exit 1; }; break; done; [ -e "$d/vm.xml" ] || { printf "ONEDS_MISSING=%s/vm.xml\n" "$d"; exit)q"
    R"q( 1; }; printf "ONEDS_DISK=%s\n" "$d"/disk.*; exec "$@" "$d"/disk.* "$d/vm.xml"')q";
const std::string k_slice_launcher_quoted =
    R"q('sr=$1 sc=$2 dir=${3:-$HOME/.config/systemd/user} cg=$4 slice=$5 conf=$6 need=$7; shift 7; me=$(id)q"
    R"q( -un); uid=$(id -u); fail() { printf "ONEDS_SLICE_ERROR=%s:%s:%s\n" "$1" "$me" "$2"; exit 1; }; [ )q"
    R"q(-n "$XDG_RUNTIME_DIR" ] || { XDG_RUNTIME_DIR=/run/user/$uid; export XDG_RUNTIME_DIR; }; [ -n "$cg")q"
    R"q( ] || cg=/sys/fs/cgroup/user.slice/user-$uid.slice/user@$uid.service; if [ -r "$cg/cgroup.controll)q"
    R"q(ers" ]; then have=" $(cat "$cg/cgroup.controllers") "; miss=; for c in $need; do case $have in *" )q"
    R"q($c "*) ;; *) miss="$miss $c";; esac; done; [ -z "$miss" ] || fail controllers "${miss# }"; fi; mkd)q"
    R"q(ir -p "$dir" || fail write "cannot create $dir"; ( : >>"$dir/.lock" ) 2>/dev/null || fail write "c)q"
    R"q(annot open $dir/.lock"; ( flock -w 180 9; r=$?; [ "$r" -eq 0 ] || { [ "$r" -eq 1 ] && fail lock "$)q"
    R"q(dir/.lock"; fail write "flock failed (exit $r) on $dir/.lock"; }; printf %s "$conf" >"$dir/$slice")q"
    R"q( || fail write "cannot write $dir/$slice"; out=$("$sc" --user daemon-reload </dev/null 2>&1) || fa)q"
    R"q(il manager "$(printf %s "$out" | tr "\n" " ")" ) 9>"$dir/.lock" || exit 1; u=oneds-${slice%.slice})q"
    R"q(-$$.service; p=; c=; g=; stop() { c=1; g=1; [ -n "$p" ] || return 0; n=0; until "$sc" --user kill )q"
    R"q(--kill-who=main --signal=SIGINT "$u" </dev/null >/dev/null 2>&1; do n=$((n+1)); [ "$n" -lt 10 ] &&)q"
    R"q( kill -0 "$p" 2>/dev/null || break; sleep 1; done; }; trap stop INT TERM; exec 3<&0; [ -z "$c" ] |)q"
    R"q(| exit 130; "$sr" --user --quiet --pipe --collect --wait --slice="$slice" --unit="$u" ${SSH_AUTH_S)q"
    R"q(OCK:+"--setenv=SSH_AUTH_SOCK=$SSH_AUTH_SOCK"} "$@" <&3 3<&- & p=$!; exec 3<&-; [ -z "$c" ] || stop)q"
    R"q(; while :; do g=; wait "$p"; rc=$?; [ -n "$g" ] || break; done; [ "$rc" -ne 255 ] || rc=137; exit )q"
    R"q($rc')q";

}  // namespace

BOOST_AUTO_TEST_SUITE(golden_command_lines)

// The whole ssh command of a backup on a hypervisor, as the front end starts
// it: options, destination after "--", and the remote line that lists the
// disks, reports the pid and execs nice/ionice/restic; the password on stdin.
BOOST_AUTO_TEST_CASE(backup_over_ssh) {
    harness h([](const recorded_run &, std::size_t) { return backup_ok(); });
    const auto out = h.run(&backup_action, "backup", backup_args(),
                           document("<RESTIC_NICE>10</RESTIC_NICE><RESTIC_IONICE>5</RESTIC_IONICE>"
                                    "<RESTIC_BWLIMIT>2048</RESTIC_BWLIMIT>"));
    BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
    BOOST_TEST(out.info == "6ca565cd 5 raw\n");
    const auto runs = h.recorder.runs();
    BOOST_TEST_REQUIRE(runs.size() == 1U);
    const std::vector<std::string> ssh = {
        "ssh",
        "-T",
        "-o",
        "BatchMode=yes",
        "-o",
        "ControlMaster=no",
        "-o",
        "ControlPath=none",
        "-o",
        "ForwardAgent=yes",
        "-o",
        "ConnectTimeout=30",
        "--",
        "node1",
        "echo ONEDS_PID=$$ >&2; exec 'env' 'RESTIC_PROGRESS_FPS=1' 'sh' '-c' "
        "'d=$1; shift; for f in \"$d\"/disk.*; do [ -e \"$f\" ] || { printf \"ONEDS_MISSING=%s/disk.*\\n\" \"$d\"; "
        "exit 1; }; break; done; [ -e \"$d/vm.xml\" ] || { printf \"ONEDS_MISSING=%s/vm.xml\\n\" \"$d\"; exit 1; }; "
        "printf \"ONEDS_DISK=%s\\n\" \"$d\"/disk.*; exec \"$@\" \"$d\"/disk.* \"$d/vm.xml\"' "
        "'oneds-backup' '" +
            k_backup_dir +
            "' 'nice' '-n' '10' 'ionice' '-c2' '-n5' '/var/tmp/one/datastore/restic/restic' '--force' '--json' "
            "'--tag=one-7' '--limit-upload=2048' '--limit-download=2048' "
            "'--repo=sftp:oneadmin@backup:" +
            k_repo + "' 'backup'"};
    BOOST_TEST(runs[0].host == "");
    BOOST_TEST(runs[0].cmd.argv == ssh, boost::test_tools::per_element());
    BOOST_TEST(runs[0].cmd.stdin_data == "p w'$x\n");
    BOOST_TEST(runs[0].cmd.env.empty());  // nothing secret on the remote line
}

// The same backup in a systemd slice (all four limits set; the slice wins
// over nice and ionice): the lister execs the slice launcher (constant
// script, values as positional parameters), which rewrites the slice file
// under flock, reloads the user manager and runs restic through systemd-run;
// the password on stdin, nothing secret on the line (docs/confinement.md).
BOOST_AUTO_TEST_CASE(backup_over_ssh_in_a_systemd_slice) {
    harness h([](const recorded_run &, std::size_t) { return backup_ok(); });
    const auto out = h.run(&backup_action, "backup", backup_args(),
                           document("<RESTIC_NICE>10</RESTIC_NICE><RESTIC_IONICE>5</RESTIC_IONICE>"
                                    "<RESTIC_MAX_RIOPS>100</RESTIC_MAX_RIOPS><RESTIC_MAX_WIOPS>200</RESTIC_MAX_WIOPS>"
                                    "<RESTIC_CPU_QUOTA>150</RESTIC_CPU_QUOTA>"
                                    "<RESTIC_MEMORY_MAX_MB>512</RESTIC_MEMORY_MAX_MB>"));
    BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
    BOOST_TEST(out.info == "6ca565cd 5 raw\n");
    const auto runs = h.recorder.runs();
    BOOST_TEST_REQUIRE(runs.size() == 1U);
    const std::string line = "echo ONEDS_PID=$$ >&2; exec 'sh' '-c' " + k_lister_quoted + " 'oneds-backup' '" +
                             k_backup_dir + "' 'sh' '-c' " + k_slice_launcher_quoted +
                             " 'oneds-slice' 'systemd-run' 'systemctl' '' '' 'backup.100.slice' "
                             "'[Slice]\nCPUQuota=150%\nMemoryMax=512M\nIOReadIOPSMax=" +
                             k_backup_dir + " 100\nIOWriteIOPSMax=" + k_backup_dir +
                             " 200\n\n' 'cpu memory io' '--setenv=RESTIC_PROGRESS_FPS=1' "
                             "'/var/tmp/one/datastore/restic/restic' '--force' '--json' '--tag=one-7' "
                             "'--repo=sftp:oneadmin@backup:" +
                             k_repo + "' 'backup'";
    BOOST_TEST(runs[0].cmd.argv.back() == line);
    BOOST_TEST(runs[0].cmd.stdin_data == "p w'$x\n");
    BOOST_TEST(runs[0].cmd.env.empty());
    BOOST_TEST(logged(h,
                      "restic runs in the systemd slice backup.100.slice (RESTIC_MAX_RIOPS, RESTIC_MAX_WIOPS, "
                      "RESTIC_CPU_QUOTA, RESTIC_MEMORY_MAX_MB)"));
}

// The launcher reports an unusable user manager before restic starts: the
// backup fails naming the attributes and the fix, with no retry and no unlock.
BOOST_AUTO_TEST_CASE(an_unreachable_user_manager_fails_the_backup_naming_the_attribute) {
    harness h([](const recorded_run &, std::size_t) {
        scripted_result s;
        s.exit_code = 1;
        s.stderr_lines = {"ONEDS_PID=9"};
        s.stdout_lines = {"ONEDS_DISK=" + k_backup_dir + "/disk.0.0",
                          "ONEDS_SLICE_ERROR=manager:oneadmin:Failed to connect to bus: No medium found "};
        return s;
    });
    const auto out =
        h.run(&backup_action, "backup", backup_args(), document("<RESTIC_MEMORY_MAX_MB>512</RESTIC_MEMORY_MAX_MB>"));
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(out.error ==
                   "RESTIC_MEMORY_MAX_MB is set but the systemd user manager of oneadmin on node1 is not reachable "
                   "(systemctl --user daemon-reload: Failed to connect to bus: No medium found); enable lingering "
                   "(loginctl enable-linger oneadmin) and delegate the controllers: "
                   "/etc/systemd/system/user@.service.d/delegate.conf with Delegate=cpu cpuset io memory",
               out.error);
    BOOST_TEST(h.recorder.runs().size() == 1U);
}

// The same backup on this machine (LAST_BRIDGE names a local host): no ssh,
// the folder listed here (disks in byte order, then vm.xml), the password in
// restic's own environment only.
BOOST_AUTO_TEST_CASE(backup_here) {
    harness h([](const recorded_run &, std::size_t) {
        scripted_result r;
        r.stdout_lines = {k_summary};
        return r;
    });
    const std::string vm_dir = h.dir.file("7");
    const std::string bk = vm_dir + "/backup";
    fs::create_directories(bk);
    for (const char *name : {"disk.1.rbd2", "disk.0.0", "vm.xml", "Disk.2.0", "xdisk.3"})
        std::ofstream(bk + "/" + name);
    const auto out = h.run(&backup_action, "backup", backup_args("localhost", vm_dir), document());
    BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
    BOOST_TEST(out.info == "6ca565cd 5 raw\n");  // the first disk, disk.0.0, names the format
    const auto runs = h.recorder.runs();
    BOOST_TEST_REQUIRE(runs.size() == 1U);
    const std::vector<std::string> argv = {"/var/tmp/one/datastore/restic/restic",
                                           "--force",
                                           "--json",
                                           "--tag=one-7",
                                           "--repo=sftp:oneadmin@backup:" + k_repo,
                                           "backup",
                                           bk + "/disk.0.0",
                                           bk + "/disk.1.rbd2",
                                           bk + "/vm.xml"};
    BOOST_TEST(runs[0].host == "");
    BOOST_TEST(runs[0].cmd.argv == argv, boost::test_tools::per_element());
    BOOST_TEST(runs[0].cmd.env.at("RESTIC_PASSWORD") == "p w'$x");
    BOOST_TEST(runs[0].cmd.secret_env == std::vector<std::string>{"RESTIC_PASSWORD"}, boost::test_tools::per_element());
    BOOST_TEST(runs[0].cmd.stdin_data.empty());
}

// A backup folder without disks or without vm.xml starts no restic, here or
// on a hypervisor (where the lister reports it and exits before restic).
BOOST_AUTO_TEST_CASE(an_incomplete_backup_folder_starts_no_restic) {
    harness here;
    const std::string vm_dir = here.dir.file("7");
    const std::string bk = vm_dir + "/backup";
    auto out = here.run(&backup_action, "backup", backup_args("localhost", vm_dir), document());
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(out.error == "Backup folder " + bk + " is not ready: no file " + bk + "/disk.*", out.error);
    fs::create_directories(bk);
    std::ofstream(bk + "/disk.0.0");
    out = here.run(&backup_action, "backup", backup_args("localhost", vm_dir), document());
    BOOST_TEST(out.error == "Backup folder " + bk + " is not ready: no file " + bk + "/vm.xml", out.error);
    BOOST_TEST(here.recorder.runs().empty());

    harness there([](const recorded_run &, std::size_t) {
        scripted_result s;
        s.exit_code = 1;
        s.stderr_lines = {"ONEDS_PID=9"};
        s.stdout_lines = {"ONEDS_MISSING=" + k_backup_dir + "/vm.xml"};
        return s;
    });
    out = there.run(&backup_action, "backup", backup_args(), document());
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(
        out.error == "Backup folder " + k_backup_dir + " is not ready: no file " + k_backup_dir + "/vm.xml on node1",
        out.error);
    BOOST_TEST(there.recorder.runs().size() == 1U);  // no retry, no unlock
}

// The lister's report of a rerun (here after a lock wait) is not taken for
// more disks: the first disk still names the format.
BOOST_AUTO_TEST_CASE(a_rerun_repeats_the_listing_without_adding_disks) {
    lister_report r;
    BOOST_TEST(r.take("ONEDS_DISK=/b/disk.1.rbd2"));
    BOOST_TEST(r.take("ONEDS_DISK=/b/disk.2.0"));
    BOOST_TEST(r.take("ONEDS_DISK=/b/disk.1.rbd2"));  // the rerun
    BOOST_TEST(r.take("ONEDS_DISK=/b/disk.2.0"));
    BOOST_TEST(!r.take(k_summary));
    BOOST_TEST(r.files().disks == (std::vector<std::string>{"/b/disk.1.rbd2", "/b/disk.2.0"}),
               boost::test_tools::per_element());
    BOOST_TEST(r.files().missing.empty());
}

// rm on the backup server: the snapshot query, then forget with prune,
// against the repository's local path there (no sftp.command).
BOOST_AUTO_TEST_CASE(rm_on_the_backup_server) {
    harness h([](const recorded_run &r, std::size_t) {
        scripted_result s;
        s.stderr_lines = {"ONEDS_PID=77"};
        if (remote_line(r).find("'snapshots'") != std::string::npos)
            s.stdout_lines = {R"([{"id":"0123abcd99","short_id":"0123abcd","time":"t","paths":["/d/disk.0.0"]}])"};
        return s;
    });
    const std::string image = "<IMAGE><ID>42</ID><SOURCE>0123abcd</SOURCE><VMS><ID>7</ID></VMS></IMAGE>";
    const auto out = h.run(&rm_action, "rm", {"42"}, document({}, image));
    BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
    const auto runs = h.recorder.runs();
    BOOST_TEST_REQUIRE(runs.size() == 2U);
    const std::string prefix =
        "echo ONEDS_PID=$$ >&2; exec 'env' 'RESTIC_PROGRESS_FPS=1' "
        "'/var/tmp/one/datastore/restic/restic' ";
    BOOST_TEST(runs[0].cmd.argv.at(runs[0].cmd.argv.size() - 2) == "oneadmin@backup");
    BOOST_TEST(remote_line(runs[0]) == prefix + "'--no-lock' '--json' '--repo=" + k_repo + "' 'snapshots' '0123abcd'");
    BOOST_TEST(remote_line(runs[1]) ==
               prefix + "'--prune' '--max-unused=0' '--repo=" + k_repo + "' 'forget' '0123abcd'");
}

// stat on the front end: restic dump of vm.xml with the sftp: URL and, with an
// ssh config, sftp.command carrying it.
BOOST_AUTO_TEST_CASE(stat_on_the_front_end) {
    harness h([](const recorded_run &, std::size_t) {
        scripted_result s;
        // base64 of <VM><TEMPLATE><DISK><DISK_ID>0</DISK_ID><SIZE>2048</SIZE></DISK></TEMPLATE></VM>
        s.stdout_lines = {"PFZNPjxURU1QTEFURT48RElTSz48RElTS19JRD4wPC9ESVNLX0lEPjxTSVpF",
                          "PjIwNDg8L1NJWkU+PC9ESVNLPjwvVEVNUExBVEU+PC9WTT4="};
        return s;
    });
    h.settings.ssh_config = "/etc/one/ssh_config";
    h.settings.restic_bin = "/var/lib/one/remotes/datastore/restic/restic";
    const std::string url = "restic://100//0:0123abcd" + k_backup_dir + "/disk.0.0";
    const auto out = h.run(&stat_action, "stat", {"-1"}, document({}, "<IMAGE><PATH>" + url + "</PATH></IMAGE>"));
    BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
    BOOST_TEST(out.info == "2048\n");
    const auto runs = h.recorder.runs();
    BOOST_TEST_REQUIRE(runs.size() == 1U);
    const std::vector<std::string> argv = {
        "/var/lib/one/remotes/datastore/restic/restic",
        "--quiet",
        "--option=sftp.command=ssh -F /etc/one/ssh_config -o BatchMode=yes -l oneadmin backup -s sftp",
        "--repo=sftp:oneadmin@backup:" + k_repo,
        "dump",
        "0123abcd",
        k_backup_dir + "/vm.xml"};
    BOOST_TEST(runs[0].cmd.argv == argv, boost::test_tools::per_element());
    BOOST_TEST(runs[0].cmd.env.at("RESTIC_PASSWORD") == "p w'$x");
}

// monitor asks the storage only: no process at all.
BOOST_AUTO_TEST_CASE(monitor_uses_the_storage_port_only) {
    harness h;
    const auto out = h.run(&monitor_action, "monitor", {"100"}, document());
    BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
    BOOST_TEST(out.info == "USED_MB=262144\nTOTAL_MB=1048576\nFREE_MB=524288\n");
    BOOST_TEST(h.recorder.runs().empty());
    BOOST_TEST(h.store->calls == (std::vector<std::string>{"mkdir /var/lib/one/datastores/100",
                                                           "statvfs /var/lib/one/datastores/100"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(backup_branches)

// No repository yet: the store is asked, restic init runs on the front end
// (sftp: URL), and the backup runs again.
BOOST_AUTO_TEST_CASE(a_missing_repository_is_created_and_the_backup_runs_again) {
    harness h([](const recorded_run &r, std::size_t i) {
        if (i == 0) {
            scripted_result s;
            s.exit_code = 1;
            s.stdout_lines = {"ONEDS_DISK=" + k_backup_dir + "/disk.0.0"};
            s.stderr_lines = {"ONEDS_PID=1", "Fatal: unable to open config file: Stat: file does not exist",
                              "Is there a repository at the following location?"};
            return s;
        }
        if (r.cmd.argv.back() == "init") return scripted_result{};
        return backup_ok();
    });
    const auto out = h.run(&backup_action, "backup", backup_args(), document());
    BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
    const auto runs = h.recorder.runs();
    BOOST_TEST_REQUIRE(runs.size() == 3U);
    BOOST_TEST(runs[1].host == "");
    BOOST_TEST(
        runs[1].cmd.argv == (std::vector<std::string>{"restic", "--repo=sftp:oneadmin@backup:" + k_repo, "init"}),
        boost::test_tools::per_element());
    BOOST_TEST(runs[1].cmd.env.at("RESTIC_PASSWORD") == "p w'$x");
    BOOST_TEST(remote_line(runs[2]) == remote_line(runs[0]));
    BOOST_TEST(h.store->calls.size() == 2U);  // config probed before and after the init lock
    BOOST_TEST(logged(h, "no repository at sftp:oneadmin@backup:" + k_repo + " yet, creating it"));
}

// docs/restic-binary.md: with the default remote_restic_bin, the hypervisor
// runs OpenNebula's copy through the constant picker, in the same ssh; the
// picker's word that it used PATH becomes a warning, its word that there is
// no restic at all an error naming the host, both places and `onehost sync`.
BOOST_AUTO_TEST_CASE(the_default_hypervisor_restic_falls_back_to_path_with_a_warning_or_fails_saying_why) {
    const std::string ours = "/var/tmp/one/datastore/restic/restic";
    harness from_path([](const recorded_run &, std::size_t) {
        auto r = backup_ok();
        r.stderr_lines.push_back("ONEDS_RESTIC_FROM_PATH=/usr/bin/restic");
        return r;
    });
    from_path.settings.remote_restic_bin_set = false;
    auto out = from_path.run(&backup_action, "backup", backup_args(), document());
    BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
    const auto runs = from_path.recorder.runs();
    BOOST_TEST_REQUIRE(runs.size() == 1U);
    BOOST_TEST(remote_line(runs[0]).find("'oneds-restic' '" + ours + "' '--force'") != std::string::npos,
               remote_line(runs[0]));
    BOOST_TEST(logged(from_path, "restic on node1: " + ours +
                                     " is not an executable file there, using /usr/bin/restic from its PATH (run "
                                     "`onehost sync` on the front end"));

    harness none([](const recorded_run &, std::size_t) {
        scripted_result s;
        s.exit_code = 127;
        s.stdout_lines = {"ONEDS_DISK=" + k_backup_dir + "/disk.0.0"};
        s.stderr_lines = {"ONEDS_PID=1", "ONEDS_RESTIC_MISSING=/var/tmp/one/datastore/restic/restic"};
        return s;
    });
    none.settings.remote_restic_bin_set = false;
    out = none.run(&backup_action, "backup", backup_args(), document());
    BOOST_TEST(out.status != ONEDS_OK);
    BOOST_TEST(out.error.find("no restic on node1: " + ours +
                              " is not an executable file and restic is not on its PATH (run `onehost sync`") !=
                   std::string::npos,
               out.error);
    BOOST_TEST(out.error.find("ONEDS_") == std::string::npos, out.error);
    BOOST_TEST(none.recorder.runs().size() == 1U);
}

// A lock conflict with a holder that cannot be checked from here is waited
// for (retried); nothing else is retried.
BOOST_AUTO_TEST_CASE(a_lock_is_waited_for_and_a_read_only_storage_is_not) {
    harness locked([](const recorded_run &r, std::size_t i) {
        if (remote_line(r).ends_with("'uname' '-n'")) {  // the stale-lock look at the site's host name
            scripted_result s;
            s.stderr_lines = {"ONEDS_PID=2"};
            s.stdout_lines = {"node1"};
            return s;
        }
        if (i >= 2) return backup_ok();
        scripted_result s;
        s.exit_code = 11;
        s.stderr_lines = {"ONEDS_PID=1",
                          "unable to create lock in backend: repository is already locked exclusively by PID 99 on "
                          "far-away by oneadmin (UID 1, GID 1)",
                          "lock was created at 2025-01-02 03:04:05 (1m2s ago)"};
        return s;
    });
    auto out = locked.run(&backup_action, "backup", backup_args(), document());
    BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
    BOOST_TEST(logged(locked, "repository is locked by PID 99 on far-away by oneadmin"));
    BOOST_TEST(logged(locked, "which is not checked from here"));
    BOOST_TEST(logged(locked, "retry 1/3"));

    harness read_only([](const recorded_run &, std::size_t) {
        scripted_result s;
        s.exit_code = 1;
        s.stderr_lines = {"ONEDS_PID=1", "open /r/locks/x-tmp-1: read-only file system",
                          "unable to create lock in backend"};
        return s;
    });
    out = read_only.run(&backup_action, "backup", backup_args(), document());
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(out.error.find("the repository's storage is read-only") != std::string::npos, out.error);
    BOOST_TEST(read_only.recorder.runs().size() == 1U);
}

// A cancelled backup is followed by restic unlock on the same host, also when
// the request's token has stopped.
BOOST_AUTO_TEST_CASE(a_cancelled_backup_is_followed_by_unlock_where_it_ran) {
    std::stop_source stop;
    harness h([&stop](const recorded_run &, std::size_t i) {
        scripted_result s;
        s.stderr_lines = {"ONEDS_PID=5"};
        if (i == 0) {
            stop.request_stop();
            s.exit_code = 130;
            s.cancelled = true;
        }
        return s;
    });
    const auto out = h.run(&backup_action, "backup", backup_args(), document(), &stop);
    BOOST_TEST(out.status == ONEDS_ERR_CANCELLED);
    BOOST_TEST(out.error == "Backup cancelled");
    const auto runs = h.recorder.runs();
    // The backup, the remote kill -INT (the ssh runner's cancel), the unlock.
    bool unlocked = false;
    for (const auto &r : runs)
        if (r.cmd.argv.size() > 2 && r.cmd.argv[r.cmd.argv.size() - 2] == "node1" &&
            remote_line(r).ends_with("'--repo=sftp:oneadmin@backup:" + k_repo + "' 'unlock'")) {
            unlocked = true;
            BOOST_TEST(!r.stop_requested_at_start, "the unlock must not run with the request's stopped token");
        }
    BOOST_TEST(unlocked, "no restic unlock on node1 after the cancel");
}

// restic on the hypervisor cannot open the repository without saying why:
// the front end's own look at the storage is added.
BOOST_AUTO_TEST_CASE(an_unreachable_repository_gets_the_front_ends_view) {
    harness h([](const recorded_run &, std::size_t) {
        scripted_result s;
        s.exit_code = 1;
        s.stdout_lines = {"ONEDS_DISK=" + k_backup_dir + "/disk.0.0"};
        s.stderr_lines = {"ONEDS_PID=1",
                          "Fatal: unable to open repository at sftp:oneadmin@backup:/r: unable to start the sftp "
                          "session, error: read |0: file already closed"};
        return s;
    });
    h.store->failure = ports::error{ports::error_kind::unreachable, "cannot connect to backup:22: Connection refused"};
    const auto out = h.run(&backup_action, "backup", backup_args(), document());
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(out.error.find("Error backing up VM 7 to sftp:oneadmin@backup:" + k_repo + " on node1: ") == 0u,
               out.error);
    BOOST_TEST(
        out.error.find("(from the front end: cannot connect to backup:22: Connection refused)") != std::string::npos,
        out.error);
}

BOOST_AUTO_TEST_SUITE_END()

// A cancel that arrives after restic has made the snapshot does not turn
// the finished backup into "cancelled": the snapshot exists and is reported.
BOOST_AUTO_TEST_CASE(a_stop_after_restic_succeeded_keeps_the_backup) {
    std::stop_source stop;
    harness h([&stop](const recorded_run &, std::size_t) {
        stop.request_stop();
        return backup_ok();
    });
    const auto out = h.run(&backup_action, "backup", backup_args(), document(), &stop);
    BOOST_TEST(out.status == ONEDS_OK, out.error);
    BOOST_TEST(out.info == "6ca565cd 5 raw\n");
}

// The lock retry decorator on its own, over the recording runner.
BOOST_AUTO_TEST_SUITE(lock_retry)

namespace {

scripted_result locked_by(const std::string &pid) {
    scripted_result s;
    s.exit_code = 1;
    s.stderr_lines = {"unable to create lock in backend: repository is already locked exclusively by PID " + pid +
                          " on node3 by oneadmin (UID 1, GID 1)",
                      "lock was created at 2025-01-02 03:04:05 (1m2s ago)"};
    return s;
}

struct retry_case {
    std::vector<std::string> logs;
    lock_retrying_runner::settings settings(unsigned retries, std::chrono::milliseconds interval) {
        return {lock_policy{retries, interval},
                {},
                "snapshots of image 3",
                [this](char, const std::string &t) { logs.push_back(t); },
                "s3cr3t"};
    }
};

}  // namespace

// A live holder is waited for within the budget; then the lock error stands.
BOOST_AUTO_TEST_CASE(a_live_holder_is_waited_for_within_the_budget) {
    test::recording_runner inner([](const recorded_run &, std::size_t) { return locked_by("99"); });
    retry_case c;
    lock_retrying_runner runner(inner, c.settings(2, std::chrono::milliseconds(1)));
    const auto res = runner.run("", ports::command{{"restic", "snapshots"}, {}, {}, {}}, {});
    BOOST_TEST_REQUIRE(res.has_value());
    BOOST_TEST(res->exit_code == 1);
    BOOST_TEST(runner.attempts() == 3U);
    BOOST_TEST(inner.runs().size() == 3U);
    BOOST_TEST_REQUIRE(c.logs.size() == 2U);
    BOOST_TEST(c.logs[0] ==
                   "snapshots of image 3: repository is locked by PID 99 on node3 by oneadmin, created "
                   "2025-01-02 03:04:05 (1m2s ago); retry 1/2 in 1 ms",
               c.logs[0]);
}

// A holder found dead is removed and restic runs again at once (the interval
// is an hour: a wait would not end); each holder is looked at once only.
BOOST_AUTO_TEST_CASE(a_stale_holder_is_removed_and_restic_runs_again_at_once) {
    test::recording_runner inner([](const recorded_run &, std::size_t i) {
        return i == 0 ? locked_by("41") : i == 1 ? locked_by("42") : scripted_result{};
    });
    retry_case c;
    auto s = c.settings(5, std::chrono::hours(1));
    std::vector<std::string> looked_at;
    s.inspect = [&looked_at](const lock_holder &h, const std::stop_token &) {
        looked_at.push_back(h.pid);
        return lock_check{lock_check::verdict::removed, "process " + h.pid + " is gone from node3"};
    };
    lock_retrying_runner runner(inner, s);
    const auto res = runner.run("", ports::command{{"restic", "snapshots"}, {}, {}, {}}, {});
    BOOST_TEST_REQUIRE(res.has_value());
    BOOST_TEST(res->exit_code == 0);
    BOOST_TEST(runner.attempts() == 3U);
    BOOST_TEST(looked_at == (std::vector<std::string>{"41", "42"}), boost::test_tools::per_element());
    BOOST_TEST(c.logs.size() == 2U);
    BOOST_TEST(c.logs[1].find("removed the stale lock of PID 42") != std::string::npos, c.logs[1]);
}

// Not a lock, not retried; a stop during the wait ends it with the last
// result marked cancelled.
BOOST_AUTO_TEST_CASE(only_locks_are_retried_and_a_stop_ends_the_wait) {
    test::recording_runner read_only([](const recorded_run &, std::size_t) {
        scripted_result s;
        s.exit_code = 1;
        s.stderr_lines = {"open /r/locks/x-tmp-1: read-only file system", "unable to create lock in backend"};
        return s;
    });
    retry_case c;
    lock_retrying_runner once(read_only, c.settings(5, std::chrono::milliseconds(1)));
    BOOST_TEST(once.run("", ports::command{{"restic", "snapshots"}, {}, {}, {}}, {})->exit_code == 1);
    BOOST_TEST(once.attempts() == 1U);

    std::stop_source stop;
    test::recording_runner inner([&stop](const recorded_run &, std::size_t) {
        std::thread([&stop] {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            stop.request_stop();
        }).detach();
        return locked_by("99");
    });
    lock_retrying_runner waiting(inner, c.settings(5, std::chrono::hours(1)));
    ports::run_options opts;
    opts.stop = stop.get_token();
    const auto res = waiting.run("", ports::command{{"restic", "snapshots"}, {}, {}, {}}, opts);
    BOOST_TEST_REQUIRE(res.has_value());
    BOOST_TEST(res->cancelled);
    BOOST_TEST(inner.runs().size() == 1U);
}

// The password never reaches a LOG line, even if restic echoed it.
BOOST_AUTO_TEST_CASE(the_secret_is_redacted_from_what_is_logged) {
    test::recording_runner inner([](const recorded_run &, std::size_t i) {
        if (i > 0) return scripted_result{};
        auto s = locked_by("99");
        s.stderr_lines[0] =
            "unable to create lock in backend: repository is already locked exclusively by PID 99 on "
            "s3cr3t by oneadmin (UID 1, GID 1)";
        return s;
    });
    retry_case c;
    lock_retrying_runner runner(inner, c.settings(5, std::chrono::milliseconds(1)));
    BOOST_TEST(runner.run("", ports::command{{"restic", "snapshots"}, {}, {}, {}}, {})->exit_code == 0);
    BOOST_TEST_REQUIRE(c.logs.size() == 1U);
    BOOST_TEST(c.logs[0].find("s3cr3t") == std::string::npos, c.logs[0]);
    BOOST_TEST(c.logs[0].find("[REDACTED]") != std::string::npos, c.logs[0]);
}

BOOST_AUTO_TEST_SUITE_END()
