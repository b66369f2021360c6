#define BOOST_TEST_MODULE sshconfig
// The OpenSSH client's settings as OpenSSH resolves them (`ssh -G`, the real
// ssh of this machine), parsed and completed: Host and Match blocks, Include,
// HostKeyAlias and the proxies come from ssh itself; `~` and the tokens of
// IdentityFile, the cache and the errors are ours.
#include "adapters/process/local_runner.hpp"
#include "adapters/sshconfig/ssh_config.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

namespace fs = std::filesystem;
using oneds::adapters::sshconfig::host_key_policy;
using oneds::adapters::sshconfig::local_identity;
using oneds::adapters::sshconfig::parse_resolved;
using oneds::adapters::sshconfig::resolver;
using oneds::ports::error_kind;

namespace {

struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string t = (fs::temp_directory_path() / "oneds-sshcfg-XXXXXX").string();
        BOOST_REQUIRE(::mkdtemp(t.data()) != nullptr);
        path = t;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string write(const std::string &name, const std::string &text) const {
        std::ofstream(path / name) << text;
        return (path / name).string();
    }
};

const local_identity k_local{"alice", "/home/alice", 1000};

// The error's text, or "" (Boost.Test evaluates a message argument always).
template <typename T>
std::string why(const oneds::ports::result<T> &r) {
    return r ? std::string() : r.err().message;
}

struct resolving {
    oneds::adapters::process::local_runner local;
    resolver r{local};
    temp_dir dir;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(parsing_ssh_g_output)

BOOST_AUTO_TEST_CASE(fields_tokens_and_tilde) {
    const std::string out =
        "user bob\nhostname 10.0.0.9\nport 2222\nidentityfile ~/.ssh/id_ed25519\n"
        "identityfile %d/keys/%r@%h:%p_%n_%u_%i_%%\nuserknownhostsfile /kh1 /kh2\n"
        "stricthostkeychecking accept-new\nidentitiesonly yes\nhostkeyalias backup-key\n"
        "proxyjump jump@bastion:2200\nproxycommand none\n";
    auto s = parse_resolved(out, "backup", "", k_local);
    BOOST_TEST_REQUIRE(s.has_value(), why(s));
    BOOST_TEST(s->host == "backup");
    BOOST_TEST(s->hostname == "10.0.0.9");
    BOOST_TEST(s->port == 2222);
    BOOST_TEST(s->user == "bob");
    BOOST_TEST_REQUIRE(s->identity_files.size() == 2U);
    BOOST_TEST(s->identity_files[0] == fs::path("/home/alice/.ssh/id_ed25519"));
    BOOST_TEST(s->identity_files[1] == fs::path("/home/alice/keys/bob@10.0.0.9:2222_backup_alice_1000_%"));
    BOOST_TEST(s->known_hosts_files == (std::vector<fs::path>{"/kh1", "/kh2"}), boost::test_tools::per_element());
    BOOST_TEST((s->host_key == host_key_policy::accept_new));
    BOOST_TEST(s->identities_only);
    BOOST_TEST(s->host_key_alias == "backup-key");
    BOOST_TEST(s->proxy_jump == "jump@bastion:2200");
    BOOST_TEST(s->proxy_command.empty());
}

BOOST_AUTO_TEST_CASE(an_explicit_user_wins_and_the_local_user_is_the_last_resort) {
    BOOST_TEST(parse_resolved("user bob\n", "h", "carol", k_local)->user == "carol");
    BOOST_TEST(parse_resolved("hostname h\n", "h", "", k_local)->user == "alice");
}

BOOST_AUTO_TEST_CASE(no_known_hosts_file_and_relaxed_checking) {
    auto s = parse_resolved("userknownhostsfile none\nstricthostkeychecking false\n", "h", "", k_local);
    BOOST_TEST(s->known_hosts_files.empty());
    BOOST_TEST((s->host_key == host_key_policy::accept_any));
    BOOST_TEST((parse_resolved("stricthostkeychecking ask\n", "h", "", k_local)->host_key == host_key_policy::strict));
}

BOOST_AUTO_TEST_CASE(an_unknown_token_or_a_bad_port_is_an_error_naming_it) {
    auto s = parse_resolved("identityfile ~/k_%C\n", "h", "", k_local);
    BOOST_TEST_REQUIRE(!s.has_value());
    BOOST_TEST((s.err().kind == error_kind::invalid));
    BOOST_TEST(s.err().message.find("token %C") != std::string::npos, s.err().message);
    BOOST_TEST(!parse_resolved("port 99999\n", "h", "", k_local).has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(resolved_by_openssh)

// What ssh does, we get: Host patterns with negation, Match, Include.
BOOST_FIXTURE_TEST_CASE(host_match_and_include_blocks_resolve_as_ssh_does, resolving) {
    dir.write("inc.conf", "Host included\n  HostName 10.1.1.1\n  User inc\n");
    const std::string cfg =
        dir.write("config", "Include " + (dir.path / "inc.conf").string() +
                                "\nHost backup* !backup-old\n  HostName 10.2.2.2\n  Port 2022\n"
                                "Match host backup-old\n  HostName 10.3.3.3\n  HostKeyAlias old-backup\n"
                                "Host *\n  User admin\n  UserKnownHostsFile none\n");
    auto a = r.resolve(cfg, "backup1", "");
    BOOST_TEST_REQUIRE(a.has_value(), why(a));
    BOOST_TEST(a->hostname == "10.2.2.2");
    BOOST_TEST(a->port == 2022);
    BOOST_TEST(a->user == "admin");
    BOOST_TEST(a->known_hosts_files.empty());
    BOOST_TEST(a->config_file == cfg);
    auto old = r.resolve(cfg, "backup-old", "");
    BOOST_TEST_REQUIRE(old.has_value(), why(old));
    BOOST_TEST(old->hostname == "10.3.3.3");
    BOOST_TEST(old->host_key_alias == "old-backup");
    auto inc = r.resolve(cfg, "included", "");
    BOOST_TEST(inc->hostname == "10.1.1.1");
    BOOST_TEST(inc->user == "inc");
    auto other = r.resolve(cfg, "elsewhere", "root");
    BOOST_TEST(other->hostname == "elsewhere");
    BOOST_TEST(other->user == "root");
}

BOOST_FIXTURE_TEST_CASE(proxies_are_read, resolving) {
    const std::string cfg = dir.write("config",
                                      "Host behind\n  ProxyJump bob@bastion:2200,gate\n"
                                      "Host piped\n  ProxyCommand nc %h %p\n");
    BOOST_TEST(r.resolve(cfg, "behind", "")->proxy_jump == "bob@bastion:2200,gate");
    BOOST_TEST(r.resolve(cfg, "piped", "")->proxy_command == "nc %h %p");
    BOOST_TEST(r.resolve(cfg, "direct", "")->proxy_jump.empty());
}

BOOST_FIXTURE_TEST_CASE(each_host_is_asked_once_and_failures_are_not_kept, resolving) {
    const std::string cfg = dir.write("config", "Host a\n  HostName 10.0.0.1\n");
    BOOST_TEST(r.resolve(cfg, "a", "").has_value());
    BOOST_TEST(r.resolve(cfg, "a", "").has_value());
    BOOST_TEST(r.runs() == 1U);
    BOOST_TEST(r.resolve(cfg, "a", "other").has_value());
    BOOST_TEST(r.runs() == 2U);
    const std::string missing = (dir.path / "missing").string();
    BOOST_TEST(!r.resolve(missing, "a", "").has_value());
    BOOST_TEST(!r.resolve(missing, "a", "").has_value());
    BOOST_TEST(r.runs() == 4U);
}

BOOST_FIXTURE_TEST_CASE(errors_are_ssh_s_own_words_with_a_kind, resolving) {
    auto missing = r.resolve((dir.path / "missing").string(), "a", "");
    BOOST_TEST_REQUIRE(!missing.has_value());
    BOOST_TEST((missing.err().kind == error_kind::not_found), missing.err().message);
    BOOST_TEST(missing.err().message.find((dir.path / "missing").string()) != std::string::npos, missing.err().message);
    const std::string bad = dir.write("bad", "Host a\n  NoSuchOption yes\n");
    auto broken = r.resolve(bad, "a", "");
    BOOST_TEST_REQUIRE(!broken.has_value());
    BOOST_TEST((broken.err().kind == error_kind::invalid), broken.err().message);
    BOOST_TEST(broken.err().message.find("line 2") != std::string::npos, broken.err().message);
    auto option = r.resolve(bad, "-oProxyCommand=x", "");
    BOOST_TEST_REQUIRE(!option.has_value());
    BOOST_TEST((option.err().kind == error_kind::invalid));
}

BOOST_AUTO_TEST_SUITE_END()
