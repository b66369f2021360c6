#define BOOST_TEST_MODULE restic_restore_maintenance
// rm, stat, ls and increment_flatten through one_ds_host, against
// repositories written the stock driver's way (restore_stock_repo.hpp), with
// the real restic 0.14, sshd and qemu-img. Expectations come from
// docs/stock-driver.md (its sections are named in the comments), not from our
// implementation. Results are checked with restic and qemu-img directly.
#include "tests/restic/restore_stock_repo.hpp"

#include "common/base64.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <regex>
#include <set>
#include <thread>

using namespace oneds::test;
namespace fs = std::filesystem;

namespace {

std::string describe(const process_result &r) {
    return "exit " + std::to_string(r.exit_code) + (r.killed ? " (killed after the time limit)" : "") +
           "\n--- stdout ---\n" + r.out + "\n--- stderr ---\n" + r.err;
}

// The base64 document oned puts on the request line: IMAGE, DATASTORE, extra.
std::string request(const restic_fixture &f, const std::string &image,
                    const std::map<std::string, std::optional<std::string>> &tmpl = {}, const std::string &extra = {}) {
    return oneds::common::base64_encode(f.document_with_image(image, tmpl, extra));
}

std::string keep_last(int n) { return "<EXTRA_DATA><KEEP_LAST>" + std::to_string(n) + "</KEEP_LAST></EXTRA_DATA>"; }

std::set<std::string> short_ids(const std::vector<stock::snapshot_info> &s) {
    std::set<std::string> out;
    for (const auto &x : s) out.insert(x.short_id);
    return out;
}

std::string joined(const std::set<std::string> &s) {
    std::string out;
    for (const auto &x : s) out += (out.empty() ? "" : ",") + x;
    return "{" + out + "}";
}

std::string joined(const std::vector<std::string> &s) {
    std::string out;
    for (const auto &x : s) out += (out.empty() ? "" : ", ") + x;
    return "[" + out + "]";
}

std::string without_newline(std::string s) {
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

// Another restic holding the repository's exclusive lock: `check
// --read-data`, stopped with SIGSTOP while its lock file exists (as
// backup_test.cpp's locked case). nullptr when it could not be caught.
std::unique_ptr<spawned_process> hold_exclusive_lock(const restic_fixture &f, const std::string &repo) {
    return oneds::test::hold_exclusive_lock(f.password_file(), repo);
}

// The stat request: only PATH and SIZE (and BACKUP_JOB_ID) in IMAGE
// (docs/oned-protocol.md#what-info-each-action-must-carry).
std::string stat_image(const std::string &url, std::optional<int> job = std::nullopt) {
    std::string x = "<IMAGE><PATH>" + url + "</PATH><SIZE>0</SIZE>";
    if (job) x += "<BACKUP_JOB_ID>" + std::to_string(*job) + "</BACKUP_JOB_ID>";
    return x + "</IMAGE>";
}

// ls gets PLAIN XML: DATASTORE, VM, IMAGE (docs/stock-driver.md#invocation-summary).
std::string ls_input(const restic_fixture &f, const stock::chain &c, const std::string &image) {
    return f.document(
        {}, "<VM><ID>" + std::to_string(c.vm()) + "</ID><NAME>vm" + std::to_string(c.vm()) + "</NAME></VM>" + image);
}

// The JSON object ls printed, as key -> string value; fails the test when
// stdout is not such an object.
std::map<std::string, std::string> ls_json(const process_result &r) {
    std::map<std::string, std::string> out;
    boost::system::error_code ec;
    const auto v = boost::json::parse(r.out, ec);
    BOOST_REQUIRE_MESSAGE(!ec && v.is_object(), "expected ls to print one JSON object, got: " << describe(r));
    for (const auto &[k, val] : v.as_object()) {
        BOOST_REQUIRE_MESSAGE(val.is_string(), "expected string values in ls JSON, got " << r.out);
        out[std::string(k)] = std::string(val.as_string());
    }
    return out;
}

std::string map_text(const std::map<std::string, std::string> &m) {
    std::string out;
    for (const auto &[k, v] : m) out += "\n  " + k + " -> " + v;
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// The set-up itself, checked with restic and qemu-img only: these pass
// whatever state the actions are in.
BOOST_AUTO_TEST_SUITE(stock_layout)

BOOST_AUTO_TEST_CASE(stock_chain_rebuilds_every_increment_and_order_matters) {
    restic_fixture f;
    stock::chain c(f, 7, {{0, 16, 2}, {1, 8, 1}});
    c.set_tpm(true);
    c.backup(4);
    BOOST_TEST(c.increments().size() == 4u);
    BOOST_TEST(stock::snapshots(f, c.repo()).size() == 4u);
    BOOST_TEST(!fs::exists(c.backup_dir()), "postbackup removed the folder");
    for (int k = 0; k < 4; ++k) {
        std::vector<std::pair<int, std::string>> snaps;
        for (int i = 0; i <= k; ++i) snaps.emplace_back(i, c.at(i).short_id);
        for (const auto &d : c.disks()) {
            BOOST_TEST_CONTEXT("increment " << k << ", disk " << d.id) {
                const auto top =
                    stock::rebuild(f, c.repo(), snaps, d.id,
                                   f.dir().file("rebuild/" + std::to_string(k) + "." + std::to_string(d.id)));
                BOOST_TEST(stock::compare_images(c.expected_image(d.id, k), top, true, false) == "");
                BOOST_TEST(stock::compare_images(c.expected_image(d.id, k), c.source_image(d.id, k), true, false) ==
                           "");
                if (k > 0)
                    BOOST_TEST(stock::compare_images(c.expected_image(d.id, k - 1), top, true, false) != "",
                               "increment " << k << " changed nothing");
            }
        }
        BOOST_TEST(!c.at(k).tpm.empty());
        BOOST_TEST(c.url(0, k) == "restic://100//" + c.chain_text(k) + c.backup_dir() + "/disk.0." + std::to_string(k));
    }
    // The same files linked in the wrong order give another image.
    const auto wrong =
        stock::rebuild(f, c.repo(), {{0, c.at(0).short_id}, {2, c.at(2).short_id}, {1, c.at(1).short_id}}, 0,
                       f.dir().file("rebuild/wrong"));
    BOOST_TEST(stock::compare_images(c.expected_image(0, 2), wrong, true, false) != "");
    BOOST_TEST(stock::check_repository(f, c.repo()) == "");

    // A job repository holds several VMs' chains.
    stock::chain j1(f, 11, {{0, 8, 1}}, 5), j2(f, 12, {{0, 8, 1}}, 5);
    j1.backup(2);
    j2.backup();
    BOOST_TEST(j1.repo() == f.base_path() + "/job_5");
    BOOST_TEST(stock::snapshots(f, j1.repo()).size() == 3u);
    BOOST_TEST(j2.url(0, 0) == "restic://100/5/0:" + j2.at(0).short_id + f.backup_dir(12) + "/disk.0.0");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
// docs/stock-driver.md#rm: forget + prune of every SOURCE of the image, lock retry, stdout empty.
BOOST_AUTO_TEST_SUITE(rm)

BOOST_AUTO_TEST_CASE(rm_of_a_chain_removes_every_increment) {
    restic_fixture f;
    // Another backup image of the same VM shares the repository and must survive.
    stock::chain other(f, 7, {{0, 16, 4, true}});
    other.backup();
    stock::chain c(f, 7, {{0, 16, 4, true}, {1, 8, 1}});
    c.backup(4);
    const auto bytes_before = stock::pack_bytes(c.repo());

    const auto r = f.host_action("rm", {"42"}, request(f, c.image_xml()));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "expected rm to succeed: " << describe(r));
    BOOST_TEST(r.out.empty(), "expected empty stdout, got '" << r.out << "'");

    const auto left = short_ids(stock::snapshots(f, c.repo()));
    BOOST_TEST((left == std::set<std::string>{other.at(0).short_id}),
               "expected only the other image's snapshot " << other.at(0).short_id << " left, got " << joined(left));
    BOOST_TEST(stock::check_repository(f, c.repo()) == "");
    // Pruned (--max-unused=0): the chain's 4 MiB of random data are gone.
    const auto bytes_after = stock::pack_bytes(c.repo());
    BOOST_TEST(bytes_after + 2 * 1048576 < bytes_before, "expected the pack files to shrink by > 2 MiB (prune), before "
                                                             << bytes_before << " bytes, after " << bytes_after);
    BOOST_TEST(bytes_after > 3u * 1048576, "the surviving image's data must stay, pack bytes " << bytes_after);
    // What survives still restores.
    const auto top = stock::rebuild(f, c.repo(), {{0, other.at(0).short_id}}, 0, f.dir().file("rebuild"));
    BOOST_TEST(stock::compare_images(other.expected_image(0, 0), top) == "");
    BOOST_TEST(fs::is_empty(c.repo() + "/locks"), "a lock was left behind");
}

BOOST_AUTO_TEST_CASE(rm_of_a_full_image_removes_its_snapshot) {
    restic_fixture f;
    stock::chain a(f, 7, {{0, 8, 1}});
    a.backup();
    stock::chain b(f, 7, {{0, 8, 1}});
    b.backup();
    const auto r = f.host_action("rm", {"43"}, request(f, stock::full_image_xml(43, 7, a.at(0).short_id)));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "expected rm to succeed: " << describe(r));
    const auto left = short_ids(stock::snapshots(f, a.repo()));
    BOOST_TEST((left == std::set<std::string>{b.at(0).short_id}),
               "expected {" << b.at(0).short_id << "}, got " << joined(left));
}

BOOST_AUTO_TEST_CASE(rm_of_a_missing_snapshot_succeeds) {
    restic_fixture f;
    stock::chain c(f, 7, {{0, 8, 1}});
    c.backup(3);
    // A FULL image whose snapshot is already gone.
    auto r = f.host_action("rm", {"44"}, request(f, stock::full_image_xml(44, 7, "deadbeef")));
    BOOST_TEST(r.exit_code == 0, "expected rm of a snapshot that no longer exists to succeed: " << describe(r));
    BOOST_TEST(stock::snapshots(f, c.repo()).size() == 3u, "the repository's other snapshots must stay");

    // A chain one of whose increments was forgotten by hand: the rest goes.
    const auto forget = f.restic(c.repo(), {"forget", c.at(1).short_id});
    BOOST_REQUIRE_MESSAGE(forget.exit_code == 0, forget.err);
    r = f.host_action("rm", {"42"}, request(f, c.image_xml()));
    BOOST_TEST(r.exit_code == 0, "expected rm of a chain with a missing increment to succeed: " << describe(r));
    const auto left = stock::snapshots(f, c.repo());
    BOOST_TEST(left.empty(), "expected no snapshot left, got " << joined(short_ids(left)));
    BOOST_TEST(stock::check_repository(f, c.repo()) == "");
}

BOOST_AUTO_TEST_CASE(rm_of_a_job_image_removes_only_its_snapshots) {
    restic_fixture f;
    stock::chain mine(f, 11, {{0, 8, 1}}, 5), theirs(f, 12, {{0, 8, 1}}, 5);
    mine.backup(2);
    theirs.backup(2);
    const auto r = f.host_action("rm", {"42"}, request(f, mine.image_xml()));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "expected rm in job_5 to succeed: " << describe(r));
    const auto left = short_ids(stock::snapshots(f, f.base_path() + "/job_5"));
    const std::set<std::string> want = {theirs.at(0).short_id, theirs.at(1).short_id};
    BOOST_TEST((left == want), "expected VM 12's snapshots " << joined(want) << " left in job_5, got " << joined(left));
    BOOST_TEST(!fs::exists(f.base_path() + "/11"), "rm of a job image must not touch a per-VM repository");
}

BOOST_AUTO_TEST_CASE(rm_of_a_locked_repository_is_retried) {
    restic_fixture f;
    stock::chain c(f, 7, {{0, 64, 48, true}});
    c.backup(2);
    auto holder = hold_exclusive_lock(f, c.repo());
    BOOST_REQUIRE_MESSAGE(holder, "set-up: could not catch restic check holding its lock");
    spawned_process rm(f.host_argv("rm", {"42"}), request(f, c.image_xml()));
    // Release the lock only once restic forget has met it: its first restic
    // forget ended and rm runs it again (it looked at the stopped holder and
    // logged the lock before its retry interval). That rm retried is what
    // shows it waited for the lock rather than finishing before its release.
    const bool retried = wait_for_retry_of({"forget", c.at(0).short_id}, std::chrono::seconds(120));
    BOOST_TEST(retried, "restic forget never met the lock and retried");
    holder->send_signal(SIGCONT);
    const auto r = rm.wait(std::chrono::seconds(180));
    // Generous: the limit may count from the holder's start (spawned_process),
    // and a SIGKILLed holder would leave its exclusive lock.
    holder->wait(std::chrono::seconds(600));
    BOOST_TEST_MESSAGE("rm stderr: " << r.err);
    BOOST_TEST(r.exit_code == 0, "expected rm to wait for the lock and succeed: " << describe(r));
    BOOST_TEST(r.err.find("PID " + std::to_string(holder->pid())) != std::string::npos,
               "expected stderr to name the lock holder (PID " << holder->pid() << "), got: " << r.err);
    BOOST_TEST(r.err.find("retry 1/") != std::string::npos, "expected rm to say it retries: " << r.err);
    const auto left = stock::snapshots(f, c.repo());
    BOOST_TEST(left.empty(), "expected no snapshot left, got " << joined(short_ids(left)));
    BOOST_TEST(fs::is_empty(c.repo() + "/locks"), "a lock was left behind");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
// docs/stock-driver.md#stat: the size comes from DISK[DISK_ID=N]/SIZE of the chain's LAST
// snapshot's vm.xml, not from the file; bug #6607 gave disk 0's size to all.
BOOST_AUTO_TEST_SUITE(stat)

BOOST_AUTO_TEST_CASE(stat_prints_the_disk_size_from_vm_xml) {
    restic_fixture f;
    const std::vector<stock::disk> disks = {{0, 32, 2}, {1, 16, 1}};
    stock::chain c(f, 7, disks);
    c.backup();
    // Disk 1 was resized to 24 MB before increment 1 (vm.xml says so).
    c.set_vm_xml(stock::vm_document(7, disks, false, {{1, 24}}));
    c.backup();
    struct expectation {
        std::string url, size, what;
    };
    const std::vector<expectation> cases = {
        {c.url(0, 0), "32", "disk 0 of the full backup"},
        {c.url(1, 0), "16", "disk 1 of the full backup (not disk 0's size: #6607)"},
        {c.url(0, 1), "32", "disk 0 at increment 1"},
        {c.url(1, 1), "24", "disk 1 at increment 1 (vm.xml of the chain's last snapshot)"},
    };
    for (const auto &e : cases) {
        BOOST_TEST_CONTEXT(e.what << ": " << e.url) {
            const auto r = f.host_action("stat", {"3"}, request(f, stat_image(e.url)));
            BOOST_TEST(r.exit_code == 0, describe(r));
            BOOST_TEST(without_newline(r.out) == e.size, "expected stdout '" << e.size << "', got '" << r.out << "'");
        }
    }
}

BOOST_AUTO_TEST_CASE(stat_of_a_job_backup_reads_the_job_repository) {
    restic_fixture f;
    stock::chain c(f, 12, {{0, 8, 1}, {1, 12, 1}}, 5);
    c.backup(2);
    const auto r = f.host_action("stat", {"4"}, request(f, stat_image(c.url(1, 1), 5)));
    BOOST_TEST(r.exit_code == 0, describe(r));
    BOOST_TEST(without_newline(r.out) == "12", "expected stdout '12', got '" << r.out << "'");
}

BOOST_AUTO_TEST_CASE(stat_errors_name_the_problem) {
    restic_fixture f;
    stock::chain c(f, 7, {{0, 8, 1}});
    c.backup();
    auto r = f.host_action("stat", {"5"}, request(f, stat_image(c.url(c.backup_dir() + "/vm.xml", 0))));
    BOOST_TEST(r.exit_code == 255, "expected exit 255 for a path that names no disk: " << describe(r));
    BOOST_TEST(r.err.find("Wrong format for disk filename") != std::string::npos,
               "expected 'Wrong format for disk filename' on stderr, got: " << r.err);
    BOOST_TEST(r.out.empty(), "expected no stdout on error, got '" << r.out << "'");

    r = f.host_action("stat", {"6"}, request(f, stat_image(c.url(c.backup_dir() + "/disk.5.0", 0))));
    BOOST_TEST(r.exit_code == 255, "expected exit 255 for a disk not in vm.xml: " << describe(r));
    BOOST_TEST(r.err.find("Cannot find disk 5 in VM backup info") != std::string::npos,
               "expected 'Cannot find disk 5 in VM backup info' on stderr, got: " << r.err);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
// docs/stock-driver.md#ls: JSON mapping disk id to <restic://ds/bj/chain><path>, plus "tpm".
BOOST_AUTO_TEST_SUITE(ls)

BOOST_AUTO_TEST_CASE(ls_prints_the_stock_json) {
    restic_fixture f;
    stock::chain c(f, 7, {{0, 16, 2}, {1, 8, 1}});
    c.set_tpm(true);
    c.backup(4);
    const auto r = f.host_action("ls", {}, ls_input(f, c, c.image_xml()));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
    const auto got = ls_json(r);
    const std::map<std::string, std::string> want = {
        {"0", c.url(0, 3)},
        {"1", c.url(1, 3)},
        {"tpm", c.url(c.backup_dir() + "/disk.tpm.0")},
    };
    BOOST_TEST((got == want), "expected" << map_text(want) << "\ngot" << map_text(got));
    BOOST_TEST(c.url(0, 3) == "restic://100//0:" + c.at(0).short_id + ",1:" + c.at(1).short_id +
                                  ",2:" + c.at(2).short_id + ",3:" + c.at(3).short_id + c.backup_dir() + "/disk.0.3");

    // -i -1 means the whole chain.
    const auto all = f.host_action("ls", {"-i", "-1"}, ls_input(f, c, c.image_xml()));
    BOOST_REQUIRE_MESSAGE(all.exit_code == 0, describe(all));
    const auto got_all = ls_json(all);
    BOOST_TEST((got_all == want), "with -i -1 expected" << map_text(want) << "\ngot" << map_text(got_all));
}

BOOST_AUTO_TEST_CASE(ls_with_an_increment_truncates_the_chain) {
    restic_fixture f;
    stock::chain c(f, 7, {{0, 16, 2}, {1, 8, 1}});
    c.set_tpm(true);
    c.backup(4);
    const auto r = f.host_action("ls", {"-i", "1"}, ls_input(f, c, c.image_xml()));
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
    const auto got = ls_json(r);
    const std::string burl = "restic://100//0:" + c.at(0).short_id + ",1:" + c.at(1).short_id;
    for (const std::string d : {"0", "1"}) {
        BOOST_TEST_CONTEXT("disk " << d) {
            BOOST_REQUIRE_MESSAGE(got.count(d) == 1, "expected key \"" << d << "\" in" << map_text(got));
            // The stock driver names the LAST snapshot's file (disk.N.3);
            // the increment's own file (disk.N.1) is as good downstream.
            const std::set<std::string> ok = {burl + c.backup_dir() + "/disk." + d + ".1",
                                              burl + c.backup_dir() + "/disk." + d + ".3"};
            BOOST_TEST(ok.count(got.at(d)) == 1u,
                       "expected " << joined(ok) << " (chain up to increment 1), got " << got.at(d));
        }
    }
    BOOST_REQUIRE_MESSAGE(got.count("tpm") == 1, "expected key \"tpm\" in" << map_text(got));
    BOOST_TEST(got.at("tpm") == burl + c.backup_dir() + "/disk.tpm.0");
    BOOST_TEST(got.size() == 3u, "expected keys 0, 1, tpm only, got" << map_text(got));
}

BOOST_AUTO_TEST_CASE(ls_of_a_job_image_without_tpm) {
    restic_fixture f;
    stock::chain c(f, 12, {{0, 8, 1}}, 5);
    c.backup();
    const std::map<std::string, std::string> want = {
        {"0", "restic://100/5/0:" + c.at(0).short_id + f.backup_dir(12) + "/disk.0.0"}};
    // As a one-increment INCREMENT-mode image and as a FULL-mode image.
    for (const bool incremental : {true, false}) {
        BOOST_TEST_CONTEXT((incremental ? "INCREMENT" : "FULL") << " mode image") {
            stock::chain::image_options opts;
            opts.incremental = incremental;
            const auto r = f.host_action("ls", {}, ls_input(f, c, c.image_xml(opts)));
            BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
            const auto got = ls_json(r);
            BOOST_TEST((got == want), "expected" << map_text(want) << "\ngot" << map_text(got));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
// docs/stock-driver.md#flattening-increments: merge the oldest N-K+1 snapshots into one that takes the id slot and
// the time of the newest merged one; stdout "<MB> <chain_keep_last>".
BOOST_AUTO_TEST_SUITE(increment_flatten)

namespace {

struct flatten_check {
    std::string new_id;
    std::uint64_t size_mb = 0;
};

// Runs flatten with KEEP_LAST k over chain c (image_xml given) and checks
// stdout against "<MB> <first kept id>:<new>,<next id>:<its id>,...".
flatten_check run_flatten(restic_fixture &f, const stock::chain &c, const std::string &image, int k,
                          const std::string &tmp_dir) {
    const int n = static_cast<int>(c.increments().size());
    const auto r =
        f.host_action("increment_flatten", {"42"}, request(f, image, {{"RESTIC_TMP_DIR", tmp_dir}}, keep_last(k)));
    BOOST_TEST_MESSAGE("flatten stderr: " << r.err);
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "expected increment_flatten to succeed: " << describe(r));
    std::string rest;
    for (int i = n - k + 1; i < n; ++i) rest += "," + std::to_string(i) + ":" + c.at(i).short_id;
    const std::regex want("([0-9]+) " + std::to_string(n - k) + ":([0-9a-f]{8})" + rest + "\n?");
    std::smatch m;
    BOOST_REQUIRE_MESSAGE(std::regex_match(r.out, m, want), "expected stdout '<size_mb> " << n - k << ":<new 8-char id>"
                                                                                          << rest << "', got '" << r.out
                                                                                          << "'");
    return {m[2], std::stoull(m[1])};
}

// The merged snapshot and the kept ones, checked with restic and qemu-img.
void check_flattened(restic_fixture &f, const stock::chain &c, int k, const flatten_check &got,
                     const std::string &tmp_dir) {
    const int n = static_cast<int>(c.increments().size());
    const int first_kept = n - k;
    for (int i = 0; i <= first_kept; ++i)
        BOOST_TEST(got.new_id != c.at(i).short_id, "the merged snapshot must be new, got increment " << i << "'s id");

    const auto all = stock::snapshots(f, c.repo());
    std::set<std::string> want = {got.new_id};
    for (int i = first_kept + 1; i < n; ++i) want.insert(c.at(i).short_id);
    std::set<std::string> mine;  // this VM's snapshots (a job repository holds others)
    for (const auto &s : all)
        if (s.tags == std::vector<std::string>{"one-" + std::to_string(c.vm())}) mine.insert(s.short_id);
    BOOST_TEST((mine == want),
               "expected snapshots " << joined(want) << " (merged originals forgotten), got " << joined(mine));

    const auto merged = stock::snapshots(f, c.repo(), {got.new_id});
    BOOST_REQUIRE_MESSAGE(merged.size() == 1u, "the new snapshot " << got.new_id << " is not in the repository");
    const auto &s = merged[0];
    BOOST_TEST(s.tags == std::vector<std::string>{"one-" + std::to_string(c.vm())}, boost::test_tools::per_element());
    BOOST_TEST(s.time.substr(0, 19) == c.at(first_kept).time.substr(0, 19),
               "expected the merged snapshot to keep increment " << first_kept << "'s time " << c.at(first_kept).time
                                                                 << ", got " << s.time);
    // The last merged snapshot's disk paths and its other files (docs/stock-driver.md#flattening-increments step 6).
    auto paths = s.paths;
    std::sort(paths.begin(), paths.end());
    BOOST_TEST(paths == c.at(first_kept).paths, boost::test_tools::per_element());

    const auto vm_xml = f.restic(c.repo(), {"dump", "--quiet", got.new_id, c.backup_dir() + "/vm.xml"});
    BOOST_TEST(vm_xml.exit_code == 0, vm_xml.err);
    std::string b64 = vm_xml.out;
    b64.erase(std::remove(b64.begin(), b64.end(), '\n'), b64.end());
    const auto decoded = oneds::common::base64_decode(b64);
    BOOST_TEST((decoded && *decoded == c.at(first_kept).vm_xml),
               "the merged snapshot's vm.xml is not increment " << first_kept << "'s");
    if (!c.at(first_kept).tpm.empty()) {
        const auto tpm = f.restic(c.repo(), {"dump", "--quiet", got.new_id, c.backup_dir() + "/disk.tpm.0"});
        BOOST_TEST((tpm.exit_code == 0 && tpm.out == c.at(first_kept).tpm),
                   "the merged snapshot's disk.tpm.0 is not increment " << first_kept << "'s");
    }

    // The new chain restores to the same images as before.
    for (const auto &d : c.disks()) {
        std::vector<std::pair<int, std::string>> snaps = {{first_kept, got.new_id}};
        for (int i = first_kept; i < n; ++i) {
            if (i > first_kept) snaps.emplace_back(i, c.at(i).short_id);
            BOOST_TEST_CONTEXT("disk " << d.id << " at increment " << i) {
                std::string top, error;
                try {
                    top = stock::rebuild(
                        f, c.repo(), snaps, d.id,
                        f.dir().file("check/" + got.new_id + "." + std::to_string(d.id) + "." + std::to_string(i)));
                } catch (const std::exception &e) {
                    error = e.what();
                }
                BOOST_TEST(error == "", "expected the new chain to rebuild the stock way: " << error);
                if (error.empty())
                    BOOST_TEST(stock::compare_images(c.expected_image(d.id, i), top, true, i == first_kept) == "");
            }
        }
    }
    BOOST_TEST(stock::check_repository(f, c.repo()) == "");
    BOOST_TEST(fs::is_empty(c.repo() + "/locks"), "a lock was left behind");
    // Nothing pulled is left on the backup server (this machine).
    BOOST_TEST(stock::files_under(c.backup_dir()).empty(), "expected no pulled files left under "
                                                               << c.backup_dir() << ", got "
                                                               << joined(stock::files_under(c.backup_dir())));
    BOOST_TEST(stock::files_under(tmp_dir).empty(),
               "expected nothing left in RESTIC_TMP_DIR, got " << joined(stock::files_under(tmp_dir)));

    // SIZE is the merged images' allocated size (qemu-img actual-size), in
    // MB: compare with the same images converted to qcow2, within a factor 2.
    std::uint64_t ref = 0;
    for (const auto &d : c.disks()) {
        const std::string q = f.dir().file("ref." + got.new_id + "." + std::to_string(d.id) + ".qcow2");
        stock::must(
            {tool("qemu-img"), "convert", "-q", "-f", "raw", "-O", "qcow2", c.expected_image(d.id, first_kept), q},
            "qemu-img convert reference");
        ref += stock::info(q).actual_size;
    }
    const double ref_mb = static_cast<double>(ref) / 1048576.0;
    BOOST_TEST(
        (static_cast<double>(got.size_mb) >= ref_mb / 2 - 1 && static_cast<double>(got.size_mb) <= ref_mb * 2 + 2),
        "expected size_mb about " << ref_mb << " (sum of the merged images' actual-size / MiB), got " << got.size_mb);
}

}  // namespace

BOOST_AUTO_TEST_CASE(increment_flatten_keep_last_2) {
    restic_fixture f;
    stock::chain c(f, 7, {{0, 16, 2}, {1, 8, 1}});
    c.set_tpm(true);
    c.backup(4);
    const std::string tmp = f.dir().file("restic-tmp");
    fs::create_directories(tmp);
    const auto got = run_flatten(f, c, c.image_xml(), 2, tmp);
    check_flattened(f, c, 2, got, tmp);
}

BOOST_AUTO_TEST_CASE(increment_flatten_with_n_not_above_keep_last_changes_nothing) {
    restic_fixture f;
    stock::chain c(f, 7, {{0, 8, 1}});
    c.backup(2);
    const auto before = short_ids(stock::snapshots(f, c.repo()));
    for (const int k : {2, 3}) {
        BOOST_TEST_CONTEXT("KEEP_LAST " << k << " with 2 increments") {
            const auto r = f.host_action("increment_flatten", {"42"}, request(f, c.image_xml(), {}, keep_last(k)));
            BOOST_TEST(r.exit_code == 0, describe(r));
            BOOST_TEST(r.out.empty(), "expected empty stdout, got '" << r.out << "'");
            const auto after = short_ids(stock::snapshots(f, c.repo()));
            BOOST_TEST((after == before),
                       "expected snapshots " << joined(before) << " unchanged, got " << joined(after));
        }
    }
}

BOOST_AUTO_TEST_CASE(increment_flatten_orders_a_shuffled_chain_by_increment_id) {
    restic_fixture f;
    stock::chain c(f, 7, {{0, 16, 2}, {1, 8, 1}});
    c.backup(4);
    const std::string tmp = f.dir().file("restic-tmp");
    fs::create_directories(tmp);
    stock::chain::image_options shuffled;
    shuffled.order = {3, 0, 2, 1};
    const auto got = run_flatten(f, c, c.image_xml(shuffled), 2, tmp);
    check_flattened(f, c, 2, got, tmp);
}

BOOST_AUTO_TEST_CASE(increment_flatten_keep_last_1_in_a_job_repository_leaves_other_vms_alone) {
    restic_fixture f;
    stock::chain c(f, 11, {{0, 16, 2}}, 5), other(f, 12, {{0, 8, 1}}, 5);
    c.backup(3);
    other.backup(2);
    const std::string tmp = f.dir().file("restic-tmp");
    fs::create_directories(tmp);
    const auto got = run_flatten(f, c, c.image_xml(), 1, tmp);
    check_flattened(f, c, 1, got, tmp);
    std::set<std::string> theirs;
    for (const auto &s : stock::snapshots(f, c.repo()))
        if (s.tags == std::vector<std::string>{"one-12"}) theirs.insert(s.short_id);
    const std::set<std::string> want = {other.at(0).short_id, other.at(1).short_id};
    BOOST_TEST((theirs == want),
               "VM 12's snapshots must stay: expected " << joined(want) << ", got " << joined(theirs));
}

BOOST_AUTO_TEST_SUITE_END()
