#define BOOST_TEST_MODULE restic_fault_matrix
// The process and network half of the fault matrix (docs/faults-process.md):
// faults in the middle of real work, through one_ds_host, with the real
// restic 0.14, the loopback sshd (tests/support/sshd_fixture.hpp), the Ceph
// fixture for S3 (tests/support/ceph_fixture.hpp), real qemu-img and the fake
// oned. After each fault, expect_recovered() asserts the four promises:
//   1. no lock of ours is left: none of restic's in the repository, no flock
//      held on a file of the plugin's lock and state directories, and no
//      process still working on the repository (here or through sshd);
//      where a restic was killed, its lock may stay only if the plugin's
//      bounded clean-up said it could not remove it (lock_left);
//   2. nothing half-written is taken for a backup: the repository holds the
//      snapshots it held before, plus the one a successful reply named;
//   3. the next backup of the same VM succeeds (and adds one snapshot);
//   4. `restic check` passes on the repository.
// Each case checks the first promise of all, "the request ends with a clear
// error within a bound (or succeeds where a retry is right)", itself.
// Faults that need no real work (killed restic holding an exclusive lock,
// cancels, full or read-only storage) are in fault_test.cpp.
#include "tests/oned/fake_oned.hpp"
#include "tests/integration/oned_requests.hpp"
#include "tests/peer/oned_peer.hpp"
#include "tests/restic/restore_stock_repo.hpp"
#include "tests/support/ceph_fixture.hpp"

#include "common/base64.hpp"
#include "common/proc.hpp"
#include "common/strings.hpp"

#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <regex>
#include <thread>

using namespace oneds::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace oned = oneds::test::oned;

namespace {

std::string describe(const process_result &r) {
    return "exit " + std::to_string(r.exit_code) +
           (r.term_signal != 0 ? " signal " + std::to_string(r.term_signal) : "") +
           (r.killed ? " (killed after the time limit)" : "") + " after " + std::to_string(r.seconds()) +
           " s\n--- stdout ---\n" + r.out.substr(0, 2000) + "\n--- stderr ---\n" + r.err;
}

// The last line of text that contains needle ("" when none).
std::string line_with(const std::string &text, const std::string &needle) {
    const auto at = text.rfind(needle);
    if (at == std::string::npos) return {};
    const auto begin = text.rfind('\n', at);
    const auto end = text.find('\n', at);
    return text.substr(
        begin == std::string::npos ? 0 : begin + 1,
        end == std::string::npos ? std::string::npos : end - (begin == std::string::npos ? 0 : begin + 1));
}

enum class backend { sftp, local, s3 };

const char *name_of(backend b) {
    switch (b) {
        case backend::sftp: return "SFTP";
        case backend::local: return "LOCAL";
        case backend::s3: return "S3";
    }
    return "?";
}

std::string fresh_bucket() {
    static std::atomic<int> n{0};
    return "oneds-fm-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

// One datastore on one backend: the fixture, where backups run and how the
// repositories are named.
struct site {
    backend kind;
    restic_fixture f;
    std::map<std::string, std::optional<std::string>> tmpl;
    // SFTP and S3: restic backup on the hypervisor through sshd; LOCAL: on
    // this machine (a local_hosts name), restic a direct child of the host.
    std::string backup_host;

    explicit site(backend b) : kind(b), backup_host(b == backend::local ? "localhost" : "hypervisor") {
        if (b == backend::local) tmpl["RESTIC_BACKEND"] = "LOCAL";
        if (b == backend::s3) {
            auto &ceph = ceph_fixture::shared();
            f.use_s3({ceph.s3_endpoint(), fresh_bucket(), ceph.access_key(), ceph.secret_key()});
        }
    }
    std::string repo(int vm) const { return f.base_path() + "/" + std::to_string(vm); }
    // What any process working on repo(vm) has in its argv.
    std::string marker(int vm) const {
        return kind == backend::s3 ? f.s3()->bucket + "/" + std::to_string(vm) : repo(vm);
    }
    std::string doc(std::map<std::string, std::optional<std::string>> extra = {}, int vm = 0) const {
        auto t = tmpl;
        for (auto &[k, v] : extra) t[k] = v;
        return f.document(t, "<VM><ID>" + std::to_string(vm) + "</ID></VM>");
    }
    std::vector<std::string> backup_args(int vm) const {
        return {backup_host + ":" + f.vm_dir(vm), "0", "one-" + std::to_string(vm), "-", std::to_string(vm), "0"};
    }
    // A backup slow enough to be caught in the middle: 2 MiB of random data
    // (make_vm(vm, {{0, 16, 2, true}})) at 256 KiB/s, about 8 s.
    std::vector<std::string> slow_backup_argv(int vm, const std::map<std::string, std::string> &cfg = {}) const {
        return f.host_argv("backup", backup_args(vm), cfg);
    }
    std::string slow_doc(int vm) const { return doc({{"RESTIC_BWLIMIT", "256"}}, vm); }
    process_result backup(int vm, const std::map<std::string, std::string> &cfg = {}) const {
        return f.host_action("backup", backup_args(vm), doc({}, vm), cfg);
    }
    std::size_t snapshots(int vm) const { return stock::snapshots(f, repo(vm)).size(); }
    // restic's locks in the repository, as restic lists them.
    std::string restic_locks(int vm) const {
        const auto r = f.restic(repo(vm), {"list", "locks", "--no-lock"});
        return r.exit_code == 0 ? r.out : "(restic list locks failed: " + r.err + ")";
    }
    bool has_restic_lock(int vm) const {
        if (kind != backend::s3) return !restic_lock_files(repo(vm)).empty();
        const auto out = restic_locks(vm);
        return !out.empty() && out.front() != '(';
    }
    bool wait_for_restic_lock(int vm, std::chrono::seconds limit) const {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            if (has_restic_lock(vm)) return true;
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }
    void init_repo(int vm) const {
        const auto r = f.restic(repo(vm), {"init"});
        BOOST_TEST_REQUIRE(r.exit_code == 0, "restic init: " << r.err);
    }
};

// Processes of this machine (not only this test's: a session of a killed
// sshd is no longer our descendant) with an argument that contains text.
std::vector<pid_t> processes_mentioning(const std::string &text) {
    std::vector<pid_t> out;
    for (const pid_t pid : oneds::common::all_pids()) {
        if (pid == ::getpid()) continue;
        for (const auto &arg : oneds::common::process_arguments(pid))
            if (arg.find(text) != std::string::npos) {
                out.push_back(pid);
                break;
            }
    }
    return out;
}

std::string describe_processes(const std::vector<pid_t> &pids) {
    std::string out;
    for (const pid_t pid : pids) {
        out += "\n  " + std::to_string(pid) + ":";
        for (const auto &a : oneds::common::process_arguments(pid)) out += " " + a.substr(0, 120);
    }
    return out;
}

// Files under the plugin's lock and state directories on which someone still
// holds a flock (a process of ours that outlived its request).
std::vector<std::string> held_flocks(const restic_fixture &f) {
    std::vector<std::string> held;
    for (const auto &dir : {f.dir().file("locks"), f.dir().file("state")}) {
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec)) {
            if (!it->is_regular_file(ec)) continue;
            const int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            if (::flock(fd, LOCK_EX | LOCK_NB) != 0) held.push_back(it->path().string());
            ::close(fd);
        }
    }
    return held;
}

std::string joined(const std::vector<std::string> &v) {
    std::string out;
    for (const auto &x : v) out += (out.empty() ? "" : ", ") + x;
    return out;
}

// The four promises after a fault (see the top of the file). `stored` is
// the number of snapshots the repository must hold now: those it held before
// the fault, plus one when the faulted backup's reply said it stored one.
// Whether restic's lock may outlive the fault (the next backup must remove
// it in every case).
enum class lock_left {
    never,
    // A restic was killed: its lock goes with the plugin's clean-up (a
    // `restic unlock` bounded by 10 s), which under a heavy load can miss its
    // bound once, and then says so in the faulted request's stderr (`err`).
    if_reported,
    // Nothing of ours could remove restic's lock when the fault happened
    // (one_ds_host itself was killed, or the storage was unreachable for
    // restic and for the clean-up alike).
    until_next_backup,
};

void expect_recovered(const site &s, int vm, std::size_t stored, const std::string &fault,
                      lock_left rule = lock_left::never, const std::string &err = {}) {
    BOOST_TEST_CONTEXT(fault << " on " << name_of(s.kind) << ", VM " << vm) {
        // 1. Nothing of ours still runs on the repository (bounded: a process
        // that noticed its lost connection ends by itself), no lock is left.
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        auto left = processes_mentioning(s.marker(vm));
        while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(100ms);
            left = processes_mentioning(s.marker(vm));
        }
        BOOST_TEST(left.empty(), "processes still working on the repository:" << describe_processes(left));
        if (rule != lock_left::until_next_backup) {
            const auto locks = s.restic_locks(vm);
            const bool excused = rule == lock_left::if_reported && lock_cleanup_reported_failure(err);
            BOOST_TEST((locks.empty() || excused), "restic locks left in the repository: " << locks << "\n" << err);
            if (excused) BOOST_TEST_MESSAGE("the clean-up missed its bound: " << err);
        }
        const auto flocks = held_flocks(s.f);
        BOOST_TEST(flocks.empty(), "flocks still held: " << joined(flocks));
        // 2. Nothing half-written counts as a backup.
        BOOST_TEST(s.snapshots(vm) == stored, "snapshots after the fault");
        // 3. The next backup of the same VM succeeds.
        const auto next = s.backup(vm);
        BOOST_TEST(next.exit_code == 0, "the next backup: " << describe(next));
        BOOST_TEST(s.snapshots(vm) == stored + 1, "snapshots after the next backup");
        const auto locks = s.restic_locks(vm);
        BOOST_TEST(locks.empty(), "restic locks left after the next backup: " << locks);
        // 4. The repository is sound.
        const auto check = stock::check_repository(s.f, s.repo(vm));
        BOOST_TEST(check.empty(), "restic check: " << check);
    }
}

// A failed reply: exit 255 with a line naming what failed, within the bound.
void expect_clear_failure(const process_result &r, const std::string &needle, double bound_s) {
    BOOST_TEST(r.exit_code == 255, describe(r));
    const auto line = line_with(r.err, needle);
    BOOST_TEST(!line.empty(), "no error line with '" << needle << "': " << describe(r));
    BOOST_TEST(line.find(": \n") == std::string::npos, line);
    BOOST_TEST(r.seconds() < bound_s, "took " << r.seconds() << " s: " << describe(r));
    BOOST_TEST_MESSAGE("error: " << line);
}

const std::vector<backend> k_all = {backend::sftp, backend::local, backend::s3};

// ---- a TCP forwarder whose connections the test can cut ---------------------------

class tcp_forwarder {
public:
    explicit tcp_forwarder(unsigned short target) : target_(target) {
        listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a = loopback(0);
        socklen_t len = sizeof a;
        if (listen_ < 0 || ::bind(listen_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
            ::listen(listen_, 64) != 0 || ::getsockname(listen_, reinterpret_cast<sockaddr *>(&a), &len) != 0 ||
            ::pipe2(wake_, O_CLOEXEC) != 0)
            throw std::runtime_error("tcp_forwarder: cannot listen");
        port_ = ntohs(a.sin_port);
        thread_ = std::jthread([this](std::stop_token stop) { loop(stop); });
    }
    ~tcp_forwarder() {
        thread_.request_stop();
        poke();
        thread_.join();
        for (auto &[a, b] : conns_) ::close(a), ::close(b);
        ::close(listen_);
        ::close(wake_[0]);
        ::close(wake_[1]);
    }
    tcp_forwarder(const tcp_forwarder &) = delete;
    tcp_forwarder &operator=(const tcp_forwarder &) = delete;

    unsigned short port() const { return port_; }
    // Closes every connection open now, both sides (new ones still pass).
    void cut() {
        cut_ = true;
        poke();
        while (cut_) std::this_thread::sleep_for(5ms);
    }
    int connections_seen() const { return seen_; }

private:
    static sockaddr_in loopback(unsigned short port) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        return a;
    }
    void poke() { (void)!::write(wake_[1], "x", 1); }
    static bool send_all(int fd, const char *p, ssize_t n) {
        while (n > 0) {
            const ssize_t w = ::send(fd, p, static_cast<std::size_t>(n), MSG_NOSIGNAL);
            if (w <= 0) return false;
            p += w;
            n -= w;
        }
        return true;
    }
    void loop(const std::stop_token &stop) {
        std::vector<char> buf(1 << 16);
        while (!stop.stop_requested()) {
            if (cut_) {
                for (auto &[a, b] : conns_) {
                    ::shutdown(a, SHUT_RDWR), ::shutdown(b, SHUT_RDWR);
                    ::close(a), ::close(b);
                }
                conns_.clear();
                cut_ = false;
            }
            std::vector<pollfd> fds = {{listen_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
            for (auto &[a, b] : conns_) fds.push_back({a, POLLIN, 0}), fds.push_back({b, POLLIN, 0});
            if (::poll(fds.data(), fds.size(), 1000) <= 0) continue;
            if (fds[1].revents != 0) {
                char c[16];
                (void)!::read(wake_[0], c, sizeof c);
            }
            std::vector<std::size_t> dead;
            for (std::size_t i = 0; i < conns_.size(); ++i) {
                for (int side = 0; side < 2; ++side) {
                    const auto &p = fds[2 + 2 * i + static_cast<std::size_t>(side)];
                    if (p.revents == 0) continue;
                    const int from = side == 0 ? conns_[i].first : conns_[i].second;
                    const int to = side == 0 ? conns_[i].second : conns_[i].first;
                    const ssize_t n = ::recv(from, buf.data(), buf.size(), 0);
                    if (n <= 0 || !send_all(to, buf.data(), n)) {
                        dead.push_back(i);
                        break;
                    }
                }
            }
            for (auto it = dead.rbegin(); it != dead.rend(); ++it) {
                ::close(conns_[*it].first), ::close(conns_[*it].second);
                conns_.erase(conns_.begin() + static_cast<std::ptrdiff_t>(*it));
            }
            if (fds[0].revents != 0) {
                const int in = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
                if (in < 0) continue;
                const int out = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                const sockaddr_in t = loopback(target_);
                if (out < 0 || ::connect(out, reinterpret_cast<const sockaddr *>(&t), sizeof t) != 0) {
                    ::close(in);
                    if (out >= 0) ::close(out);
                    continue;
                }
                conns_.emplace_back(in, out);
                ++seen_;
            }
        }
    }

    unsigned short target_, port_ = 0;
    int listen_ = -1, wake_[2] = {-1, -1};
    std::vector<std::pair<int, int>> conns_;  // (accepted, to the target): the loop's own
    std::atomic<bool> cut_{false};
    std::atomic<int> seen_{0};
    std::jthread thread_;
};

// An ssh_config and known_hosts like the fixture's, where "backupserver"
// goes through the forwarder ("hypervisor" still reaches sshd directly).
std::string config_through(restic_fixture &f, unsigned short port) {
    auto &sshd = f.sshd();
    const std::string hosts = read_file(sshd.known_hosts_file().string());
    const auto first = hosts.substr(0, hosts.find('\n'));
    const std::string key = first.substr(first.find(' ') + 1);
    const std::string p = std::to_string(port);
    const std::string known = f.dir().write(
        "known_hosts.fwd", hosts + "[127.0.0.1]:" + p + " " + key + "\n" + "[backupserver]:" + p + " " + key + "\n");
    std::string cfg = read_file(sshd.ssh_config_file().string());
    cfg = std::regex_replace(cfg, std::regex(sshd.known_hosts_file().string()), known);
    const auto split = cfg.find("Host hypervisor");
    BOOST_TEST_REQUIRE(split != std::string::npos);
    const std::string server = std::regex_replace(cfg.substr(0, split), std::regex("Port [0-9]+"), "Port " + p);
    return f.dir().write("ssh_config.fwd", server + cfg.substr(split));
}

// A loopback port with nothing behind it, or a socket that accepts
// connections (the kernel does, from the backlog) and never answers.
struct dead_oned {
    int fd = -1;
    unsigned short port = 0;
    explicit dead_oned(bool hanging) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
        port = ntohs(a.sin_port);
        if (hanging) {
            BOOST_TEST_REQUIRE(::listen(fd, 64) == 0);
        } else {
            ::close(fd);
            fd = -1;
        }
    }
    ~dead_oned() {
        if (fd >= 0) ::close(fd);
    }
    dead_oned(const dead_oned &) = delete;
    dead_oned &operator=(const dead_oned &) = delete;
    std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port) + "/RPC2"; }
};

oned_peer start_mad(const restic_fixture &f, const std::string &options,
                    const std::map<std::string, std::string> &plugin, const std::map<std::string, std::string> &host) {
    return oned_peer(peer_options{ONEDS_TEST_HOST_PATH,
                                  options + " -d restic -c " + f.write_config(plugin, host) +
                                      " --plugin restic=" + std::string(ONEDS_TEST_RESTIC_PATH),
                                  {},
                                  true});
}

double seconds_since(std::chrono::steady_clock::time_point t0, std::chrono::steady_clock::time_point t1) {
    return std::chrono::duration<double>(t1 - t0).count();
}

}  // namespace

// ---- restic, the host or the link killed in the middle of a backup ----------------

BOOST_AUTO_TEST_SUITE(killed_mid_backup)

// restic SIGKILLed while it uploads: the backup fails saying restic was
// killed; nothing of it counts. (SFTP: fault_test.cpp,
// a_killed_restic_is_reported_and_the_next_backup_succeeds.)
BOOST_AUTO_TEST_CASE(restic_killed) {
    for (const backend b : {backend::local, backend::s3}) {
        site s(b);
        s.f.make_vm(7, {{0, 16, 2, true}});
        s.init_repo(7);
        spawned_process p(s.slow_backup_argv(7), s.slow_doc(7));
        const pid_t restic = find_process_with({"backup", "--tag=one-7"}, 90s);
        BOOST_TEST_REQUIRE(restic > 0, name_of(b));
        BOOST_TEST_REQUIRE(s.wait_for_restic_lock(7, 60s), name_of(b));
        ::kill(restic, SIGKILL);
        const auto r = p.wait(60s);
        BOOST_TEST_CONTEXT(name_of(b)) expect_clear_failure(r, "Error backing up VM 7", 30);
        expect_recovered(s, 7, 0, "restic killed mid-backup", lock_left::if_reported, r.err);
    }
}

// one_ds_host (action mode) SIGKILLed in the middle of a backup, as by the
// OOM killer: the request has no reply (oned sees the driver die), so the
// restic it started must not finish the backup on its own.
BOOST_AUTO_TEST_CASE(host_killed) {
    for (const backend b : k_all) {
        site s(b);
        s.f.make_vm(7, {{0, 16, 2, true}});
        s.init_repo(7);
        spawned_process p(s.slow_backup_argv(7), s.slow_doc(7));
        BOOST_TEST_REQUIRE(find_process_with({"backup", "--tag=one-7"}, 90s) > 0, name_of(b));
        BOOST_TEST_REQUIRE(s.wait_for_restic_lock(7, 60s), name_of(b));
        p.send_signal(SIGKILL);
        const auto r = p.wait(30s);
        BOOST_TEST(r.term_signal == SIGKILL, describe(r));
        expect_recovered(s, 7, 0, "host killed mid-backup", lock_left::until_next_backup);
    }
}

// The backup server's sshd (here also the hypervisor's) killed while restic
// uploads through it; sshd comes back before the next backup.
BOOST_AUTO_TEST_CASE(sshd_killed) {
    site s(backend::sftp);
    s.f.make_vm(7, {{0, 16, 2, true}});
    s.init_repo(7);
    spawned_process p(s.slow_backup_argv(7), s.slow_doc(7));
    BOOST_TEST_REQUIRE(find_process_with({"backup", "--tag=one-7"}, 90s) > 0);
    BOOST_TEST_REQUIRE(s.wait_for_restic_lock(7, 60s));
    s.f.sshd().kill_server();
    const auto r = p.wait(90s);
    expect_clear_failure(r, "Error backing up VM 7", 60);
    s.f.sshd().restart();
    expect_recovered(s, 7, 0, "sshd killed mid-backup", lock_left::until_next_backup);
}

// The connection from the hypervisor's restic to the backup server cut
// (a TCP forwarder between them closes it).
BOOST_AUTO_TEST_CASE(ssh_link_cut) {
    site s(backend::sftp);
    tcp_forwarder fwd(s.f.sshd().port());
    const std::map<std::string, std::string> cfg = {{"ssh_config", config_through(s.f, fwd.port())}};
    s.f.make_vm(7, {{0, 16, 2, true}});
    s.init_repo(7);
    spawned_process p(s.slow_backup_argv(7, cfg), s.slow_doc(7));
    BOOST_TEST_REQUIRE(find_process_with({"backup", "--tag=one-7"}, 90s) > 0);
    BOOST_TEST_REQUIRE(s.wait_for_restic_lock(7, 60s));
    BOOST_TEST_REQUIRE(fwd.connections_seen() > 0, "the backup did not go through the forwarder");
    fwd.cut();
    const auto r = p.wait(90s);
    expect_clear_failure(r, "Error backing up VM 7", 60);
    expect_recovered(s, 7, 0, "ssh link cut mid-backup", lock_left::until_next_backup);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- restic killed in the middle of a download -------------------------------------

BOOST_AUTO_TEST_SUITE(killed_mid_download)

BOOST_AUTO_TEST_CASE(restic_killed) {
    for (const backend b : k_all) {
        site s(b);
        stock::chain c(s.f, 7, {{0, 16, 2, true}});
        c.backup();
        const std::string tmp = s.f.dir().file("rtmp");
        fs::create_directories(tmp);
        spawned_process p(s.f.host_argv("downloader", {"--stdout", c.url(0, 0)}),
                          s.doc({{"RESTIC_BWLIMIT", "256"}, {"RESTIC_TMP_DIR", tmp}}));
        const pid_t restic = find_process_with({"restore", c.at(0).short_id}, 60s);
        const pid_t dump = restic > 0 ? restic : find_process_with({"dump"}, 1s);
        BOOST_TEST_REQUIRE(dump > 0, name_of(b));
        BOOST_TEST_REQUIRE(s.wait_for_restic_lock(7, 60s), name_of(b));
        ::kill(dump, SIGKILL);
        const auto r = p.wait(60s);
        BOOST_TEST_CONTEXT(name_of(b)) {
            BOOST_TEST(r.exit_code != 0, describe(r));
            BOOST_TEST(r.seconds() < 30, describe(r));
            BOOST_TEST(!line_with(r.err, "killed").empty(), describe(r));
            BOOST_TEST(stock::files_under(tmp).empty(), "left in RESTIC_TMP_DIR");
        }
        s.f.make_vm(7, {{0, 16, 1}});
        expect_recovered(s, 7, 1, "restic killed mid-download", lock_left::if_reported, r.err);
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---- oned down or hanging (MAD mode) ------------------------------------------------

BOOST_AUTO_TEST_SUITE(oned_faults)

// RESTORE, then MONITOR (whose health update goes to oned after the reply),
// then FINALIZE, with oned's endpoint closed or hanging: RESTORE fails naming
// oned within a bound, MONITOR is answered at once, FINALIZE is not held up
// by the health update, and the repository is as it was.
BOOST_AUTO_TEST_CASE(oned_down_or_hanging_during_restore_and_health_update) {
    for (const bool hanging : {false, true}) {
        const std::string fault = hanging ? "oned hanging" : "oned down";
        BOOST_TEST_CONTEXT(fault) {
            site s(backend::sftp);
            stock::chain c(s.f, 7, {{0, 8, 1}});
            c.backup();
            dead_oned oned(hanging);
            const std::string auth = s.f.dir().write("one_auth", "oneadmin:fake-password\n");
            const std::string cipher = s.f.dir().write("onegate_auth", "serveradmin:fake-cipher\n");
            fs::permissions(cipher, fs::perms::owner_read | fs::perms::owner_write);
            const std::string log = s.f.dir().file("host.log");
            // oned_timeout 1: our own deadline ends a call to the hanging oned
            // (xmlrpc-c looks at libcurl's timer only every 3 s), and FINALIZE
            // then stops the health update while it lists the repository over
            // SFTP: the timing in which a stopped listing lost its libssh2
            // handle (LeakSanitizer, alloc_ledger.hpp). With 3 s it was rare.
            auto peer = start_mad(s.f, "-t 4", {{"oned_timeout", "1"}},
                                  {{"oned_endpoint", oned.endpoint()},
                                   {"oned_auth_file", auth},
                                   {"one_cipher_auth", cipher},
                                   {"log_file", log}});
            BOOST_TEST_REQUIRE(peer.init().ok);

            const std::string extra =
                "<DESTINATION_DS_ID>1</DESTINATION_DS_ID><TEMPLATE><USERNAME>alice</USERNAME></TEMPLATE>";
            auto sent = std::chrono::steady_clock::now();
            BOOST_TEST_REQUIRE(peer.send_request(
                "RESTORE", 5, oneds::common::base64_encode(s.f.document_with_image(c.image_xml(), {}, extra))));
            const auto restore = peer.wait_for_reply("RESTORE", 5, 60s);
            BOOST_TEST_REQUIRE(restore.has_value(), peer.transcript());
            const double restore_s = seconds_since(sent, restore->at);
            BOOST_TEST(!restore->success, restore->info);
            BOOST_TEST(restore_s < 15.0, "RESTORE answered after " << restore_s << " s: " << restore->info);
            const auto decoded = oneds::test::base64_decode(restore->info).value_or(restore->info);
            BOOST_TEST(
                (decoded.find("oned") != std::string::npos || decoded.find(oned.endpoint()) != std::string::npos),
                "the error does not name oned: " << decoded);
            BOOST_TEST_MESSAGE(fault << ": RESTORE after " << restore_s << " s: " << decoded);

            sent = std::chrono::steady_clock::now();
            BOOST_TEST_REQUIRE(peer.send_request("MONITOR", 100, oneds::common::base64_encode(s.f.document())));
            const auto monitor = peer.wait_for_reply("MONITOR", 100, 60s);
            BOOST_TEST_REQUIRE(monitor.has_value(), peer.transcript());
            BOOST_TEST(monitor->success, monitor->info);
            BOOST_TEST(seconds_since(sent, monitor->at) < 5.0);
            // The health update is under way (or has failed); FINALIZE now.
            std::this_thread::sleep_for(200ms);
            const auto exit = peer.finalize();
            BOOST_TEST(exit.clean(), exit.describe());
            BOOST_TEST(exit.seconds() < 6.0, "FINALIZE took " << exit.seconds() << " s");
            BOOST_TEST_MESSAGE(fault << ": FINALIZE took " << exit.seconds() << " s");
            s.f.make_vm(7, {{0, 8, 1}});
            expect_recovered(s, 7, 1, fault + " during restore");
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---- FINALIZE while work runs --------------------------------------------------------

BOOST_AUTO_TEST_SUITE(finalize)

// A MAD-mode host with an increment_flatten under way gets FINALIZE while
// action-mode backups and downloads run beside it on the same front end
// (same lock and state directories): the host answers and exits before
// oned's 10 s, leaves no child and no lock; the others are not touched.
BOOST_AUTO_TEST_CASE(finalize_while_flatten_backup_and_download_run) {
    site s(backend::sftp);
    stock::chain flat(s.f, 9, {{0, 16, 2, true}});
    flat.backup(2);
    stock::chain down(s.f, 11, {{0, 16, 2, true}});
    down.backup();
    s.f.make_vm(10, {{0, 16, 2, true}});
    s.init_repo(10);

    auto peer = start_mad(s.f, "-t 4 --finalize-grace 1", {}, {{"log_file", s.f.dir().file("host.log")}});
    BOOST_TEST_REQUIRE(peer.init().ok);
    spawned_process backup(s.slow_backup_argv(10), s.slow_doc(10));
    spawned_process download(s.f.host_argv("downloader", {"--stdout", down.url(0, 0)}),
                             s.doc({{"RESTIC_BWLIMIT", "256"}}));
    BOOST_TEST_REQUIRE(peer.send_request(
        "INCREMENT_FLATTEN", 42,
        oneds::common::base64_encode(s.f.document_with_image(flat.image_xml(), {{"RESTIC_BWLIMIT", "256"}},
                                                             "<EXTRA_DATA><KEEP_LAST>1</KEEP_LAST></EXTRA_DATA>"))));
    for (const int vm : {9, 10, 11})
        BOOST_TEST_REQUIRE(s.wait_for_restic_lock(vm, 60s), "no restic at work on VM " << vm);
    const pid_t host = peer.pid();
    const auto exit = peer.finalize_and_listen();
    BOOST_TEST(exit.clean(), exit.describe());
    BOOST_TEST(exit.seconds() < 9.5, "FINALIZE took " << exit.seconds() << " s");
    BOOST_TEST_MESSAGE("FINALIZE took " << exit.seconds() << " s");
    const auto replies = peer.replies();
    BOOST_TEST(replies.size() == 1u, peer.transcript());
    for (const auto &r : replies) BOOST_TEST((r.action == "INCREMENT_FLATTEN" && r.id == 42 && !r.success), r.info);
    BOOST_TEST(oneds::common::descendant_pids(host).empty());

    const auto b = backup.wait(120s);
    BOOST_TEST(b.exit_code == 0, "the backup beside the host: " << describe(b));
    const auto d = download.wait(120s);
    BOOST_TEST(d.exit_code == 0, "the download beside the host: " << describe(d));

    s.f.make_vm(9, {{0, 16, 1}});
    expect_recovered(s, 9, 2, "FINALIZE during increment_flatten");
    expect_recovered(s, 10, 1, "FINALIZE beside a backup");
    s.f.make_vm(11, {{0, 16, 1}});
    expect_recovered(s, 11, 1, "FINALIZE beside a download");
}

BOOST_AUTO_TEST_SUITE_END()

// ---- the Ceph gateway or OSD stopped mid-upload ---------------------------------------

BOOST_AUTO_TEST_SUITE(s3_daemons)

namespace {

// A backup whose daemon is stopped once restic uploads and started again a
// few seconds later: restic's own retries may carry it through (then its
// reply names the snapshot stored), or it fails with a clear error.
void daemon_stopped_mid_upload(const std::string &fault, const std::function<void()> &stop,
                               const std::function<void()> &start) {
    site s(backend::s3);
    s.f.make_vm(7, {{0, 16, 2, true}});
    s.init_repo(7);
    spawned_process p(s.slow_backup_argv(7), s.slow_doc(7));
    BOOST_TEST_REQUIRE(find_process_with({"backup", "--tag=one-7"}, 90s) > 0);
    BOOST_TEST_REQUIRE(s.wait_for_restic_lock(7, 60s));
    std::this_thread::sleep_for(1s);
    stop();
    std::this_thread::sleep_for(3s);
    start();
    const auto r = p.wait(180s);
    BOOST_TEST_MESSAGE(fault << ": " << describe(r));
    std::size_t stored = 0;
    if (r.exit_code == 0) {
        BOOST_TEST(std::regex_match(r.out, std::regex("[0-9a-f]{8} [0-9]+ raw\n")), r.out);
        stored = 1;
        const auto snaps = stock::snapshots(s.f, s.repo(7));
        BOOST_TEST_REQUIRE(snaps.size() == 1u);
        BOOST_TEST(r.out.starts_with(snaps.front().short_id), "the reply names another snapshot: " << r.out);
    } else {
        expect_clear_failure(r, "Error backing up VM 7", 150);
    }
    expect_recovered(s, 7, stored, fault);
}

}  // namespace

BOOST_AUTO_TEST_CASE(gateway_stopped_mid_upload) {
    auto &ceph = ceph_fixture::shared();
    daemon_stopped_mid_upload(
        "RADOS gateway stopped mid-upload", [&] { ceph.stop_gateway(); }, [&] { ceph.start_gateway(); });
}

BOOST_AUTO_TEST_CASE(osd_stopped_mid_upload) {
    auto &ceph = ceph_fixture::shared();
    daemon_stopped_mid_upload(
        "OSD stopped (SIGSTOP) mid-upload", [&] { ceph.freeze_osd(); }, [&] { ceph.thaw_osd(); });
}

BOOST_AUTO_TEST_SUITE_END()
