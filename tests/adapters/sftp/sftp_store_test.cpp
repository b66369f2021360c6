#define BOOST_TEST_MODULE sftp_store_test
#include <boost/test/unit_test.hpp>

#include "adapters/process/local_runner.hpp"
#include "adapters/sftp/internal/alloc_ledger.hpp"
#include "adapters/sftp/session_pool.hpp"
#include "adapters/sftp/sftp_store.hpp"
#include "tests/support/capacity_check.hpp"
#include "tests/support/files.hpp"
#include "tests/support/sshd_fixture.hpp"

#include "common/child.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using oneds::adapters::sftp::pool_options;
using oneds::adapters::sftp::session_pool;
using oneds::adapters::sftp::sftp_store;
using oneds::ports::error_kind;
using oneds::ports::sftp_target;
using oneds::test::run_argv;
using oneds::test::sshd_fixture;
using clock_type = std::chrono::steady_clock;

namespace {
// The OpenSSH client's settings (ssh -G) through the real process adapter,
// one resolver per test program, as a plugin instance has one.
oneds::adapters::sshconfig::resolver &ssh_settings() {
    static oneds::adapters::process::local_runner local;
    static oneds::adapters::sshconfig::resolver resolver(local);
    return resolver;
}
}  // namespace

namespace {

// The agent of whoever runs the tests must not log us in (or fail us): these
// tests decide which keys exist.
struct no_agent {
    no_agent() { ::unsetenv("SSH_AUTH_SOCK"); }
};
BOOST_TEST_GLOBAL_FIXTURE(no_agent);

std::string message_of(const oneds::ports::error &e) { return e.message; }

template <typename R>
std::string failure_text(const R &r) {
    return r.has_value() ? std::string("(no error)") : message_of(r.err());
}

using oneds::test::read_file;
using oneds::test::write_file;

void generate_key(const fs::path &file) {
    std::string err;
    const int status =
        run_argv({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "oneds-test-stranger", "-f", file.string()},
                 nullptr, &err);
    BOOST_REQUIRE_MESSAGE(status == 0, "ssh-keygen: " + err);
}

// "type base64" of a .pub file.
std::string public_key_line(const fs::path &pub) {
    std::istringstream in(read_file(pub));
    std::string type;
    std::string blob;
    in >> type >> blob;
    return type + ' ' + blob;
}

struct client_config {
    std::string alias = "testserver";
    std::string host = "127.0.0.1";
    unsigned port = 0;
    std::string user;
    fs::path identity;
    fs::path known_hosts;
    std::string strict = "yes";
    std::string identities_only = "yes";
};

// A client config of the test's own, for the cases the fixture's config does
// not cover (other known_hosts, other keys, other ports).
fs::path write_client_config(const fs::path &file, const client_config &c) {
    std::ostringstream text;
    text << "Host " << c.alias << "\n"
         << "    HostName " << c.host << "\n"
         << "    Port " << c.port << "\n"
         << "    User " << c.user << "\n"
         << "    IdentityFile \"" << c.identity.string() << "\"\n"
         << "    IdentitiesOnly " << c.identities_only << "\n"
         << "    UserKnownHostsFile \"" << c.known_hosts.string() << "\"\n"
         << "    StrictHostKeyChecking " << c.strict << "\n";
    write_file(file, text.str());
    return file;
}

// Every process below pid, found through the parent pid in /proc/<n>/stat.
std::vector<pid_t> descendants_of(pid_t root) {
    std::vector<std::pair<pid_t, pid_t>> parent_of;
    for (const auto &entry : fs::directory_iterator("/proc")) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        const std::string stat = read_file(entry.path() / "stat");
        const auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(stat.substr(close + 2));
        char state = 0;
        pid_t ppid = 0;
        if (rest >> state >> ppid) parent_of.emplace_back(static_cast<pid_t>(std::stol(name)), ppid);
    }
    std::vector<pid_t> found;
    std::set<pid_t> frontier{root};
    while (!frontier.empty()) {
        std::set<pid_t> next;
        for (const auto &[pid, ppid] : parent_of) {
            if (frontier.count(ppid) != 0) {
                found.push_back(pid);
                next.insert(pid);
            }
        }
        frontier = std::move(next);
    }
    return found;
}

// True once pid has exited: gone, or a zombie its parent has not reaped yet
// (its sockets are closed either way).
bool has_exited(pid_t pid) {
    if (::kill(pid, 0) == -1 && errno == ESRCH) return true;
    const std::string stat = read_file(fs::path("/proc") / std::to_string(pid) / "stat");
    const auto close = stat.rfind(')');
    return close == std::string::npos || stat.substr(close + 2, 1) == "Z";
}

// Waits until every pid has exited, up to timeout.
bool all_exited(const std::vector<pid_t> &pids, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        bool all = true;
        for (const pid_t pid : pids) all = all && has_exited(pid);
        if (all) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
}

// An ssh-agent of the test's own, on a socket in dir, made the agent of this
// process (SSH_AUTH_SOCK) for its lifetime. It runs in the foreground (-D) as
// our child, so its handle stops it (SIGTERM) and reaps it.
class agent_process {
public:
    explicit agent_process(const fs::path &dir) : socket_(dir / "agent.sock") {
        oneds::common::child_spec spec;
        spec.argv = {"ssh-agent", "-D", "-a", socket_.string()};
        spec.out = oneds::common::child_stream::null();
        spec.stop_grace = 10s;  // SIGTERM, as ssh-agent -k would
        agent_ = oneds::common::spawn(spec);
        const std::string socket_text = socket_.string();
        const auto deadline = clock_type::now() + 10s;
        while (!fs::exists(socket_) && clock_type::now() < deadline) std::this_thread::sleep_for(10ms);
        BOOST_REQUIRE_MESSAGE(fs::exists(socket_), "ssh-agent did not create its socket");
        ::setenv("SSH_AUTH_SOCK", socket_text.c_str(), 1);
        // The socket exists from bind() on, before the agent listens: on a
        // busy machine an early ssh-add finds nobody there. `ssh-add -l`
        // exits 2 until the agent answers (then 1: no identities yet).
        int listed = 2;
        while (listed == 2 && clock_type::now() < deadline) {
            listed = run_argv({"ssh-add", "-l"}, nullptr, nullptr);
            if (listed == 2) std::this_thread::sleep_for(10ms);
        }
        BOOST_REQUIRE_MESSAGE(listed != 2, "ssh-agent does not answer on its socket");
    }
    ~agent_process() { ::unsetenv("SSH_AUTH_SOCK"); }
    agent_process(const agent_process &) = delete;
    agent_process &operator=(const agent_process &) = delete;
    agent_process(agent_process &&) = delete;
    agent_process &operator=(agent_process &&) = delete;

    void add(const fs::path &key) const {
        std::string err;
        BOOST_REQUIRE_MESSAGE(run_argv({"ssh-add", "-q", key.string()}, nullptr, &err) == 0, "ssh-add: " + err);
    }

private:
    fs::path socket_;
    oneds::common::child agent_;
};

// The fixture plus a pool and a store on the fixture's own alias and config.
struct served {
    sshd_fixture fx;
    std::shared_ptr<session_pool> pool;
    std::unique_ptr<sftp_store> store;

    explicit served(pool_options options = {}) : pool(std::make_shared<session_pool>(ssh_settings(), options)) {
        auto made = sftp_store::create(target(), pool);
        BOOST_REQUIRE_MESSAGE(made.has_value(), failure_text(made));
        store = std::move(made).value();
    }

    sftp_target target() const { return {fx.alias(), "", fx.ssh_config_file().string()}; }

    client_config config() const {
        client_config c;
        c.port = fx.port();
        c.user = fx.user();
        c.identity = fx.identity_file();
        c.known_hosts = fx.known_hosts_file();
        return c;
    }

    // A store on a config of the test's own, with a fresh pool.
    std::unique_ptr<sftp_store> store_with(const client_config &c, const std::string &file_name,
                                           std::shared_ptr<session_pool> other_pool = nullptr) const {
        const fs::path file = write_client_config(fx.dir() / file_name, c);
        if (!other_pool) other_pool = std::make_shared<session_pool>(ssh_settings(), pool->options());
        auto made = sftp_store::create({c.alias, "", file.string()}, std::move(other_pool));
        BOOST_REQUIRE_MESSAGE(made.has_value(), failure_text(made));
        return std::move(made).value();
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(sftp_store_suite, served)

BOOST_AUTO_TEST_CASE(connects_through_the_alias_and_stats_files_and_directories) {
    BOOST_TEST(store->describe() == "sftp://" + fx.user() + "@" + fx.alias());

    auto dir = store->stat(fx.dir().string(), {});
    BOOST_REQUIRE_MESSAGE(dir.has_value(), failure_text(dir));
    BOOST_TEST(dir->exists);
    BOOST_TEST(dir->is_directory);

    auto file = store->stat(fx.ssh_config_file().string(), {});
    BOOST_REQUIRE_MESSAGE(file.has_value(), failure_text(file));
    BOOST_TEST(file->exists);
    BOOST_TEST(!file->is_directory);
    BOOST_TEST(file->size == fs::file_size(fx.ssh_config_file()));

    auto missing = store->stat((fx.dir() / "repo" / "config").string(), {});
    BOOST_REQUIRE_MESSAGE(missing.has_value(), failure_text(missing));
    BOOST_TEST(!missing->exists);
}

BOOST_AUTO_TEST_CASE(make_directories_creates_nested_directories_and_is_idempotent) {
    const fs::path nested = fx.dir() / "repos" / "100" / "job_7";
    auto made = store->make_directories(nested.string(), {});
    BOOST_REQUIRE_MESSAGE(made.has_value(), failure_text(made));
    BOOST_TEST(fs::is_directory(nested));
    BOOST_TEST(store->make_directories(nested.string(), {}).has_value());
    BOOST_TEST(store->make_directories((fx.dir() / "repos").string(), {}).has_value());
    BOOST_TEST(store->make_directories((nested.string() + "//"), {}).has_value());
    BOOST_TEST(fs::is_directory(nested));
}

BOOST_AUTO_TEST_CASE(list_directory_gives_names_kinds_and_sizes) {
    const fs::path dir = fx.dir() / "listed";
    fs::create_directories(dir / "data" / "ab");
    std::ofstream(dir / "config") << "12345";
    auto listed = store->list_directory(dir.string(), {});
    BOOST_REQUIRE_MESSAGE(listed.has_value(), failure_text(listed));
    std::map<std::string, std::pair<bool, std::uint64_t>> got;
    BOOST_REQUIRE(listed->has_value());
    for (const auto &e : **listed) got[e.name] = {e.is_directory, e.size};
    BOOST_TEST(got.size() == 2u);
    BOOST_TEST(got["config"].first == false);
    BOOST_TEST(got["config"].second == 5u);
    BOOST_TEST(got["data"].first == true);
    auto missing = store->list_directory((dir / "nope").string(), {});
    BOOST_REQUIRE(missing.has_value());
    BOOST_TEST(!missing->has_value(), "an absent directory lists as nullopt");
}

BOOST_AUTO_TEST_CASE(make_directories_refuses_a_file_in_the_way) {
    const std::string path = (fx.ssh_config_file() / "sub").string();
    auto made = store->make_directories(path, {});
    BOOST_REQUIRE(!made.has_value());
    BOOST_TEST((made.err().kind == error_kind::invalid), made.err().message);
    BOOST_TEST(made.err().message.find(fx.ssh_config_file().string()) != std::string::npos, made.err().message);
}

BOOST_AUTO_TEST_CASE(capacity_equals_statvfs_of_the_same_directory) {
    // The sshd serves this machine's filesystem; other processes write to it,
    // so compare when two local statvfs calls around the remote one agree.
    oneds::test::check_capacity_equals_statvfs(fx.dir(), [&] {
        auto capacity = store->capacity(fx.dir().string(), {});
        BOOST_REQUIRE_MESSAGE(capacity.has_value(), failure_text(capacity));
        return capacity;
    });
}

BOOST_AUTO_TEST_CASE(capacity_of_a_missing_path_is_not_found) {
    auto capacity = store->capacity((fx.dir() / "missing").string(), {});
    BOOST_REQUIRE(!capacity.has_value());
    BOOST_TEST((capacity.err().kind == error_kind::not_found), capacity.err().message);
    BOOST_TEST(capacity.err().message.find("missing") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(one_session_serves_many_calls_and_stores) {
    for (int i = 0; i < 50; ++i) {
        auto info = store->stat(fx.dir().string(), {});
        BOOST_REQUIRE_MESSAGE(info.has_value(), failure_text(info));
    }
    auto second = sftp_store::create(target(), pool);
    BOOST_REQUIRE(second.has_value());
    BOOST_TEST((*second)->stat(fx.dir().string(), {}).has_value());
    BOOST_TEST((*second)->capacity(fx.dir().string(), {}).has_value());
    BOOST_TEST(pool->connections_opened() == 1U);
    BOOST_TEST(pool->session_count() == 1U);

    // Another alias is another (server, user, config): a session of its own.
    auto other = sftp_store::create({"hypervisor", "", fx.ssh_config_file().string()}, pool);
    BOOST_REQUIRE(other.has_value());
    BOOST_TEST((*other)->stat(fx.dir().string(), {}).has_value());
    BOOST_TEST(pool->connections_opened() == 2U);
    BOOST_TEST(pool->session_count() == 2U);

    pool->close_all();
    BOOST_TEST(pool->session_count() == 0U);
    BOOST_TEST(store->stat(fx.dir().string(), {}).has_value());
    BOOST_TEST(pool->connections_opened() == 3U);
}

BOOST_AUTO_TEST_CASE(a_broken_connection_is_replaced_transparently) {
    BOOST_REQUIRE(store->stat(fx.dir().string(), {}).has_value());
    pool->break_connections_for_testing();
    auto info = store->stat(fx.dir().string(), {});
    BOOST_REQUIRE_MESSAGE(info.has_value(), failure_text(info));
    BOOST_TEST(info->is_directory);
    BOOST_TEST(pool->connections_opened() == 2U);
    BOOST_TEST(pool->session_count() == 1U);
}

BOOST_AUTO_TEST_CASE(a_connection_the_server_dropped_is_replaced_transparently) {
    BOOST_REQUIRE(store->stat(fx.dir().string(), {}).has_value());
    // The per-connection sshd processes are what a server restart ends; the
    // listener stays, as a restarted server would be back.
    const auto children = descendants_of(fx.sshd_pid());
    BOOST_REQUIRE(!children.empty());
    for (const pid_t pid : children) ::kill(pid, SIGKILL);
    // Once they have exited, their end of the connection is closed.
    BOOST_REQUIRE(all_exited(children, 20s));
    auto made = store->make_directories((fx.dir() / "after_restart").string(), {});
    BOOST_REQUIRE_MESSAGE(made.has_value(), failure_text(made));
    BOOST_TEST(fs::is_directory(fx.dir() / "after_restart"));
    BOOST_TEST(pool->connections_opened() == 2U);
}

BOOST_AUTO_TEST_CASE(concurrent_calls_from_eight_threads_share_one_session) {
    std::atomic<int> failures{0};
    std::atomic<int> successes{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 50; ++i) {
                bool ok = false;
                switch ((t + i) % 3) {
                    case 0: ok = store->stat(fx.dir().string(), {}).has_value(); break;
                    case 1: ok = store->capacity(fx.dir().string(), {}).has_value(); break;
                    default:
                        ok = store->make_directories((fx.dir() / ("t" + std::to_string(t))).string(), {}).has_value();
                        break;
                }
                ++(ok ? successes : failures);
            }
        });
    }
    for (auto &thread : threads) thread.join();
    BOOST_TEST(failures.load() == 0);
    BOOST_TEST(successes.load() == 400);
    BOOST_TEST(pool->connections_opened() == 1U);
}

BOOST_AUTO_TEST_CASE(an_explicit_user_wins_over_the_config) {
    auto as_stranger = sftp_store::create({fx.alias(), "nobody_oneds", fx.ssh_config_file().string()}, pool);
    BOOST_REQUIRE(as_stranger.has_value());
    BOOST_TEST((*as_stranger)->describe() == "sftp://nobody_oneds@" + fx.alias());
    auto info = (*as_stranger)->stat(fx.dir().string(), {});
    BOOST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::permission), info.err().message);
    BOOST_TEST(info.err().message.find("nobody_oneds@") != std::string::npos, info.err().message);
}

BOOST_AUTO_TEST_CASE(an_unknown_host_key_is_refused_naming_host_and_files) {
    auto c = config();
    c.known_hosts = fx.dir() / "empty_known_hosts";
    write_file(c.known_hosts, "");
    const auto other = store_with(c, "unknown_key_config");
    auto info = other->stat(fx.dir().string(), {});
    BOOST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::host_key), info.err().message);
    BOOST_TEST(info.err().message.find("[127.0.0.1]:" + std::to_string(fx.port())) != std::string::npos,
               info.err().message);
    BOOST_TEST(info.err().message.find(c.alias) != std::string::npos, info.err().message);
    BOOST_TEST(info.err().message.find(c.known_hosts.string()) != std::string::npos, info.err().message);
}

BOOST_AUTO_TEST_CASE(a_changed_host_key_is_refused_even_with_accept_new) {
    generate_key(fx.dir() / "impostor");
    auto c = config();
    c.known_hosts = fx.dir() / "changed_known_hosts";
    write_file(c.known_hosts,
               "[127.0.0.1]:" + std::to_string(fx.port()) + " " + public_key_line(fx.dir() / "impostor.pub") + "\n");
    for (const std::string strict : {"yes", "accept-new"}) {
        c.strict = strict;
        const auto other = store_with(c, "changed_key_config_" + strict);
        auto info = other->stat(fx.dir().string(), {});
        BOOST_REQUIRE(!info.has_value());
        BOOST_TEST((info.err().kind == error_kind::host_key), info.err().message);
        BOOST_TEST(info.err().message.find("does not match") != std::string::npos, info.err().message);
    }
}

BOOST_AUTO_TEST_CASE(a_key_known_only_for_port_22_does_not_vouch_for_another_port) {
    auto c = config();
    c.known_hosts = fx.dir() / "port22_known_hosts";
    // The right key, recorded for the bare name (port 22) only.
    std::istringstream lines(read_file(fx.known_hosts_file()));
    std::string first;
    std::getline(lines, first);
    write_file(c.known_hosts, "127.0.0.1 " + first.substr(first.find(' ') + 1) + "\n");
    const auto other = store_with(c, "port22_config");
    auto info = other->stat(fx.dir().string(), {});
    BOOST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::host_key), info.err().message);
}

BOOST_AUTO_TEST_CASE(hashed_known_hosts_entries_are_recognised) {
    auto c = config();
    c.known_hosts = fx.dir() / "hashed_known_hosts";
    fs::copy_file(fx.known_hosts_file(), c.known_hosts);
    std::string err;
    BOOST_REQUIRE(run_argv({"ssh-keygen", "-q", "-H", "-f", c.known_hosts.string()}, nullptr, &err) == 0);
    BOOST_REQUIRE(read_file(c.known_hosts).find("127.0.0.1") == std::string::npos);
    BOOST_REQUIRE(read_file(c.known_hosts).find("|1|") != std::string::npos);
    const auto other = store_with(c, "hashed_config");
    auto info = other->stat(fx.dir().string(), {});
    BOOST_TEST(info.has_value(), failure_text(info));
}

BOOST_AUTO_TEST_CASE(strict_host_key_checking_no_accepts_an_unknown_key) {
    auto c = config();
    c.known_hosts = fx.dir() / "no_known_hosts";
    c.strict = "no";
    const auto other = store_with(c, "no_check_config");
    auto info = other->stat(fx.dir().string(), {});
    BOOST_TEST(info.has_value(), failure_text(info));
}

BOOST_AUTO_TEST_CASE(accept_new_records_the_key_which_then_passes_strict_checking) {
    auto c = config();
    c.known_hosts = fx.dir() / "new_dir" / "tofu_known_hosts";
    c.strict = "accept-new";
    {
        const auto other = store_with(c, "tofu_config");
        auto info = other->stat(fx.dir().string(), {});
        BOOST_REQUIRE_MESSAGE(info.has_value(), failure_text(info));
    }
    BOOST_TEST(read_file(c.known_hosts).find("[127.0.0.1]:" + std::to_string(fx.port())) != std::string::npos,
               read_file(c.known_hosts));
    c.strict = "yes";
    const auto strict = store_with(c, "tofu_strict_config");
    auto info = strict->stat(fx.dir().string(), {});
    BOOST_TEST(info.has_value(), failure_text(info));
}

BOOST_AUTO_TEST_CASE(a_key_the_server_does_not_know_is_a_permission_error_naming_what_was_tried) {
    auto c = config();
    c.identity = fx.dir() / "stranger_key";
    generate_key(c.identity);
    const auto other = store_with(c, "wrong_identity_config");
    auto info = other->stat(fx.dir().string(), {});
    BOOST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::permission), info.err().message);
    BOOST_TEST(info.err().message.find(fx.user() + "@") != std::string::npos, info.err().message);
    BOOST_TEST(info.err().message.find(c.identity.string()) != std::string::npos, info.err().message);
    BOOST_TEST(info.err().message.find("PRIVATE KEY") == std::string::npos, info.err().message);
}

BOOST_AUTO_TEST_CASE(the_agent_logs_in_when_no_identity_file_can) {
    const agent_process agent(fx.dir());
    agent.add(fx.identity_file());
    auto c = config();
    c.identity = fx.dir() / "no_such_key";
    c.identities_only = "no";
    const auto other = store_with(c, "agent_config");
    auto info = other->stat(fx.dir().string(), {});
    BOOST_TEST(info.has_value(), failure_text(info));
}

BOOST_AUTO_TEST_CASE(identities_only_lets_the_agent_use_only_keys_of_configured_identities) {
    const agent_process agent(fx.dir());
    agent.add(fx.identity_file());
    // The configured identity is the right key, of which only the public
    // half is on disk (as with a passphrase-protected key held by the agent).
    fs::create_directories(fx.dir() / "public_only");
    fs::copy_file(fx.public_key_file(), fx.dir() / "public_only" / "id_ed25519.pub");
    auto c = config();
    c.identity = fx.dir() / "public_only" / "id_ed25519";
    const auto matching = store_with(c, "agent_matching_config");
    auto info = matching->stat(fx.dir().string(), {});
    BOOST_TEST(info.has_value(), failure_text(info));

    // A configured stranger key: the agent's (working) key must not be offered.
    c.identity = fx.dir() / "stranger_key";
    generate_key(c.identity);
    const auto stranger = store_with(c, "agent_stranger_config");
    auto refused = stranger->stat(fx.dir().string(), {});
    BOOST_REQUIRE(!refused.has_value());
    BOOST_TEST((refused.err().kind == error_kind::permission), refused.err().message);
    BOOST_TEST(refused.err().message.find("ssh-agent (0 keys)") != std::string::npos, refused.err().message);
    BOOST_TEST(refused.err().message.find(c.identity.string()) != std::string::npos, refused.err().message);
}

BOOST_AUTO_TEST_CASE(a_server_that_hangs_up_after_too_many_keys_is_a_permission_error) {
    const sshd_fixture picky(oneds::test::sshd_options{"backupserver", {"MaxAuthTries 2"}});
    const agent_process agent(fx.dir());
    for (const char *name : {"stranger_1", "stranger_2", "stranger_3"}) {
        generate_key(fx.dir() / name);
        agent.add(fx.dir() / name);
    }
    auto c = config();
    c.port = picky.port();
    c.known_hosts = picky.known_hosts_file();
    c.identity = fx.dir() / "no_such_key";
    c.identities_only = "no";
    const auto other = store_with(c, "picky_config");
    auto info = other->stat(fx.dir().string(), {});
    BOOST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::permission), info.err().message);
    BOOST_TEST(info.err().message.find("closed the connection after") != std::string::npos, info.err().message);
}

BOOST_AUTO_TEST_CASE(a_missing_identity_file_is_named_as_not_found) {
    auto c = config();
    c.identity = fx.dir() / "no_such_key";
    const auto other = store_with(c, "missing_identity_config");
    auto info = other->stat(fx.dir().string(), {});
    BOOST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::permission), info.err().message);
    BOOST_TEST(info.err().message.find("not found: " + c.identity.string()) != std::string::npos, info.err().message);
}

BOOST_AUTO_TEST_CASE(a_closed_port_is_unreachable_at_once) {
    // A port nobody listens on: bind to learn a free one, then let it go.
    const int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(probe >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    BOOST_REQUIRE(::bind(probe, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    BOOST_REQUIRE(::getsockname(probe, reinterpret_cast<sockaddr *>(&addr), &len) == 0);
    ::close(probe);

    auto c = config();
    c.port = ntohs(addr.sin_port);
    const auto other = store_with(c, "closed_port_config");
    const auto start = clock_type::now();
    auto info = other->stat(fx.dir().string(), {});
    const auto elapsed = clock_type::now() - start;
    BOOST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::unreachable), info.err().message);
    BOOST_TEST(info.err().message.find("127.0.0.1:" + std::to_string(c.port)) != std::string::npos, info.err().message);
    BOOST_TEST(elapsed < 5s);
}

BOOST_AUTO_TEST_CASE(a_server_that_never_answers_is_unreachable_within_the_deadline) {
    // Accepts TCP connections (the kernel completes them from the backlog)
    // but never sends an SSH banner.
    const int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(silent >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    BOOST_REQUIRE(::bind(silent, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
    BOOST_REQUIRE(::listen(silent, 8) == 0);
    BOOST_REQUIRE(::getsockname(silent, reinterpret_cast<sockaddr *>(&addr), &len) == 0);

    auto quick_pool = std::make_shared<session_pool>(ssh_settings(), pool_options{1000ms});
    auto c = config();
    c.port = ntohs(addr.sin_port);
    const auto other = store_with(c, "silent_config", quick_pool);
    const auto start = clock_type::now();
    auto info = other->stat(fx.dir().string(), {});
    const auto elapsed = clock_type::now() - start;
    ::close(silent);
    BOOST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::unreachable), info.err().message);
    BOOST_TEST(info.err().message.find("timed out") != std::string::npos, info.err().message);
    BOOST_TEST(elapsed >= 900ms);
    BOOST_TEST(elapsed < 5s);
}

BOOST_AUTO_TEST_CASE(a_hung_server_fails_the_call_within_the_deadline_and_the_next_call_reconnects) {
    auto quick_pool = std::make_shared<session_pool>(ssh_settings(), pool_options{1000ms});
    auto made = sftp_store::create(target(), quick_pool);
    BOOST_REQUIRE(made.has_value());
    auto &quick = *made;
    BOOST_REQUIRE(quick->stat(fx.dir().string(), {}).has_value());

    const auto stopped = descendants_of(fx.sshd_pid());
    BOOST_REQUIRE(!stopped.empty());
    for (const pid_t pid : stopped) ::kill(pid, SIGSTOP);
    const auto start = clock_type::now();
    auto info = quick->stat(fx.dir().string(), {});
    const auto elapsed = clock_type::now() - start;
    for (const pid_t pid : stopped) ::kill(pid, SIGCONT);

    BOOST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::unreachable), info.err().message);
    BOOST_TEST(elapsed >= 900ms);
    BOOST_TEST(elapsed < 5s);
    BOOST_TEST(quick_pool->session_count() == 0U);

    auto again = quick->stat(fx.dir().string(), {});
    BOOST_TEST(again.has_value(), failure_text(again));
    BOOST_TEST(quick_pool->connections_opened() == 2U);
}

// A stop ends a call that waits on a hung server at once, not at the
// deadline, and the session it was using is not used again.
BOOST_AUTO_TEST_CASE(a_stop_ends_a_call_on_a_hung_server_and_drops_its_session) {
    auto slow_pool = std::make_shared<session_pool>(ssh_settings(), pool_options{60'000ms});
    auto made = sftp_store::create(target(), slow_pool);
    BOOST_REQUIRE(made.has_value());
    auto &slow = *made;
    BOOST_REQUIRE(slow->stat(fx.dir().string(), {}).has_value());

    const auto stopped = descendants_of(fx.sshd_pid());
    BOOST_REQUIRE(!stopped.empty());
    for (const pid_t pid : stopped) ::kill(pid, SIGSTOP);
    std::stop_source stop;
    // start is read before the stopper exists, so the stop comes at least
    // 300 ms after it however the threads are scheduled.
    const auto start = clock_type::now();
    clock_type::time_point stopped_at{};
    std::jthread stopper([&] {
        std::this_thread::sleep_for(300ms);
        stopped_at = clock_type::now();
        stop.request_stop();
    });
    auto info = slow->stat(fx.dir().string(), stop.get_token());
    const auto ended = clock_type::now();
    const auto elapsed = ended - start;
    stopper.join();
    for (const pid_t pid : stopped) ::kill(pid, SIGCONT);

    BOOST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::cancelled), info.err().message);
    // It waited on the hung server until the stop, not less.
    BOOST_TEST(elapsed >= 250ms);
    BOOST_TEST((ended >= stopped_at), "the call ended before the stop");
    BOOST_TEST(elapsed < 30s);
    BOOST_TEST(slow_pool->session_count() == 0U);
    // A stopped token stops the wait for the session and the connect too.
    auto refused = slow->stat(fx.dir().string(), stop.get_token());
    BOOST_TEST_REQUIRE(!refused.has_value());
    BOOST_TEST((refused.err().kind == error_kind::cancelled), refused.err().message);
    auto again = slow->stat(fx.dir().string(), {});
    BOOST_TEST(again.has_value(), failure_text(again));
}

// A listing stopped between its opendir and its close (the server frozen
// while libssh2 reads the entries): libssh2 keeps the handle it never got to
// close, and neither libssh2_sftp_shutdown nor libssh2_session_free frees it.
// The session is dropped, and its alloc_ledger frees the handle with it
// (before, LeakSanitizer found the ~400 bytes lost in a MAD host stopped
// while its health update listed a repository's locks).
BOOST_AUTO_TEST_CASE(a_listing_stopped_after_its_opendir_leaves_nothing_allocated) {
    using oneds::adapters::sftp::internal::alloc_ledger;
    const fs::path many = fx.dir() / "many";
    fs::create_directories(many);
    for (int i = 0; i < 20000; ++i) std::ofstream(many / ("an-entry-with-a-long-name-" + std::to_string(i)));
    // The frozen server must be caught after it sent the handle and before
    // it sent the last entries; a stop that comes earlier (no handle yet) or
    // later (listing done) is tried again.
    bool reclaimed = false;
    for (int attempt = 0; attempt < 5 && !reclaimed; ++attempt) {
        BOOST_REQUIRE(store->stat(fx.dir().string(), {}).has_value());  // a session
        const auto before = alloc_ledger::reclaimed_total();
        std::stop_source stop;
        std::optional<oneds::ports::error_kind> failed;
        std::jthread lister([&] {
            auto listed = store->list_directory(many.string(), stop.get_token());
            if (!listed) failed = listed.err().kind;
        });
        // The directory is open once the server's SFTP process (sshd's
        // internal-sftp or an sftp-server) holds a descriptor of it.
        const auto holder = [&]() -> pid_t {
            for (const pid_t pid : descendants_of(fx.sshd_pid())) {
                std::error_code ec;
                for (const auto &fd : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec))
                    if (fs::read_symlink(fd.path(), ec) == many) return pid;
            }
            return -1;
        };
        pid_t server = -1;
        const auto deadline = clock_type::now() + 10s;
        while ((server = holder()) < 0 && clock_type::now() < deadline) std::this_thread::yield();
        if (server > 0) ::kill(server, SIGSTOP);
        std::this_thread::sleep_for(50ms);
        stop.request_stop();
        lister.join();
        if (server > 0) ::kill(server, SIGCONT);
        if (!failed) continue;  // listed before the freeze
        BOOST_TEST((*failed == error_kind::cancelled));
        BOOST_TEST(pool->session_count() == 0U);  // dropped, and freed
        reclaimed = alloc_ledger::reclaimed_total() > before;
    }
    BOOST_TEST(reclaimed, "no listing was stopped with an open handle, or its handle was not freed with the session");
    fs::remove_all(many);
}

// A backup server behind a bastion: the SFTP store goes through the
// ProxyJump of the ssh config, as ssh does (a second sshd is the jump host).
// The proof that it does: a jump host that refuses to forward makes it fail,
// with the proxy's own words in the error.
BOOST_AUTO_TEST_CASE(a_proxy_jump_is_followed_and_its_refusal_is_named) {
    for (const bool forwarding : {true, false}) {
        std::vector<std::string> jump_config;
        if (!forwarding) jump_config.emplace_back("AllowTcpForwarding no");
        const sshd_fixture jump(oneds::test::sshd_options{"jumpbox", jump_config});
        std::ostringstream text;
        text << "Host jumpbox\n    HostName 127.0.0.1\n    Port " << jump.port() << "\n    User " << jump.user()
             << "\n    IdentityFile \"" << jump.identity_file().string() << "\"\n    IdentitiesOnly yes\n"
             << "    UserKnownHostsFile \"" << jump.known_hosts_file().string() << "\"\n    BatchMode yes\n"
             << "Host behind\n    HostName 127.0.0.1\n    Port " << fx.port() << "\n    User " << fx.user()
             << "\n    IdentityFile \"" << fx.identity_file().string() << "\"\n    IdentitiesOnly yes\n"
             << "    UserKnownHostsFile \"" << fx.known_hosts_file().string() << "\"\n    ProxyJump jumpbox\n";
        const fs::path cfg = fx.dir() / (forwarding ? "jump_config" : "no_forward_config");
        write_file(cfg, text.str());
        auto jump_pool = std::make_shared<session_pool>(ssh_settings(), pool_options{10'000ms});
        auto made = sftp_store::create({"behind", "", cfg.string()}, jump_pool);
        BOOST_REQUIRE(made.has_value());
        auto info = (*made)->stat(fx.dir().string(), {});
        if (forwarding) {
            BOOST_TEST(info.has_value(), failure_text(info));
            if (info) BOOST_TEST(info->is_directory);
            auto cap = (*made)->capacity(fx.dir().string(), {});
            BOOST_TEST(cap.has_value(), failure_text(cap));
        } else {
            BOOST_TEST_REQUIRE(!info.has_value());
            BOOST_TEST((info.err().kind == error_kind::unreachable), info.err().message);
            BOOST_TEST(info.err().message.find("ProxyJump jumpbox") != std::string::npos, info.err().message);
        }
    }
}

// A ProxyCommand that writes much to stderr (here 300 KiB before it starts
// forwarding, more than a pipe holds) must not stall: its stderr is read all
// the session long.
BOOST_AUTO_TEST_CASE(a_talkative_proxy_command_does_not_stall_the_session) {
    std::ostringstream text;
    const fs::path cfg = fx.dir() / "talkative_config";
    text << "Host jumpbox\n    HostName 127.0.0.1\n    Port " << fx.port() << "\n    User " << fx.user()
         << "\n    IdentityFile \"" << fx.identity_file().string() << "\"\n    IdentitiesOnly yes\n"
         << "    UserKnownHostsFile \"" << fx.known_hosts_file().string() << "\"\n    BatchMode yes\n"
         << "Host talkative\n    HostName 127.0.0.1\n    Port " << fx.port() << "\n    User " << fx.user()
         << "\n    IdentityFile \"" << fx.identity_file().string() << "\"\n    IdentitiesOnly yes\n"
         << "    UserKnownHostsFile \"" << fx.known_hosts_file().string() << "\"\n"
         << "    ProxyCommand sh -c 'head -c 300000 /dev/zero >&2; exec ssh -F " << cfg.string()
         << " -W %h:%p jumpbox'\n";
    write_file(cfg, text.str());
    auto proxied_pool = std::make_shared<session_pool>(ssh_settings(), pool_options{5'000ms});
    auto made = sftp_store::create({"talkative", "", cfg.string()}, proxied_pool);
    BOOST_REQUIRE(made.has_value());
    auto info = (*made)->stat(fx.dir().string(), {});
    BOOST_TEST(info.has_value(), failure_text(info));
}

BOOST_AUTO_TEST_CASE(a_missing_config_file_fails_at_creation) {
    auto made = sftp_store::create({fx.alias(), "", (fx.dir() / "no_such_config").string()}, pool);
    BOOST_REQUIRE(!made.has_value());
    BOOST_TEST((made.err().kind == error_kind::not_found));
    BOOST_TEST(made.err().message.find("no_such_config") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
