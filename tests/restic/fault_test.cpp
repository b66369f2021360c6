#define BOOST_TEST_MODULE restic_faults
// Hostile input and faults through one_ds_host, with the real restic 0.14, a
// real sshd on loopback and real qemu-img: values that would become ssh
// options start nothing; a cancel stops only the backup it names; locks left
// by killed processes do not block later work; a read-only or full storage is
// reported as such and not waited on; a killed restic says so.
#include "tests/restic/restore_stock_repo.hpp"

#include "common/base64.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <filesystem>
#include <future>
#include <regex>
#include <thread>

using namespace oneds::test;
namespace fs = std::filesystem;

namespace {

std::string describe(const process_result &r) {
    return "exit " + std::to_string(r.exit_code) + (r.killed ? " (killed after the time limit)" : "") +
           "\n--- stdout ---\n" + r.out + "\n--- stderr ---\n" + r.err;
}

std::vector<std::string> backup_args(const restic_fixture &f, int vm, const std::string &host = "hypervisor") {
    return {host + ":" + f.vm_dir(vm), "0", "one-" + std::to_string(vm), "-", std::to_string(vm), "0"};
}

bool has_lock(const std::string &repo) { return !restic_lock_files(repo).empty(); }

std::size_t snapshot_count(const restic_fixture &f, const std::string &repo) {
    return stock::snapshots(f, repo).size();
}

// Programs that only write down that they ran: put first in PATH and named
// as the restic binaries, they show whether anything was started at all.
struct recorders {
    std::string dir, log;
    explicit recorders(const restic_fixture &f) : dir(f.dir().file("recorders")), log(f.dir().file("started.log")) {
        fs::create_directories(dir);
        for (const char *name : {"ssh", "restic", "ps", "grep", "kill", "uname"}) {
            const std::string p = dir + "/" + name;
            f.dir().write("recorders/" + std::string(name), "#!/bin/sh\necho \"$0 $*\" >> '" + log + "'\nexit 1\n");
            fs::permissions(p, fs::perms::owner_all);
        }
    }
    std::map<std::string, std::string> cfg() const {
        return {{"restic_bin", dir + "/restic"}, {"remote_restic_bin", dir + "/restic"}};
    }
    std::map<std::string, std::string> env() const {
        const char *path = std::getenv("PATH");
        return {{"PATH", dir + ":" + (path != nullptr ? path : "/usr/bin:/bin")}};
    }
    std::string started() const { return read_file(log); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(hostile_attributes)

// Values that restic would split (sftp.command is split on every Unicode
// white space) or ssh would read as options: each is refused naming the
// attribute, by every action, before anything is started.
BOOST_AUTO_TEST_CASE(a_server_or_user_that_would_become_ssh_options_starts_nothing) {
    restic_fixture f;
    f.make_vm(7, {{0, 8, 1}});
    const recorders rec(f);
    const std::string inject = "-oProxyCommand=touch " + f.dir().file("pwned");
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"RESTIC_SFTP_SERVER", "backupserver\xe2\x80\xa8" + inject},  // U+2028 LINE SEPARATOR
        {"RESTIC_SFTP_SERVER", "backupserver\xc2\x85" + inject},      // U+0085 NEXT LINE
        {"RESTIC_SFTP_SERVER", "backupserver\xc2\xa0" + inject},      // U+00A0 NO-BREAK SPACE
        {"RESTIC_SFTP_SERVER", "backupserver\x0b" + inject},          // vertical tab
        {"RESTIC_SFTP_SERVER", inject},
        {"RESTIC_SFTP_USER", "me\xe3\x80\x80" + inject},  // U+3000 IDEOGRAPHIC SPACE
        {"RESTIC_SFTP_USER", "-oProxyCommand=id"},
    };
    const std::string image = stock::full_image_xml(42, 7, "0123abcd");
    const std::string url = "restic://100//0:0123abcd" + f.backup_dir(7) + "/disk.0.0";
    for (const auto &[attr, value] : cases) {
        const std::map<std::string, std::optional<std::string>> tmpl = {{attr, value}};
        struct run {
            std::string action;
            std::vector<std::string> args;
            std::string input;
        };
        const std::vector<run> runs = {
            {"backup", backup_args(f, 7), f.document(tmpl)},
            {"monitor", {"100"}, f.document(tmpl)},
            {"ls", {}, f.document(tmpl, "<VM><ID>7</ID></VM>" + image)},
            {"rm", {"42"}, f.document_with_image(image, tmpl)},
            {"stat", {"0"}, f.document_with_image("<IMAGE><PATH>" + url + "</PATH></IMAGE>", tmpl)},
            {"increment_flatten",
             {"42"},
             f.document_with_image(image, tmpl, "<EXTRA_DATA><KEEP_LAST>1</KEEP_LAST></EXTRA_DATA>")},
            {"downloader", {"--stdout", url}, f.document(tmpl)},
        };
        for (const auto &r : runs) {
            const auto res = f.host_action(r.action, r.args, r.input, rec.cfg(), rec.env());
            BOOST_TEST(res.exit_code == 255, r.action << " with " << attr << ": " << describe(res));
            BOOST_TEST(res.err.find(attr + " must ") != std::string::npos,
                       r.action << " with " << attr << ": " << res.err);
            BOOST_TEST(res.out.empty(), r.action << ": " << res.out);
        }
    }
    // A hostile LAST_BRIDGE or argv host: the same for backup and backup_cancel.
    for (const std::string &host : {std::string("-oProxyCommand=id"), std::string("hypervisor\xe2\x80\x8a-oX=y")}) {
        auto res = f.host_action("backup", backup_args(f, 7, host), f.document(), rec.cfg(), rec.env());
        BOOST_TEST(res.exit_code == 255, describe(res));
        BOOST_TEST(res.err.find("the host in <host>:<vm_dir> must") != std::string::npos, res.err);
        res = f.host_action("backup_cancel", {host + ":" + f.vm_dir(7), "one-7"}, "<VM><ID>7</ID></VM>", rec.cfg(),
                            rec.env());
        BOOST_TEST(res.exit_code == 255, describe(res));
        const std::string bridge = "<VM><ID>7</ID><BACKUPS><BACKUP_CONFIG><LAST_BRIDGE>" + host +
                                   "</LAST_BRIDGE></BACKUP_CONFIG></BACKUPS></VM>";
        res = f.host_action("backup", backup_args(f, 7), f.document({}, bridge), rec.cfg(), rec.env());
        BOOST_TEST(res.err.find("LAST_BRIDGE must") != std::string::npos, res.err);
        res = f.host_action("backup_cancel", {"hypervisor:" + f.vm_dir(7), "one-7"}, bridge, rec.cfg(), rec.env());
        BOOST_TEST(res.err.find("LAST_BRIDGE must") != std::string::npos, res.err);
    }
    BOOST_TEST(rec.started().empty(), "programs were started:\n" << rec.started());
    BOOST_TEST(!fs::exists(f.dir().file("pwned")));
    BOOST_TEST(!fs::exists(f.base_path() + "/7"));
}

BOOST_AUTO_TEST_CASE(out_of_range_numbers_name_the_attribute_and_start_nothing) {
    restic_fixture f;
    f.make_vm(7, {{0, 8, 1}});
    const recorders rec(f);
    for (const auto &[attr, value] :
         std::vector<std::pair<std::string, std::string>>{{"RESTIC_BWLIMIT", "9007199254740992"},
                                                          {"RESTIC_LOCK_RETRIES", "4294967297"},
                                                          {"RESTIC_CONNECTIONS", "0"},
                                                          {"RESTIC_MAXPROC", "99999999999999999999"}}) {
        const auto res = f.host_action("backup", backup_args(f, 7), f.document({{attr, value}}), rec.cfg(), rec.env());
        BOOST_TEST(res.exit_code == 255, describe(res));
        BOOST_TEST(res.err.find("Wrong restic datastore configuration: " + attr + " must be an integer from") !=
                       std::string::npos,
                   res.err);
    }
    BOOST_TEST(rec.started().empty(), rec.started());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(backup_cancel)

// VMs 4, 40 and 43 back up at once on one hypervisor; VM 4's folder and
// deploy id are prefixes of the others'. Cancelling 4 stops 4 alone.
BOOST_AUTO_TEST_CASE(cancelling_one_vm_leaves_the_others_finishing_with_snapshots) {
    restic_fixture f;
    const std::vector<int> vms = {4, 40, 43};
    for (int vm : vms) f.make_vm(vm, {{0, 16, 8, true}});
    // 8 MiB of random data at 512 KiB/s: each backup runs for ~16 s.
    const auto doc = f.document({{"RESTIC_BWLIMIT", "512"}});
    std::map<int, std::unique_ptr<spawned_process>> running;
    for (int vm : vms) running[vm] = std::make_unique<spawned_process>(f.host_argv("backup", backup_args(f, vm)), doc);
    for (int vm : vms) {
        BOOST_TEST_REQUIRE(
            find_process_with({"backup", "--tag=one-" + std::to_string(vm)}, std::chrono::seconds(90)) > 0,
            "restic backup of VM " << vm << " never started");
        BOOST_TEST_REQUIRE(wait_for_restic_lock(f.base_path() + "/" + std::to_string(vm), std::chrono::seconds(60)));
    }
    // A deploy id that equals another argument of every backup ("0", the
    // system datastore id) for a VM that is not backing up: nothing stops.
    auto c = f.host_action("backup_cancel", {"hypervisor:" + f.vm_dir(5), "0"}, "<VM><ID>5</ID></VM>");
    BOOST_TEST(c.exit_code == 0, describe(c));
    c = f.host_action("backup_cancel", {"hypervisor:" + f.vm_dir(4), "one-4"}, "<VM><ID>4</ID></VM>");
    BOOST_TEST(c.exit_code == 0, describe(c));

    const auto r4 = running[4]->wait(std::chrono::seconds(120));
    BOOST_TEST(r4.exit_code == 255, describe(r4));
    BOOST_TEST(r4.err.find("Backup cancelled") != std::string::npos, r4.err);
    for (int vm : {40, 43}) {
        const auto r = running[vm]->wait(std::chrono::seconds(180));
        BOOST_TEST(r.exit_code == 0, "VM " << vm << " was hit by VM 4's cancel: " << describe(r));
        BOOST_TEST(std::regex_match(r.out, std::regex("[0-9a-f]{8} [0-9]+ raw\n")), r.out);
        BOOST_TEST(snapshot_count(f, f.base_path() + "/" + std::to_string(vm)) == 1U);
    }
    BOOST_TEST(snapshot_count(f, f.base_path() + "/4") == 0U);
    for (int vm : vms) BOOST_TEST(!has_lock(f.base_path() + "/" + std::to_string(vm)), "lock left in VM " << vm);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(locks)

// A restic SIGKILLed while it held the exclusive lock: the next rm finds its
// holder gone, removes the lock and goes on instead of waiting out every retry.
BOOST_AUTO_TEST_CASE(a_lock_whose_holder_was_killed_is_removed_and_rm_goes_on) {
    restic_fixture f;
    stock::chain c(f, 7, {{0, 32, 24, true}});
    c.backup(2);
    auto holder = hold_exclusive_lock(f.password_file(), c.repo());
    BOOST_REQUIRE_MESSAGE(holder, "set-up: could not catch restic check holding its lock");
    const pid_t dead = holder->pid();
    holder->send_signal(SIGKILL);
    holder->wait(std::chrono::seconds(30));
    BOOST_TEST_REQUIRE(has_lock(c.repo()), "set-up: the killed restic left no lock");

    // Two retries half a second apart: without removing the stale lock, rm
    // would fail within ~1.5 s.
    const auto r = f.host_action(
        "rm", {"42"},
        oneds::common::base64_encode(f.document_with_image(c.image_xml(), {{"RESTIC_LOCK_RETRIES", "2"}})));
    BOOST_TEST(r.exit_code == 0, describe(r));
    BOOST_TEST(r.err.find("removed the stale lock of PID " + std::to_string(dead)) != std::string::npos, r.err);
    BOOST_TEST(r.err.find("process " + std::to_string(dead) + " is gone") != std::string::npos, r.err);
    BOOST_TEST(snapshot_count(f, c.repo()) == 0U);
    BOOST_TEST(!has_lock(c.repo()));
    BOOST_TEST(stock::check_repository(f, c.repo()).empty());
}

// The downloader cancelled with no grace: restic on the backup server is
// SIGKILLed before it can remove its lock; the cancel still leaves none.
BOOST_AUTO_TEST_CASE(a_downloader_cancel_that_ends_in_sigkill_leaves_no_lock) {
    restic_fixture f;
    stock::chain c(f, 7, {{0, 512, 400, true}});
    c.backup();
    const std::string tmp = f.dir().file("rtmp");
    fs::create_directories(tmp);
    spawned_process p(f.host_argv("downloader", {"--stdout", c.url(0, 0)}, {{"kill_grace", "0"}}),
                      f.document({{"RESTIC_TMP_DIR", tmp}}));
    BOOST_TEST_REQUIRE(find_process_with({"restore", c.at(0).short_id}, std::chrono::seconds(60)) > 0);
    BOOST_TEST_REQUIRE(wait_for_restic_lock(c.repo(), std::chrono::seconds(60)), "restic restore never took its lock");
    BOOST_TEST_REQUIRE(p.wait_for_signal_handler(SIGTERM, std::chrono::seconds(10)));
    p.send_signal(SIGTERM);
    const auto r = p.wait(std::chrono::seconds(60));
    BOOST_TEST(r.exit_code == 255, describe(r));
    // The SIGKILLed restic's lock goes with the plugin's clean-up (a restic
    // unlock bounded by 10 s), which under a heavy load can miss its bound
    // once, and then says so.
    BOOST_TEST((!has_lock(c.repo()) || lock_cleanup_reported_failure(r.err)),
               "a lock was left without a word: " << r.err);
    BOOST_TEST(stock::files_under(tmp).empty());
    // Either way the next backup into the repository finds no live holder,
    // goes on and leaves no lock; the repository is sound.
    f.make_vm(7, {{0, 8, 1}});
    const auto next = f.host_action("backup", backup_args(f, 7), f.document());
    BOOST_TEST(next.exit_code == 0, describe(next));
    BOOST_TEST(!has_lock(c.repo()), "a lock was left after the next backup: " << next.err);
    BOOST_TEST(stock::check_repository(f, c.repo()).empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(storage_faults)

// A read-only and a full repository storage fail at once (restic's own
// retries aside) with the cause named, not as a lock conflict retried for
// an hour; what was stored stays intact and unlocked.
BOOST_AUTO_TEST_CASE(read_only_and_full_storage_are_named_and_not_waited_on) {
    restic_fixture f;
    const std::string ro_base = f.dir().file("ro"), full_base = f.dir().file("full");
    tmpfs_mount ro(ro_base, "64m"), full(full_base, "64m");
    BOOST_TEST_REQUIRE(ro.ok(), "these cases need root to mount a tmpfs");
    BOOST_TEST_REQUIRE(full.ok());
    std::map<std::string, std::optional<std::string>> local = {{"RESTIC_BACKEND", "LOCAL"},
                                                               {"RESTIC_LOCK_RETRIES", "3"}};
    const auto doc_for = [&](const std::string &base, int vm) {
        std::string d = f.document(local, "<VM><ID>" + std::to_string(vm) + "</ID></VM>");
        return std::regex_replace(d, std::regex("<BASE_PATH>[^<]*</BASE_PATH>"), "<BASE_PATH>" + base + "</BASE_PATH>");
    };
    f.make_vm(7, {{0, 8, 2}});
    f.make_vm(8, {{0, 8, 2}});
    for (const auto &[base, vm] : {std::pair{ro_base, 7}, std::pair{full_base, 8}}) {
        const auto b = f.host_action("backup", backup_args(f, vm, "localhost"), doc_for(base, vm));
        BOOST_TEST_REQUIRE(b.exit_code == 0, describe(b));
    }
    BOOST_TEST_REQUIRE(ro.set_read_only(true));
    // Fill the other one.
    (void)run_process({tool("dd"), "if=/dev/zero", "of=" + full_base + "/filler", "bs=1M", "count=128", "status=none"});

    auto ro_run = std::async(std::launch::async, [&] {
        return f.host_action("backup", backup_args(f, 7, "localhost"), doc_for(ro_base, 7));
    });
    auto full_run = std::async(std::launch::async, [&] {
        return f.host_action("backup", backup_args(f, 8, "localhost"), doc_for(full_base, 8));
    });
    const auto r_ro = ro_run.get(), r_full = full_run.get();
    BOOST_TEST(r_ro.exit_code == 255, describe(r_ro));
    BOOST_TEST(r_ro.err.find("the repository's storage is read-only") != std::string::npos, r_ro.err);
    BOOST_TEST(r_full.exit_code == 255, describe(r_full));
    BOOST_TEST(r_full.err.find("no space left on the repository's storage") != std::string::npos, r_full.err);
    for (const auto *r : {&r_ro, &r_full}) {
        BOOST_TEST(r->err.find("retry 1/") == std::string::npos, "retried as a lock: " << r->err);
        BOOST_TEST(r->err.find("locked by") == std::string::npos, r->err);
        BOOST_TEST(r->err.find("github.com") == std::string::npos, r->err);
    }
    // Nothing stored was lost or left locked.
    BOOST_TEST_REQUIRE(ro.set_read_only(false));
    fs::remove(full_base + "/filler");
    for (const auto &[base, vm] : {std::pair{ro_base, 7}, std::pair{full_base, 8}}) {
        const std::string repo = base + "/" + std::to_string(vm);
        BOOST_TEST(!has_lock(repo));
        BOOST_TEST(snapshot_count(f, repo) == 1U);
        BOOST_TEST(stock::check_repository(f, repo).empty());
        const auto again = f.host_action("backup", backup_args(f, vm, "localhost"), doc_for(base, vm));
        BOOST_TEST(again.exit_code == 0, describe(again));
    }
}

// restic killed on the hypervisor in the middle of a backup (not a cancel):
// the error says what happened; the next backup of the VM succeeds.
BOOST_AUTO_TEST_CASE(a_killed_restic_is_reported_and_the_next_backup_succeeds) {
    restic_fixture f;
    f.make_vm(7, {{0, 16, 8, true}});
    // The repository exists, so that the first restic backup is the one.
    const auto init = f.restic(f.base_path() + "/7", {"init"});
    BOOST_TEST_REQUIRE(init.exit_code == 0, init.err);
    spawned_process p(f.host_argv("backup", backup_args(f, 7)), f.document({{"RESTIC_BWLIMIT", "512"}}));
    const pid_t restic = find_process_with({"backup", "--tag=one-7"}, std::chrono::seconds(90));
    BOOST_TEST_REQUIRE(restic > 0);
    BOOST_TEST_REQUIRE(wait_for_restic_lock(f.base_path() + "/7", std::chrono::seconds(60)));
    ::kill(restic, SIGKILL);
    const auto r = p.wait(std::chrono::seconds(60));
    BOOST_TEST(r.exit_code == 255, describe(r));
    BOOST_TEST_REQUIRE(r.err.rfind("Error backing up VM 7") != std::string::npos, r.err);
    const auto error_line = r.err.substr(r.err.rfind("Error backing up VM 7"));
    BOOST_TEST(error_line.find("Error backing up VM 7 to ") == 0u, r.err);
    BOOST_TEST((error_line.find("killed") != std::string::npos || error_line.find("ssh") != std::string::npos),
               error_line);
    BOOST_TEST(error_line.find(": \n") == std::string::npos, error_line);
    const auto again = f.host_action("backup", backup_args(f, 7), f.document());
    BOOST_TEST(again.exit_code == 0, describe(again));
    BOOST_TEST(snapshot_count(f, f.base_path() + "/7") == 1U);
    const auto check = stock::check_repository(f, f.base_path() + "/7");
    BOOST_TEST(check.empty(), check);
    BOOST_TEST_MESSAGE("killed restic: " << error_line);
}

BOOST_AUTO_TEST_SUITE_END()
