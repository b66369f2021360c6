#include "tests/support/ceph_fixture.hpp"

#include "common/child.hpp"
#include "common/unique_fd.hpp"
#include "tests/support/files.hpp"
#include "tests/support/ports.hpp"
#include "tests/support/sshd_fixture.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

namespace oneds::test {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;
using oneds::common::child_stream;
using oneds::common::unique_fd;

[[noreturn]] void throw_errno(int error, const std::string &what) {
    throw std::system_error(error, std::generic_category(), "ceph_fixture: " + what);
}

// The last lines of a log file, for error messages.
std::string tail_of(const fs::path &path, std::size_t lines = 25) {
    const std::string text = read_file(path);
    if (text.empty()) return "(" + path.filename().string() + " is empty or missing)\n";
    std::size_t pos = text.size();
    if (text.back() == '\n') --pos;
    for (std::size_t n = 0; n < lines && pos > 0; ++n) {
        const auto nl = text.rfind('\n', pos - 1);
        if (nl == std::string::npos) {
            pos = 0;
            break;
        }
        pos = nl;
    }
    return "--- " + path.filename().string() + " (tail) ---\n" + text.substr(pos == 0 ? 0 : pos + 1);
}

// True when 127.0.0.1:port answers "GET /" with an HTTP status line within 1 s.
bool http_answers(unsigned short port) {
    const unique_fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) throw_errno(errno, "socket");
    const timeval limit{1, 0};
    ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(sock.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::connect(sock.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0) return false;
    constexpr std::string_view request = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(sock.get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
        return false;
    std::array<char, 16> buf{};
    const ssize_t n = ::recv(sock.get(), buf.data(), buf.size(), 0);
    return n >= 5 && std::string_view(buf.data(), 5) == "HTTP/";
}

// The string value of the first "name": "..." in radosgw-admin's JSON output.
std::string json_string_after(const std::string &json, std::string_view anchor, std::string_view name) {
    auto pos = json.find(anchor);
    if (pos == std::string::npos) return {};
    const std::string key = '"' + std::string(name) + '"';
    pos = json.find(key, pos);
    if (pos == std::string::npos) return {};
    pos = json.find('"', json.find(':', pos + key.size()));
    if (pos == std::string::npos) return {};
    std::string value;
    for (++pos; pos < json.size() && json[pos] != '"'; ++pos) {
        if (json[pos] == '\\' && pos + 1 < json.size()) ++pos;
        value += json[pos];
    }
    return value;
}

// Characters that would change the meaning of a ceph.conf line.
void check_conf_path(const fs::path &path) {
    if (path.string().find_first_of("\n#;$=\\") != std::string::npos)
        throw std::runtime_error("ceph_fixture: unusable characters in path " + path.string() +
                                 " (set TMPDIR elsewhere)");
}

}  // namespace

struct ceph_fixture::state {
    fs::path dir;
    fs::path conf;
    fs::path log_dir;
    unsigned short mon_port = 0;
    unsigned short rgw_port = 0;
    std::string endpoint;
    std::string access;
    std::string secret;
    std::string pool = "rbdpool";
    std::optional<oneds::common::child> mon;
    std::optional<oneds::common::child> osd;
    std::optional<oneds::common::child> rgw;
    bool stopped = false;

    ~state() { stop(); }
    state() = default;
    state(const state &) = delete;
    state &operator=(const state &) = delete;
    state(state &&) = delete;
    state &operator=(state &&) = delete;

    // Each daemon is stopped and reaped before the next one gets its signal.
    void stop() noexcept {
        if (stopped) return;
        stopped = true;
        for (auto *daemon : {&rgw, &osd, &mon}) {
            if (*daemon) (*daemon)->stop(10s, SIGTERM);
        }
        std::error_code ignored;
        if (!dir.empty()) fs::remove_all(dir, ignored);
    }

    // A Ceph tool run to its end with -c conf; its output in *out. Throws with
    // the step, the tool's stderr and the tail of log_name's log when it fails.
    void tool(const std::string &step, std::vector<std::string> argv, const std::string &log_name,
              std::string *out = nullptr) const {
        argv.insert(argv.begin() + 1, {"-c", conf.string()});
        std::string captured;
        std::string err;
        const int status = run_argv(argv, &captured, &err);
        if (status != 0)
            throw std::runtime_error("ceph_fixture: " + step + ": " + argv.front() + " exited with " +
                                     std::to_string(status) + ": " + err + "\n" + log_tail(log_name));
        if (out != nullptr) *out = std::move(captured);
    }

    // The sizes of name's log files now, to look at what is written after.
    [[nodiscard]] std::pair<std::uintmax_t, std::uintmax_t> log_sizes(const std::string &name) const {
        std::error_code ignored;
        const auto size = [&](const fs::path &p) {
            const auto n = fs::file_size(p, ignored);
            return ignored ? std::uintmax_t{0} : n;
        };
        return {size(log_dir / (name + ".log")), size(log_dir / (name + ".stderr"))};
    }

    // True when the daemon proc (name) has exited because its address was
    // taken: radosgw exits with the frontend's error (EADDRINUSE, before its
    // log is flushed); both daemons log "Address already in use" when they
    // get to it (looked for after the sizes from log_sizes).
    [[nodiscard]] bool port_was_taken(const std::string &name, oneds::common::child &proc,
                                      std::pair<std::uintmax_t, std::uintmax_t> from) const {
        const auto status = proc.try_wait();
        if (!status) return false;
        if (status->exit_code() == EADDRINUSE) return true;
        const auto says = [](const fs::path &p, std::uintmax_t offset) {
            const std::string text = read_file(p);
            return offset < text.size() && text.find("Address already in use", offset) != std::string::npos;
        };
        return says(log_dir / (name + ".log"), from.first) || says(log_dir / (name + ".stderr"), from.second);
    }

    // Keeps name's logs of a failed attempt beside the next attempt's.
    void set_logs_aside(const std::string &name, int attempt) const {
        std::error_code ignored;
        for (const char *ext : {".log", ".stderr"})
            fs::rename(log_dir / (name + ext), log_dir / (name + ".attempt" + std::to_string(attempt) + ext), ignored);
    }

    [[nodiscard]] std::string log_tail(const std::string &name) const {
        if (name.empty()) return {};
        return tail_of(log_dir / (name + ".log")) + tail_of(log_dir / (name + ".stderr"), 10);
    }

    // A daemon in the foreground (-f), its stdout and stderr in log/<name>.stderr.
    oneds::common::child daemon(std::vector<std::string> argv, const std::string &name) const {
        argv.insert(argv.begin() + 1, {"-f", "-c", conf.string()});
        oneds::common::child_spec spec;
        spec.argv = std::move(argv);
        spec.in = child_stream::null();
        const auto log = (log_dir / (name + ".stderr")).string();
        spec.out = child_stream::file(log, O_WRONLY | O_CREAT | O_APPEND);
        spec.err = child_stream::file(log, O_WRONLY | O_CREAT | O_APPEND);
        // The data is throw-away: a crashed test kills the daemons outright.
        spec.parent_death_signal = SIGKILL;
        spec.stop_grace = 10s;
        return oneds::common::spawn(spec);
    }

    // Polls ready() until it holds; throws naming step (with the daemon's log)
    // when the daemon exits or the deadline passes first.
    template <typename Ready>
    void wait_until(const std::string &step, oneds::common::child &proc, const std::string &name, Ready ready) const {
        const auto deadline = clock_type::now() + 60s;
        for (;;) {
            if (const auto status = proc.try_wait())
                throw std::runtime_error("ceph_fixture: " + step + ": " + name + " exited with " +
                                         std::to_string(status->shell_code()) + "\n" + log_tail(name));
            if (ready()) return;
            if (clock_type::now() >= deadline)
                throw std::runtime_error("ceph_fixture: " + step + ": not done within 60 s\n" + log_tail(name));
            std::this_thread::sleep_for(100ms);
        }
    }

    void write_conf(const std::string &fsid) const {
        const std::string d = dir.string();
        std::ostringstream c;
        // $name, $cluster and $id are Ceph's own metavariables.
        c << "[global]\n"
          << "fsid = " << fsid << '\n'
          << "mon initial members = a\n"
          << "mon host = v2:127.0.0.1:" << mon_port << '\n'
          << "public addr = 127.0.0.1\n"
          << "cluster addr = 127.0.0.1\n"
          << "public network = 127.0.0.0/8\n"
          << "auth cluster required = cephx\n"
          << "auth service required = cephx\n"
          << "auth client required = cephx\n"
          << "auth allow insecure global id reclaim = false\n"
          << "keyring = " << d << "/keyring\n"
          << "run dir = " << d << "/run\n"
          << "admin socket = " << d << "/run/$name.asok\n"
          << "pid file = " << d << "/run/$name.pid\n"
          << "log file = " << d << "/log/$name.log\n"
          << "mon data = " << d << "/mon/$cluster-$id\n"
          << "osd data = " << d << "/osd/$cluster-$id\n"
          << "osd objectstore = memstore\n"
          << "osd pool default size = 1\n"
          << "osd pool default min size = 1\n"
          << "osd pool default pg num = 8\n"
          << "osd pool default pgp num = 8\n"
          // No ceph-mgr runs, so nothing would autoscale.
          << "osd pool default pg autoscale mode = off\n"
          // Must be set before the monitor's mkfs: size-1 pools on one OSD.
          << "osd crush chooseleaf type = 0\n"
          << "mon allow pool size one = true\n"
          << "mon allow pool delete = true\n"
          << "mon warn on pool no redundancy = false\n"
          << "mon max pg per osd = 1000\n"
          // A full CI disk must not stop the monitor.
          << "mon data avail warn = 1\n"
          << "mon data avail crit = 0\n"
          << "ms bind ipv4 = true\n"
          << "ms bind ipv6 = false\n"
          // The OSD takes the first free ports of this range, so concurrent
          // clusters do not collide.
          << "ms bind port min = 16800\n"
          << "ms bind port max = 16900\n"
          // Short paxos rounds: every pool creation otherwise waits about 2 s.
          << "paxos propose interval = 0.05\n"
          << "paxos min wait = 0.01\n"
          << "\n[mon]\n"
          << "mon cluster log file = " << d << "/log/$cluster.log\n"
          << "\n[osd]\n"
          << "memstore device bytes = 2147483648\n"
          << "osd op num shards = 2\n"
          << "osd op num threads per shard = 2\n"
          << "\n[client.rgw.gw]\n"
          << "rgw frontends = beast endpoint=127.0.0.1:" << rgw_port << '\n'
          << "rgw data = " << d << "/rgw\n"
          << "rgw thread pool size = 32\n"
          << "rgw enable usage log = false\n"
          // A safety net: the default 120 s if the gateway outlives its OSD.
          << "rgw exit timeout secs = 5\n";
        write_file(conf, c.str());
    }

    static std::string uuid() {
        std::string out;
        if (run_argv({"uuidgen"}, &out, nullptr) != 0 || out.size() < 36)
            throw std::runtime_error("ceph_fixture: uuidgen failed");
        return out.substr(0, 36);
    }

    void start() {
        dir = make_temp_dir("oneds-ceph-");
        check_conf_path(dir);
        conf = dir / "ceph.conf";
        log_dir = dir / "log";
        for (const char *sub : {"mon", "osd", "osd/ceph-0", "run", "log", "rgw"}) fs::create_directories(dir / sub);

        mon_port = pick_free_port();
        do {
            rgw_port = pick_free_port();
        } while (rgw_port == mon_port);
        endpoint = "http://127.0.0.1:" + std::to_string(rgw_port);
        const std::string fsid = uuid();
        const std::string osd_uuid = uuid();
        write_conf(fsid);

        // One keyring with every key and its caps: the monitor's mkfs imports
        // them all into its auth database.
        const std::string keyring = (dir / "keyring").string();
        tool("creating the keyring",
             {"ceph-authtool", "--create-keyring", keyring, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"}, "");
        tool("creating the keyring",
             {"ceph-authtool", keyring, "--gen-key", "-n", "client.admin", "--cap", "mon", "allow *", "--cap", "osd",
              "allow *", "--cap", "mds", "allow *", "--cap", "mgr", "allow *"},
             "");
        tool("creating the keyring",
             {"ceph-authtool", keyring, "--gen-key", "-n", "osd.0", "--cap", "mon", "allow profile osd", "--cap", "mgr",
              "allow profile osd", "--cap", "osd", "allow *"},
             "");
        tool("creating the keyring",
             {"ceph-authtool", keyring, "--gen-key", "-n", "client.rgw.gw", "--cap", "mon", "allow rw", "--cap", "osd",
              "allow rwx", "--cap", "mgr", "allow rw"},
             "");

        // Another process may take the free port before the monitor binds
        // it: ceph-mon then logs "Address already in use" and, after its own
        // bind retries, "unable to bind monitor to" and exits. Its address is
        // in the monitor map, so map and store are made anew for a new port.
        const std::string monmap = (dir / "monmap").string();
        for (int attempt = 1;; ++attempt) {
            tool("creating the monitor map",
                 {"monmaptool", "--create", "--clobber", "--fsid", fsid, "--addv", "a",
                  "[v2:127.0.0.1:" + std::to_string(mon_port) + "]", monmap},
                 "");
            tool("creating the monitor store",
                 {"ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", keyring}, "mon.a");
            const auto from = log_sizes("mon.a");
            mon.emplace(daemon({"ceph-mon", "-i", "a"}, "mon.a"));
            try {
                wait_until("starting the monitor", *mon, "mon.a", [this] {
                    std::string out;
                    return run_argv({"ceph", "-c", conf.string(), "--connect-timeout", "2", "mon", "stat"}, &out,
                                    nullptr) == 0;
                });
                break;
            } catch (const std::runtime_error &) {
                if (!port_was_taken("mon.a", *mon, from) || attempt == 3) throw;
            }
            mon.reset();
            set_logs_aside("mon.a", attempt);
            fs::remove_all(dir / "mon");
            fs::create_directories(dir / "mon");
            do {
                mon_port = pick_free_port();
            } while (mon_port == rgw_port);
            write_conf(fsid);
        }

        tool("registering the OSD", {"ceph", "osd", "new", osd_uuid, "0"}, "mon.a");
        tool("creating the OSD store", {"ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", osd_uuid}, "osd.0");
        osd.emplace(daemon({"ceph-osd", "-i", "0"}, "osd.0"));
        wait_until("starting the OSD", *osd, "osd.0", [this] {
            std::string out;
            if (run_argv({"ceph", "-c", conf.string(), "--connect-timeout", "2", "osd", "dump"}, &out, nullptr) != 0)
                return false;
            return out.starts_with("osd.0 up") || out.find("\nosd.0 up") != std::string::npos;
        });

        // On its first start the gateway creates its realm, zone and pools.
        // Another process may take the free port before the gateway binds it:
        // then the gateway exits and gets a new port (the monitor and OSD read
        // the config only when they start).
        for (int attempt = 1;; ++attempt) {
            const auto from = log_sizes("client.rgw.gw");
            rgw.emplace(daemon({"radosgw", "-n", "client.rgw.gw"}, "client.rgw.gw"));
            try {
                wait_until("starting the gateway", *rgw, "client.rgw.gw", [this] { return http_answers(rgw_port); });
                break;
            } catch (const std::runtime_error &) {
                if (!port_was_taken("client.rgw.gw", *rgw, from) || attempt == 3) throw;
            }
            set_logs_aside("client.rgw.gw", attempt);
            do {
                rgw_port = pick_free_port();
            } while (rgw_port == mon_port);
            endpoint = "http://127.0.0.1:" + std::to_string(rgw_port);
            write_conf(fsid);
        }

        // The gateway generates the keys; they arrive on a pipe, never in argv.
        std::string user_json;
        tool("creating the S3 user",
             {"radosgw-admin", "-n", "client.admin", "user", "create", "--uid=oneds-test", "--display-name=oneds test"},
             "client.rgw.gw", &user_json);
        access = json_string_after(user_json, "\"keys\"", "access_key");
        secret = json_string_after(user_json, "\"keys\"", "secret_key");
        if (access.empty() || secret.empty())
            throw std::runtime_error("ceph_fixture: creating the S3 user: radosgw-admin printed no keys");

        tool("creating the RBD pool", {"ceph", "osd", "pool", "create", pool, "8"}, "mon.a");
        tool("initialising the RBD pool", {"rbd", "pool", "init", pool}, "osd.0");
    }
};

ceph_fixture::ceph_fixture() : state_(std::make_unique<state>()) {
    try {
        state_->start();
    } catch (...) {
        state_->stop();
        throw;
    }
}

ceph_fixture::~ceph_fixture() = default;

ceph_fixture &ceph_fixture::shared() {
    static ceph_fixture instance;
    return instance;
}

const std::string &ceph_fixture::s3_endpoint() const noexcept { return state_->endpoint; }
unsigned short ceph_fixture::s3_port() const noexcept { return state_->rgw_port; }
const std::string &ceph_fixture::access_key() const noexcept { return state_->access; }
const std::string &ceph_fixture::secret_key() const noexcept { return state_->secret; }
const std::filesystem::path &ceph_fixture::ceph_conf() const noexcept { return state_->conf; }
const std::string &ceph_fixture::rbd_pool() const noexcept { return state_->pool; }
const std::filesystem::path &ceph_fixture::dir() const noexcept { return state_->dir; }

std::vector<pid_t> ceph_fixture::daemon_pids() const {
    std::vector<pid_t> pids;
    for (const auto *daemon : {&state_->mon, &state_->osd, &state_->rgw})
        if (*daemon && !(*daemon)->reaped()) pids.push_back((*daemon)->pid());
    return pids;
}

void ceph_fixture::stop_gateway() noexcept {
    if (state_->rgw) state_->rgw->stop(10s, SIGTERM);
}

void ceph_fixture::start_gateway() {
    auto &s = *state_;
    // The port stays (clients hold the endpoint). Another process may hold
    // it for a moment, a connection from an ephemeral port that happened to
    // be this one: the gateway then exits, and is started again a little
    // later, a bounded number of times.
    for (int attempt = 1;; ++attempt) {
        const auto from = s.log_sizes("client.rgw.gw");
        s.rgw.emplace(s.daemon({"radosgw", "-n", "client.rgw.gw"}, "client.rgw.gw"));
        try {
            s.wait_until("restarting the gateway", *s.rgw, "client.rgw.gw", [&s] { return http_answers(s.rgw_port); });
            return;
        } catch (const std::runtime_error &) {
            if (!s.port_was_taken("client.rgw.gw", *s.rgw, from) || attempt == 5) throw;
        }
        std::this_thread::sleep_for(1s);
    }
}

void ceph_fixture::freeze_osd() noexcept {
    if (state_->osd) state_->osd->signal(SIGSTOP);
}

void ceph_fixture::thaw_osd() noexcept {
    if (state_->osd) state_->osd->signal(SIGCONT);
}

void ceph_fixture::stop() noexcept { state_->stop(); }
bool ceph_fixture::stopped() const noexcept { return state_->stopped; }

}  // namespace oneds::test
