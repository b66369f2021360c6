#define BOOST_TEST_MODULE restic_stress
// Concurrent stress on one job repository (docs/secrets-and-stress.md), with
// the real restic, sshd and qemu-img: 20 backups of 10 VMs (two each, in
// five parallel action processes, FULL backups into job_5), interleaved with
// two cancelled backups (backup_cancel while restic runs), downloads of
// finished backups, and, through ONE MAD-mode host (oned_peer, as oned),
// INCREMENT_FLATTEN of two chains, RM of a chain and of one of the new
// backups, and MONITORs. Then: every MAD request answered exactly once (by
// id), every action answered once (an exit code), no restic lock and none of
// ours left, `restic check` clean, and every remaining snapshot downloads (by
// the driver's downloader) to the disk as it was when that backup ran.
#include "tests/integration/oned_requests.hpp"
#include "tests/restic/restore_stock_repo.hpp"

#include "common/base64.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

using namespace oneds::test;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr int k_job = 5;
constexpr int k_vms = 10;
constexpr int k_rounds = 2;

std::string describe(const process_result &r) {
    return "exit " + std::to_string(r.exit_code) + (r.killed ? " (killed)" : "") + "\n--- stdout ---\n" +
           r.out.substr(0, 500) + "\n--- stderr ---\n" + r.err;
}

double since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// What one backup stored: its snapshot and the disk as it was.
struct stored {
    int vm = 0;
    int round = 0;
    std::string short_id;
    std::string expected_raw;
};

struct stress {
    restic_fixture f;
    std::string repo = f.base_path() + "/job_" + std::to_string(k_job);
    std::string cfg_plugin_lock_dir = f.dir().file("locks");
    std::mutex m;
    std::vector<stored> backups;        // successful ones
    std::vector<std::string> problems;  // anything that went wrong
    std::map<std::string, int> exits;   // per action process: label -> exit code (each once)
    std::atomic<int> downloads_checked{0};
    std::atomic<int> download_seq{0};

    void problem(const std::string &p) {
        std::lock_guard l(m);
        problems.push_back(p);
    }
    std::vector<std::string> notes;  // printed at the end (Boost.Test is not thread-safe)
    void note(const std::string &n) {
        std::lock_guard l(m);
        notes.push_back(n);
    }
    void answered(const std::string &label, int code) {
        std::lock_guard l(m);
        if (!exits.emplace(label, code).second) problems.push_back(label + " answered twice");
    }

    std::vector<std::string> backup_args(int vm) const {
        return {"hypervisor:" + f.vm_dir(vm), "0", "one-" + std::to_string(vm), std::to_string(k_job),
                std::to_string(vm),           "0"};
    }
    // Round r's content: a pattern of its own at an offset of its own.
    void write_round(int vm, int round) const {
        stock::must({tool("qemu-io"), "-c",
                     "write -P " + std::to_string(16 + vm * 3 + round) + " " + std::to_string(round * 256) + "k 256k",
                     f.backup_dir(vm) + "/disk.0.0"},
                    "qemu-io");
    }
    std::string snapshot_raw(int vm, int round) const {
        const auto raw = f.dir().file("expected." + std::to_string(vm) + "." + std::to_string(round) + ".raw");
        stock::must(
            {tool("qemu-img"), "convert", "-q", "-f", "qcow2", "-O", "raw", f.backup_dir(vm) + "/disk.0.0", raw},
            "qemu-img convert");
        return raw;
    }
    std::string url(const std::string &short_id, int vm) const {
        return "restic://100/" + std::to_string(k_job) + "/0:" + short_id + f.backup_dir(vm) + "/disk.0.0";
    }

    // One backup through its own action process; records what it stored.
    std::optional<stored> backup(int vm, int round, const std::map<std::string, std::optional<std::string>> &t = {}) {
        write_round(vm, round);
        const auto raw = snapshot_raw(vm, round);
        const auto r = f.host_action("backup", backup_args(vm), f.document(t));
        const std::string label = "backup vm " + std::to_string(vm) + " round " + std::to_string(round);
        answered(label, r.exit_code);
        std::smatch mm;
        if (r.exit_code != 0 || !std::regex_match(r.out, mm, std::regex("([0-9a-f]{8}) [0-9]+ raw\n"))) {
            problem(label + " failed: " + describe(r));
            return std::nullopt;
        }
        stored s{vm, round, mm[1], raw};
        std::lock_guard l(m);
        backups.push_back(s);
        return s;
    }

    // The downloader's --stdout of a snapshot, compared with the disk.
    void download_and_compare(const std::string &url, const std::string &expected_raw, const std::string &label) {
        const auto r = f.host_action("downloader", {"--stdout", url}, f.document());
        answered("download " + std::to_string(++download_seq) + " of " + label, r.exit_code);
        if (r.exit_code != 0) {
            problem("download of " + label + " failed: " + describe(r));
            return;
        }
        const auto got = f.dir().write("got." + std::to_string(::gettid()) + ".qcow2", r.out);
        const auto diff = stock::compare_images(expected_raw, got);
        fs::remove(got);
        if (!diff.empty()) problem("download of " + label + " differs: " + diff);
        ++downloads_checked;
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(twenty_backups_with_rm_flatten_downloads_and_cancels_on_one_job_repository) {
    const auto t_start = std::chrono::steady_clock::now();
    stress s;
    auto &f = s.f;

    // ---- set-up: 10 VMs with a 4 MiB disk, two slow ones to cancel, and
    // three chains written the stock way into the job repository.
    for (int vm = 1; vm <= k_vms; ++vm) f.make_vm(vm, {{0, 4, 1}});
    for (int vm : {11, 12}) f.make_vm(vm, {{0, 8, 6, true}});
    stock::chain flat_a(f, 21, {{0, 4, 1}}, k_job), flat_b(f, 22, {{0, 4, 1}}, k_job), gone(f, 23, {{0, 4, 1}}, k_job);
    flat_a.backup(3);
    flat_b.backup(3);
    gone.backup(2);
    const double setup_s = since(t_start);
    BOOST_TEST_MESSAGE("set-up: " << setup_s << " s");

    // ---- the MAD-mode host, as oned starts it.
    oned_peer peer(peer_options{
        ONEDS_TEST_HOST_PATH,
        "-t 4 -d restic -c " + f.write_config({}) + " --plugin restic=" + std::string(ONEDS_TEST_RESTIC_PATH),
        {},
        true});
    BOOST_REQUIRE(peer.init().ok);
    std::map<std::int64_t, std::string> sent;  // MAD id -> action
    std::mutex sent_m;
    const auto send = [&](const std::string &action, std::int64_t id, const std::string &doc) {
        {
            std::lock_guard l(sent_m);
            BOOST_REQUIRE(sent.emplace(id, action).second);
        }
        BOOST_REQUIRE(peer.send_request(action, id, oneds::common::base64_encode(doc)));
    };
    const auto flatten_doc = [&](const stock::chain &c, int image) {
        stock::chain::image_options o;
        o.id = image;
        return f.document_with_image(c.image_xml(o), {}, "<EXTRA_DATA><KEEP_LAST>2</KEEP_LAST></EXTRA_DATA>");
    };

    const auto t_stress = std::chrono::steady_clock::now();
    std::atomic<bool> vm1_first_done{false};
    std::string vm1_first_id;

    // ---- 20 backups: five workers, two VMs each, round 1 then round 2.
    std::vector<std::jthread> workers;
    for (int w = 0; w < 5; ++w)
        workers.emplace_back([&, w] {
            const int a = 1 + w, b = 6 + w;
            for (int round = 1; round <= k_rounds; ++round)
                for (int vm : {a, b}) {
                    const auto st = s.backup(vm, round);
                    // Round 1 of the first five VMs is downloaded at once,
                    // while the others still back up.
                    if (st && round == 1 && vm <= 5)
                        s.download_and_compare(s.url(st->short_id, vm), st->expected_raw,
                                               "vm " + std::to_string(vm) + " round 1 (during the stress)");
                    // Then (not before its download) RM may take it.
                    if (vm == 1 && round == 1) {
                        std::lock_guard l(sent_m);
                        if (st) vm1_first_id = st->short_id;
                        vm1_first_done = true;
                    }
                }
        });

    // ---- two cancelled backups (bandwidth-limited, so that they run long
    // enough to be cancelled).
    std::jthread canceller([&] {
        for (int vm : {11, 12}) {
            std::this_thread::sleep_for(vm == 11 ? 2s : 1s);
            s.write_round(vm, 1);
            const auto raw = s.snapshot_raw(vm, 1);
            spawned_process running(f.host_argv("backup", s.backup_args(vm)), f.document({{"RESTIC_BWLIMIT", "512"}}));
            const bool seen = wait_for_process_with({"backup", f.backup_dir(vm) + "/vm.xml"}, std::chrono::seconds(90));
            if (!seen) s.problem("the restic of the backup of vm " + std::to_string(vm) + " to cancel never showed");
            std::this_thread::sleep_for(1s);
            // As the VMM driver calls it: <host>:<vm_dir> <deploy_id>.
            const auto args = s.backup_args(vm);
            const auto c = f.host_action("backup_cancel", {args[0], args[2]}, f.document());
            s.answered("backup_cancel vm " + std::to_string(vm), c.exit_code);
            if (c.exit_code != 0) s.problem("backup_cancel of vm " + std::to_string(vm) + ": " + describe(c));
            const auto r = running.wait(std::chrono::seconds(120));
            s.answered("cancelled backup vm " + std::to_string(vm), r.exit_code);
            s.note("cancelled backup of vm " + std::to_string(vm) + ": exit " + std::to_string(r.exit_code) +
                   " after " + std::to_string(r.seconds()) + " s");
            if (r.killed) s.problem("the cancelled backup of vm " + std::to_string(vm) + " did not end");
            if (r.exit_code == 0) {
                // It finished before the cancel reached it: a backup like
                // the others, whose data is checked too.
                s.note("backup of vm " + std::to_string(vm) + " finished before its cancel");
                std::smatch mm;
                if (std::regex_match(r.out, mm, std::regex("([0-9a-f]{8}) [0-9]+ raw\n"))) {
                    std::lock_guard l(s.m);
                    s.backups.push_back({vm, 1, mm[1], raw});
                }
            }
        }
    });

    // ---- the MAD side: flattens, rms and monitors while all that runs.
    std::this_thread::sleep_for(1s);
    send("INCREMENT_FLATTEN", 121, flatten_doc(flat_a, 121));
    send("MONITOR", 100, f.document());
    send("RM", 123, f.document_with_image(gone.image_xml({123, true, {}, "raw"})));
    std::this_thread::sleep_for(2s);
    send("INCREMENT_FLATTEN", 122, flatten_doc(flat_b, 122));
    {
        const auto until = std::chrono::steady_clock::now() + 180s;
        while (!vm1_first_done && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(100ms);
    }
    std::string removed;
    {
        std::lock_guard l(sent_m);
        removed = vm1_first_id;
    }
    if (!removed.empty()) send("RM", 201, f.document_with_image(stock::full_image_xml(201, 1, removed, k_job)));
    send("MONITOR", 101, f.document());

    // A MONITOR every 3 s and an action the driver does not support (CP,
    // answered FAILURE at once) while the backups run.
    send("CP", 300, f.document_with_image(image_xml(300)));
    std::int64_t monitor_id = 102;
    for (auto until = std::chrono::steady_clock::now() + 240s; std::chrono::steady_clock::now() < until;) {
        bool busy = false;
        {
            std::lock_guard l(s.m);
            busy = std::count_if(s.exits.begin(), s.exits.end(),
                                 [](const auto &e) { return e.first.rfind("backup vm", 0) == 0; }) < k_vms * k_rounds;
        }
        if (!busy) break;
        send("MONITOR", monitor_id++, f.document());
        std::this_thread::sleep_for(3s);
    }
    for (auto &w : workers) w.join();
    canceller.join();
    // Every MAD request answered.
    const bool all_answered = peer.wait_until(
        [&](const std::vector<driver_line> &lines) {
            std::size_t n = 0;
            for (const auto &l : lines)
                if (parse_reply(l)) ++n;
            return n >= sent.size();
        },
        240s);
    BOOST_TEST(all_answered, peer.transcript());
    const double stress_s = since(t_stress);
    const auto exit = peer.finalize();
    BOOST_TEST(exit.clean(), exit.describe());

    // ---- exactly one reply per request, all successful.
    std::map<std::int64_t, int> replies;
    std::map<std::int64_t, reply> reply_of;
    for (const auto &r : peer.replies()) {
        ++replies[r.id];
        reply_of[r.id] = r;
        BOOST_TEST(sent.count(r.id) == 1U, "a reply to a request never sent: " << r.info);
    }
    for (const auto &[id, action] : sent) {
        BOOST_TEST(replies[id] == 1, action << " " << id << " answered " << replies[id] << " times");
        if (replies[id] == 1) {
            BOOST_TEST(reply_of[id].action == action);
            // CP is not supported by the restic driver, as stock.
            BOOST_TEST(reply_of[id].success == (action != "CP"), action << " " << id << ": " << reply_of[id].info);
        }
    }
    for (const auto &p : s.problems) BOOST_ERROR(p);
    s.problems.clear();

    // ---- the 20 backups all succeeded.
    int ours = 0;
    for (const auto &b : s.backups) ours += b.vm <= k_vms ? 1 : 0;
    BOOST_TEST(ours == k_vms * k_rounds);

    // ---- no lock left: restic's, and ours (flocks in lock_dir).
    const auto locks = f.restic(s.repo, {"list", "locks", "--no-lock"});
    BOOST_TEST(locks.exit_code == 0, describe(locks));
    BOOST_TEST(locks.out == "", "restic locks left: " << locks.out);
    std::error_code ec;
    for (const auto &e : fs::recursive_directory_iterator(s.cfg_plugin_lock_dir, ec)) {
        if (!e.is_regular_file()) continue;
        const int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
        BOOST_REQUIRE(fd >= 0);
        BOOST_TEST(::flock(fd, LOCK_EX | LOCK_NB) == 0, "our lock " << e.path() << " is still held");
        ::close(fd);
    }
    for (const pid_t pid : own_descendants()) {
        const auto argv = process_argv(pid);
        for (const auto &a : argv)
            BOOST_TEST(!(a.ends_with("/restic") || a == "restic" || a.ends_with("one_ds_host")),
                       "a process is left: " << pid << " " << a);
    }

    // ---- restic check.
    BOOST_TEST(stock::check_repository(f, s.repo) == "");

    // ---- what remains is exactly what should, and downloads to its data.
    const auto t_verify = std::chrono::steady_clock::now();
    std::set<std::string> want;
    std::vector<stored> remaining;
    for (const auto &b : s.backups)
        if (b.short_id != removed) {
            want.insert(b.short_id);
            remaining.push_back(b);
        }
    const auto merged_of = [&](const stock::chain &c, std::int64_t id) {
        // "<size> 1:<merged>,2:<last>"
        std::smatch mm;
        const std::string info = reply_of.count(id) ? reply_of[id].info : "";
        BOOST_REQUIRE_MESSAGE(std::regex_match(info, mm, std::regex("[0-9]+ 1:([0-9a-f]{8}),2:" + c.at(2).short_id)),
                              "INCREMENT_FLATTEN " << id << ": " << info);
        return std::string(mm[1]);
    };
    const std::string merged_a = merged_of(flat_a, 121), merged_b = merged_of(flat_b, 122);
    want.insert({merged_a, flat_a.at(2).short_id, merged_b, flat_b.at(2).short_id});
    std::set<std::string> have;
    for (const auto &sn : stock::snapshots(f, s.repo)) have.insert(sn.short_id);
    BOOST_TEST(have == want, boost::test_tools::per_element());

    std::vector<std::jthread> checkers;
    std::atomic<std::size_t> next{0};
    for (int w = 0; w < 4; ++w)
        checkers.emplace_back([&] {
            for (std::size_t i = next++; i < remaining.size(); i = next++) {
                const auto &b = remaining[i];
                s.download_and_compare(s.url(b.short_id, b.vm), b.expected_raw,
                                       "vm " + std::to_string(b.vm) + " round " + std::to_string(b.round));
            }
        });
    for (auto &c : checkers) c.join();
    for (const auto *c : {&flat_a, &flat_b}) {
        const std::string merged = c == &flat_a ? merged_a : merged_b;
        const std::string url =
            "restic://100/" + std::to_string(k_job) + "/1:" + merged + ",2:" + c->at(2).short_id + c->disk_path(0, 2);
        s.download_and_compare(url, c->expected_image(0, 2), "flattened chain of vm " + std::to_string(c->vm()));
    }
    for (const auto &p : s.problems) BOOST_ERROR(p);
    const double verify_s = since(t_verify);
    for (const auto &n : s.notes) BOOST_TEST_MESSAGE(n);
    BOOST_TEST_MESSAGE("stress: " << stress_s << " s; verification: " << verify_s << " s; total " << since(t_start)
                                  << " s; " << s.exits.size() << " action processes, " << sent.size()
                                  << " MAD requests, " << s.downloads_checked.load() << " downloads compared");
}
