#define BOOST_TEST_MODULE restic_verify
// Rotating verification (docs/verification.md) through one_ds_host's MONITOR
// with the real restic 0.14 and sshd: the cycle runs before the reply here
// (verify_foreground, a setting for tests), against repositories made by real
// backups, one of them with a pack corrupted on purpose.
#include "tests/restic/restic_fixture.hpp"
#include "tests/peer/oned_peer.hpp"
#include "tests/support/ceph_fixture.hpp"

#include "common/base64.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <set>
#include <thread>

using namespace oneds::test;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

std::vector<std::string> backup_args(const restic_fixture &f, int vm) {
    return {"hypervisor:" + f.vm_dir(vm), "0:1", "one-" + std::to_string(vm), "-", std::to_string(vm), "0"};
}

void back_up(const restic_fixture &f, int vm) {
    const auto r = f.host_action("backup", backup_args(f, vm), f.document());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "backup of VM " << vm << ": " << r.err);
}

struct verify_env {
    restic_fixture f;
    std::string state_dir;
    verify_env() : state_dir(f.dir().file("state")) {}

    std::map<std::string, std::string> cfg() const { return {{"state_dir", state_dir}, {"verify_foreground", "yes"}}; }
    std::string monitor_input(const std::map<std::string, std::optional<std::string>> &t) const {
        return oneds::common::base64_encode(f.document(t));
    }
    process_result monitor(const std::map<std::string, std::optional<std::string>> &t) const {
        return f.host_action("monitor", {"100"}, monitor_input(t), cfg());
    }
    std::string state_file() const { return state_dir + "/100/verify.json"; }
    json::object state() const {
        if (!fs::exists(state_file())) return {};
        return json::parse(read_file(state_file())).as_object();
    }
};

// The subset "n/N" recorded for repo, and its parts.
std::pair<int, int> subset_of(const json::object &entry) {
    const std::string s(entry.at("subset").as_string());
    const auto slash = s.find('/');
    return {std::stoi(s.substr(0, slash)), std::stoi(s.substr(slash + 1))};
}

// The largest file under <repo>/data: a pack of disk data.
std::string largest_pack(const std::string &repo) {
    std::string best;
    std::uintmax_t size = 0;
    for (const auto &e : fs::recursive_directory_iterator(repo + "/data"))
        if (e.is_regular_file() && e.file_size() > size) {
            size = e.file_size();
            best = e.path().string();
        }
    return best;
}

void corrupt_middle(const std::string &file) {
    fs::permissions(file, fs::perms::owner_write, fs::perm_options::add);
    std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(fs::file_size(file) / 2));
    io.write("CORRUPTED-ON-PURPOSE", 20);
}

const std::map<std::string, std::optional<std::string>> k_budget = {{"RESTIC_VERIFY_BUDGET_MB", "1"}};

}  // namespace

BOOST_AUTO_TEST_SUITE(verify)

BOOST_AUTO_TEST_CASE(a_corrupted_pack_is_found_within_n_cycles_and_named) {
    verify_env e;
    e.f.make_vm(7, {{0, 16, 5, true}});
    back_up(e.f, 7);
    e.f.make_vm(7, {{0, 16, 5, true}});  // new random data: more packs
    back_up(e.f, 7);
    const std::string repo = e.f.base_path() + "/7";
    const std::string pack = largest_pack(repo);
    const std::string pack_id = fs::path(pack).filename().string();
    corrupt_middle(pack);

    int total = 0;
    bool found = false;
    std::string err;
    for (int cycle = 1; cycle <= 40 && !found && (total == 0 || cycle <= total); ++cycle) {
        const auto r = e.monitor(k_budget);
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        BOOST_TEST(r.out.find("USED_MB=") == 0u, r.out);
        const auto st = e.state();
        BOOST_REQUIRE_MESSAGE(st.contains("repositories"), "no result after cycle " << cycle << ": " << r.err);
        const auto &entry = st.at("repositories").as_object().at("7").as_object();
        const auto [n, N] = subset_of(entry);
        total = N;
        BOOST_TEST(n == cycle, "cycle " << cycle << " read subset " << n << "/" << N);
        BOOST_TEST(std::string(st.at("cursor").as_string()) == "7");
        if (std::string(entry.at("result").as_string()) == "damaged") {
            found = true;
            err = r.err;
            BOOST_TEST(std::string(entry.at("vm").as_string()) == "7");
            const std::string msg(entry.at("message").as_string());
            BOOST_TEST(msg.find(pack_id) != std::string::npos, msg);
        } else {
            BOOST_TEST(std::string(entry.at("result").as_string()) == "ok", entry);
        }
    }
    BOOST_TEST_MESSAGE("N = " << total);
    BOOST_TEST(total >= 3, "the budget must make N >= 3, got " << total);
    BOOST_TEST(found, "the corrupted pack " << pack_id << " was not found within N = " << total << " cycles");
    BOOST_TEST(err.find("VM 7") != std::string::npos, err);
    BOOST_TEST(err.find("damaged") != std::string::npos, err);
    BOOST_TEST(err.find(pack_id) != std::string::npos, err);
    // The damage stays reported while other subsets of the repository are
    // read (it goes only once its own packs read clean).
    if (found && total > 1) {
        const auto r = e.monitor(k_budget);
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        const auto st = e.state();
        const auto &entry = st.at("repositories").as_object().at("7").as_object();
        BOOST_TEST(std::string(entry.at("result").as_string()) == "damaged", entry);
        BOOST_TEST(r.err.find("stays reported") != std::string::npos, r.err);
    }
    // Files 0600 in a 0700 directory.
    const auto perms = fs::status(e.state_file()).permissions();
    BOOST_TEST(((perms & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none));
    const auto dperms = fs::status(e.state_dir + "/100").permissions();
    BOOST_TEST(((dperms & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none));
}

BOOST_AUTO_TEST_CASE(a_healthy_repository_is_ok_for_every_subset_and_repositories_rotate) {
    verify_env e;
    e.f.make_vm(8, {{0, 16, 5, true}});
    back_up(e.f, 8);
    e.f.make_vm(9, {{0, 16, 1, true}});
    back_up(e.f, 9);
    std::set<int> seen8;
    int total8 = 0;
    std::vector<std::string> order;
    for (int cycle = 0; cycle < 40; ++cycle) {
        const auto r = e.monitor({{"RESTIC_VERIFY_BUDGET_MB", "1"}, {"RESTIC_VERIFY_WINDOW", "00-24"}});
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        const auto st = e.state();
        const std::string cursor(st.at("cursor").as_string());
        order.push_back(cursor);
        const auto &entry = st.at("repositories").as_object().at(cursor).as_object();
        BOOST_TEST(std::string(entry.at("result").as_string()) == "ok", entry);
        BOOST_TEST(std::string(entry.at("vm").as_string()) == cursor);
        if (cursor == "8") {
            const auto [n, N] = subset_of(entry);
            total8 = N;
            seen8.insert(n);
        }
        if (total8 > 0 && static_cast<int>(seen8.size()) == total8) break;
    }
    BOOST_TEST(total8 >= 3);
    BOOST_TEST(static_cast<int>(seen8.size()) == total8, "subsets of 8 read: " << seen8.size() << " of " << total8);
    // One repository per cycle, in turn.
    for (std::size_t i = 1; i < order.size(); ++i) BOOST_TEST(order[i] != order[i - 1], "cycle " << i);
    BOOST_TEST(order.front() == "8");
}

BOOST_AUTO_TEST_CASE(a_backup_started_while_a_check_runs_succeeds) {
    verify_env e;
    e.f.make_vm(7, {{0, 16, 3, true}});
    back_up(e.f, 7);
    const std::string repo = e.f.base_path() + "/7";
    spawned_process mon(e.f.host_argv("monitor", {"100"}, e.cfg()), e.monitor_input(k_budget));
    const pid_t check = find_process_with({"--no-lock", "check"}, std::chrono::seconds(60));
    BOOST_REQUIRE_MESSAGE(check > 0, "restic check never started");
    ::kill(check, SIGSTOP);  // the check stays in the middle of its run
    // It holds no lock.
    std::error_code ec;
    BOOST_TEST(fs::is_empty(repo + "/locks", ec));
    e.f.make_vm(7, {{0, 16, 3, true}});
    const auto b = e.f.host_action("backup", backup_args(e.f, 7), e.f.document());
    ::kill(check, SIGCONT);
    BOOST_TEST(b.exit_code == 0, b.err);
    const auto m = mon.wait(std::chrono::seconds(120));
    BOOST_TEST(m.exit_code == 0, m.err);
    const auto snaps = e.f.restic(repo, {"snapshots", "--json", "--no-lock"});
    BOOST_TEST(json::parse(snaps.out).as_array().size() == 2u);
    // Whatever the check saw of the backup in flight is no damage.
    const auto st = e.state();
    if (st.contains("repositories")) {
        const auto &entry = st.at("repositories").as_object().at("7").as_object();
        BOOST_TEST(std::string(entry.at("result").as_string()) != "damaged", entry);
    }
    BOOST_TEST(m.err.find("damaged") == std::string::npos, m.err);
    // The repository is sound: a full check afterwards.
    const auto full = e.f.restic(repo, {"check", "--read-data"});
    BOOST_TEST(full.exit_code == 0, full.out << full.err);
}

BOOST_AUTO_TEST_CASE(outside_the_window_nothing_runs) {
    verify_env e;
    e.f.make_vm(7, {{0, 16, 1}});
    back_up(e.f, 7);
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    ::localtime_r(&now, &local);
    char window[8];
    std::snprintf(window, sizeof window, "%02d-%02d", (local.tm_hour + 2) % 24, (local.tm_hour + 3) % 24);
    const auto r = e.monitor({{"RESTIC_VERIFY_BUDGET_MB", "1"}, {"RESTIC_VERIFY_WINDOW", std::string(window)}});
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    BOOST_TEST(!fs::exists(e.state_file()), read_file(e.state_file()));
    // Inside it (the current hour), it runs.
    std::snprintf(window, sizeof window, "%02d-%02d", local.tm_hour, (local.tm_hour + 1) % 24);
    const auto in = e.monitor({{"RESTIC_VERIFY_BUDGET_MB", "1"}, {"RESTIC_VERIFY_WINDOW", std::string(window)}});
    BOOST_REQUIRE_MESSAGE(in.exit_code == 0, in.err);
    BOOST_TEST(fs::exists(e.state_file()), in.err);
    // No budget: off.
    fs::remove(e.state_file());
    const auto off = e.monitor({});
    BOOST_REQUIRE_MESSAGE(off.exit_code == 0, off.err);
    BOOST_TEST(!fs::exists(e.state_file()));
}

BOOST_AUTO_TEST_CASE(a_repository_holding_a_lock_is_skipped) {
    verify_env e;
    e.f.make_vm(7, {{0, 16, 1}});
    back_up(e.f, 7);
    e.f.make_vm(8, {{0, 16, 1}});
    back_up(e.f, 8);
    // A lock file (what a running backup leaves while it works).
    const std::string lock = e.f.base_path() + "/7/locks/" + std::string(64, 'a');
    std::ofstream(lock) << "x";
    for (int i = 0; i < 2; ++i) {
        const auto r = e.monitor(k_budget);
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        BOOST_TEST(r.err.find("skipping " + e.f.base_path() + "/7") != std::string::npos, r.err);
        const auto st = e.state();
        BOOST_TEST(!st.at("repositories").as_object().contains("7"));
        BOOST_TEST(std::string(st.at("cursor").as_string()) == "8");
    }
    fs::remove(lock);
    const auto r = e.monitor(k_budget);
    BOOST_TEST(std::string(e.state().at("cursor").as_string()) == "7", r.err);
}

BOOST_AUTO_TEST_CASE(bad_verification_attributes_name_the_attribute) {
    verify_env e;
    auto r = e.monitor({{"RESTIC_VERIFY_BUDGET_MB", "lots"}});
    BOOST_TEST(r.exit_code != 0);
    BOOST_TEST(r.err.find("RESTIC_VERIFY_BUDGET_MB must be an integer") != std::string::npos, r.err);
    r = e.monitor({{"RESTIC_VERIFY_BUDGET_MB", "1"}, {"RESTIC_VERIFY_WINDOW", "1-5"}});
    BOOST_TEST(r.exit_code != 0);
    BOOST_TEST(r.err.find("RESTIC_VERIFY_WINDOW must be HH-HH") != std::string::npos, r.err);
    BOOST_TEST(!fs::exists(e.state_dir));
}

// RESTIC_BACKEND=S3: the repositories and their packs are listed in the
// bucket (ListObjectsV2), and restic checks here against the s3: URL.
BOOST_AUTO_TEST_CASE(s3_repositories_are_listed_and_checked_in_the_bucket) {
    verify_env e;
    auto &ceph = ceph_fixture::shared();
    e.f.use_s3(
        {ceph.s3_endpoint(), "oneds-verify-" + std::to_string(::getpid()), ceph.access_key(), ceph.secret_key()});
    e.f.make_vm(7, {{0, 16, 3, true}});
    back_up(e.f, 7);
    for (int cycle = 1; cycle <= 2; ++cycle) {
        const auto r = e.monitor(k_budget);
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        const auto st = e.state();
        BOOST_REQUIRE_MESSAGE(st.contains("repositories"), r.err);
        const auto &entry = st.at("repositories").as_object().at("7").as_object();
        BOOST_TEST(std::string(entry.at("result").as_string()) == "ok", entry);
        const auto [n, N] = subset_of(entry);
        BOOST_TEST(n == cycle);
        BOOST_TEST(N >= 3, "N from the packs' sizes in the bucket: " << N);
    }
}

// In MAD mode (oned's way) the cycle runs on the plugin instance's own
// thread: MONITOR replies while the check is held stopped, and a MONITOR that
// comes while a cycle runs starts none.
BOOST_AUTO_TEST_CASE(in_mad_mode_monitor_does_not_wait_for_the_check) {
    // The check must be caught running and held stopped: one that ended
    // before SIGSTOP reached it (a stall of this test between finding it and
    // the signal) proves nothing, and the scenario starts again from scratch.
    std::unique_ptr<verify_env> env;
    std::unique_ptr<oned_peer> started;
    pid_t check = -1;
    for (int attempt = 1; attempt <= 3 && check < 0; ++attempt) {
        started.reset();  // the host before the fixture it runs in
        env = std::make_unique<verify_env>();
        env->f.make_vm(7, {{0, 16, 3, true}});
        back_up(env->f, 7);
        peer_options o;
        o.executable = ONEDS_TEST_HOST_PATH;
        o.arguments = "-t 15 -d restic -c " + env->f.write_config({{"state_dir", env->state_dir}}) +
                      " --plugin restic=" + ONEDS_TEST_RESTIC_PATH;
        started = std::make_unique<oned_peer>(o);
        BOOST_REQUIRE(started->init().ok);
        started->send_request("MONITOR", 1, env->monitor_input(k_budget));
        const pid_t found = find_process_with({"--no-lock", "check"}, std::chrono::seconds(60));
        BOOST_REQUIRE_MESSAGE(found > 0, "restic check never started: " << started->transcript());
        ::kill(found, SIGSTOP);
        if (wait_stopped(found)) {
            check = found;
        } else {
            BOOST_TEST_MESSAGE("attempt " << attempt << ": restic check ended before it could be stopped");
            // In case it was only slow to stop (and is still that check).
            const auto argv = process_argv(found);
            if (std::find(argv.begin(), argv.end(), "check") != argv.end()) ::kill(found, SIGCONT);
            (void)started->finalize();
        }
    }
    BOOST_REQUIRE_MESSAGE(check > 0, "restic check could not be caught running in three attempts");
    verify_env &e = *env;
    oned_peer &peer = *started;
    const auto r1 = peer.wait_for_reply("MONITOR", 1, std::chrono::seconds(30));
    BOOST_REQUIRE_MESSAGE(r1.has_value(), "no MONITOR reply while the check is stopped: " << peer.transcript());
    BOOST_TEST(r1->success);
    peer.send_request("MONITOR", 2, e.monitor_input(k_budget));
    const auto r2 = peer.wait_for_reply("MONITOR", 2, std::chrono::seconds(30));
    BOOST_REQUIRE(r2.has_value());
    BOOST_TEST(r2->success);
    BOOST_TEST(!fs::exists(e.state_file()));
    ::kill(check, SIGCONT);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!fs::exists(e.state_file()) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    BOOST_REQUIRE_MESSAGE(fs::exists(e.state_file()), peer.transcript());
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const auto st = e.state();
    const auto &entry = st.at("repositories").as_object().at("7").as_object();
    BOOST_TEST(std::string(entry.at("result").as_string()) == "ok", entry);
    // One cycle only: the second MONITOR started none.
    BOOST_TEST(std::string(entry.at("subset").as_string()).starts_with("1/"), entry);
    const auto exit = peer.finalize();
    BOOST_TEST(exit.clean(), exit.describe());
}

BOOST_AUTO_TEST_SUITE_END()
