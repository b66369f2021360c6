#define BOOST_TEST_MODULE sshconfig_test
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "sshconfig/ssh_config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace data = boost::unit_test::data;
using namespace oneds::adapters::sshconfig;
using oneds::ports::error_kind;

namespace {

local_identity alice() {
    return local_identity{"alice", "/home/alice", static_cast<unsigned>(::getuid())};
}

load_options options_for(local_identity local) {
    load_options options;
    options.local = std::move(local);
    return options;
}

ssh_config parse_ok(const std::string &text, local_identity local = alice()) {
    auto parsed = ssh_config::parse(text, "test.conf", options_for(std::move(local)));
    BOOST_REQUIRE_MESSAGE(parsed.has_value(), "parse failed: " + (parsed ? std::string() : parsed.err().message));
    return std::move(parsed).value();
}

host_settings resolve_ok(const ssh_config &config, const std::string &host, const std::string &user = {}) {
    auto settings = config.resolve(host, user);
    BOOST_REQUIRE_MESSAGE(settings.has_value(),
                          "resolve failed: " + (settings ? std::string() : settings.err().message));
    return std::move(settings).value();
}

std::vector<std::string> strings(const std::vector<fs::path> &paths) {
    std::vector<std::string> out;
    for (const auto &p : paths)
        out.push_back(p.string());
    return out;
}

// A private directory standing in for a home directory.
class temp_home {
  public:
    temp_home() {
        std::string pattern = (fs::temp_directory_path() / "oneds-sshconfig-XXXXXX").string();
        BOOST_REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
        fs::create_directories(path_ / ".ssh");
    }
    ~temp_home() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    temp_home(const temp_home &) = delete;
    temp_home &operator=(const temp_home &) = delete;
    temp_home(temp_home &&) = delete;
    temp_home &operator=(temp_home &&) = delete;

    const fs::path &path() const { return path_; }
    local_identity local() const { return local_identity{"alice", path_, static_cast<unsigned>(::getuid())}; }

    fs::path write(const fs::path &relative, const std::string &text, fs::perms mode = fs::perms(0600)) const {
        const fs::path file = path_ / relative;
        fs::create_directories(file.parent_path());
        std::ofstream(file) << text;
        fs::permissions(file, mode);
        return file;
    }

  private:
    fs::path path_;
};

}  // namespace

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(line_tokenizer)

struct split_case {
    std::string line;
    std::string keyword;
    std::vector<std::string> args;
};

std::ostream &operator<<(std::ostream &out, const split_case &c) {
    return out << '[' << c.line << ']';
}

const std::vector<split_case> split_cases{
    {"", "", {}},
    {"   # a comment", "", {}},
    {"\t", "", {}},
    {"HostName example.com", "hostname", {"example.com"}},
    {"HOSTNAME=example.com", "hostname", {"example.com"}},
    {"Port = 2222", "port", {"2222"}},
    {"Port= 2222", "port", {"2222"}},
    {"  User\tadmin  ", "user", {"admin"}},
    {"IdentityFile \"/a b/key\"", "identityfile", {"/a b/key"}},
    {"IdentityFile '/a b/key'", "identityfile", {"/a b/key"}},
    {"UserKnownHostsFile /a /b # trailing comment", "userknownhostsfile", {"/a", "/b"}},
    {"Host a\"b c\"d", "host", {"ab cd"}},
    {"IdentityFile /a\\ b", "identityfile", {"/a b"}},
    {"IdentityFile /a\\b", "identityfile", {"/a\\b"}},
    {"IdentityFile \"say \\\"hi\\\"\"", "identityfile", {"say \"hi\""}},
    {"SendEnv=A=B", "sendenv", {"A=B"}},
    {"User a#b", "user", {"a#b"}},
    {"Host web\r", "host", {"web"}},
    {"User \"\"", "user", {""}},
    {"Host one two\tthree", "host", {"one", "two", "three"}},
};

BOOST_DATA_TEST_CASE(splits_keyword_and_arguments_as_ssh_does, data::make(split_cases), c) {
    auto split = split_line(c.line);
    BOOST_REQUIRE(split.has_value());
    BOOST_TEST(split->keyword == c.keyword);
    BOOST_TEST(split->args == c.args, boost::test_tools::per_element());
}

struct split_error_case {
    std::string line;
    std::string message;
};

std::ostream &operator<<(std::ostream &out, const split_error_case &c) {
    return out << '[' << c.line << ']';
}

const std::vector<split_error_case> split_error_cases{
    {"IdentityFile \"/unterminated", "unterminated double quote"},
    {"IdentityFile '/unterminated", "unterminated single quote"},
    {"=value", "missing keyword"},
};

BOOST_DATA_TEST_CASE(refuses_broken_lines, data::make(split_error_cases), c) {
    auto split = split_line(c.line);
    BOOST_REQUIRE(!split.has_value());
    BOOST_TEST(split.err().message.find(c.message) != std::string::npos, split.err().message);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(patterns)

struct pattern_case {
    std::string text;
    std::string pattern;
    bool matches;
};

std::ostream &operator<<(std::ostream &out, const pattern_case &c) {
    return out << c.text << " ~ " << c.pattern << " = " << c.matches;
}

const std::vector<pattern_case> pattern_cases{
    {"host", "host", true},
    {"HOST", "host", true},
    {"host", "HoSt", true},
    {"host", "h*", true},
    {"host", "h?st", true},
    {"host", "h?t", false},
    {"host", "*", true},
    {"", "*", true},
    {"", "?", false},
    {"a.example.com", "*.example.com", true},
    {"example.com", "*.example.com", false},
    {"aaa", "*a*a*a*a", false},
    {"abc", "a*c", true},
    {"abc", "a*b", false},
    {"abcbc", "a*bc", true},
    {"host", "hostx", false},
    {"hostx", "host", false},
    {"10.0.0.5", "10.0.0.?", true},
};

BOOST_DATA_TEST_CASE(wildcards_match_case_insensitively, data::make(pattern_cases), c) {
    BOOST_TEST(match_pattern(c.text, c.pattern) == c.matches);
}

struct host_line_case {
    std::string host;
    std::vector<std::string> patterns;
    bool matches;
};

std::ostream &operator<<(std::ostream &out, const host_line_case &c) {
    out << c.host << " ~";
    for (const auto &p : c.patterns)
        out << ' ' << p;
    return out << " = " << c.matches;
}

const std::vector<host_line_case> host_line_cases{
    {"web1", {"web*", "!web2"}, true}, {"web2", {"web*", "!web2"}, false},
    {"web2", {"!web2", "*"}, false},   {"db", {"!web*"}, false},  // a negation alone never matches
    {"x", {"a", "b"}, false},          {"b", {"a", "b"}, true},
};

BOOST_DATA_TEST_CASE(negation_vetoes_the_whole_line, data::make(host_line_cases), c) {
    BOOST_TEST(host_line_matches(c.host, c.patterns) == c.matches);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(resolution)

const std::string fleet_config = R"(# settings of every host come last, as ssh wants
Host backup
    HostName 10.0.0.5
    Port 2222
    User oneadmin
Host backup-*  !backup-old
    HostName %h.example.com
    User=admin
Host *.example.com
    Port 2200
Host *
    User nobody
    Port 22
)";

struct alias_case {
    std::string host;
    std::string hostname;
    unsigned port;
    std::string user;
};

std::ostream &operator<<(std::ostream &out, const alias_case &c) {
    return out << c.host;
}

const std::vector<alias_case> alias_cases{
    {"backup", "10.0.0.5", 2222, "oneadmin"},
    {"BACKUP", "10.0.0.5", 2222, "oneadmin"},
    // Host patterns see the name as given, not HostName: *.example.com does
    // not match backup-new although its HostName ends so.
    {"backup-new", "backup-new.example.com", 22, "admin"},
    {"backup-old", "backup-old", 22, "nobody"},
    {"web.example.com", "web.example.com", 2200, "nobody"},
};

BOOST_DATA_TEST_CASE(resolves_aliases_with_patterns_negation_and_first_value, data::make(alias_cases), c) {
    const auto config = parse_ok(fleet_config);
    const auto s = resolve_ok(config, c.host);
    BOOST_TEST(s.host == c.host);
    BOOST_TEST(s.hostname == c.hostname);
    BOOST_TEST(s.port == c.port);
    BOOST_TEST(s.user == c.user);
}

BOOST_AUTO_TEST_CASE(first_obtained_value_wins_over_later_blocks) {
    const auto config =
        parse_ok("Host x\n  User first\n  User second\nHost *\n  User third\n  Port 1\nHost x\n  Port 2\n");
    const auto s = resolve_ok(config, "x");
    BOOST_TEST(s.user == "first");
    BOOST_TEST(s.port == 1U);
}

BOOST_AUTO_TEST_CASE(lines_before_any_host_apply_to_every_host) {
    const auto config = parse_ok("Port 2022\nHost x\n  Port 2023\n");
    BOOST_TEST(resolve_ok(config, "x").port == 2022U);
    BOOST_TEST(resolve_ok(config, "y").port == 2022U);
}

BOOST_AUTO_TEST_CASE(user_precedence_is_caller_then_config_then_local_user) {
    const auto config = parse_ok("Host configured\n  User oneadmin\n");
    BOOST_TEST(resolve_ok(config, "configured", "root").user == "root");
    BOOST_TEST(resolve_ok(config, "configured").user == "oneadmin");
    BOOST_TEST(resolve_ok(config, "other").user == "alice");
}

BOOST_AUTO_TEST_CASE(defaults_when_nothing_is_configured) {
    const auto config = parse_ok("");
    const auto s = resolve_ok(config, "plain.example");
    BOOST_TEST(s.hostname == "plain.example");
    BOOST_TEST(s.port == 22U);
    BOOST_TEST(s.user == "alice");
    BOOST_TEST(!s.identity_files_configured);
    BOOST_TEST(strings(s.identity_files) ==
                   (std::vector<std::string>{"/home/alice/.ssh/id_ed25519", "/home/alice/.ssh/id_ecdsa",
                                             "/home/alice/.ssh/id_rsa"}),
               boost::test_tools::per_element());
    BOOST_TEST(strings(s.known_hosts_files) ==
                   (std::vector<std::string>{"/home/alice/.ssh/known_hosts", "/home/alice/.ssh/known_hosts2"}),
               boost::test_tools::per_element());
    BOOST_TEST((s.host_key == host_key_policy::strict));
    BOOST_TEST(!s.identities_only);
    BOOST_TEST(s.notes.empty());
}

BOOST_AUTO_TEST_CASE(identity_files_accumulate_in_order) {
    const auto config =
        parse_ok("Host x\n  IdentityFile /k/one\nHost *\n  IdentityFile /k/two\n  IdentitiesOnly yes\n");
    const auto s = resolve_ok(config, "x");
    BOOST_TEST(s.identity_files_configured);
    BOOST_TEST(strings(s.identity_files) == (std::vector<std::string>{"/k/one", "/k/two"}),
               boost::test_tools::per_element());
    BOOST_TEST(s.identities_only);
}

BOOST_AUTO_TEST_CASE(known_hosts_none_means_no_file) {
    const auto s = resolve_ok(parse_ok("UserKnownHostsFile none\n"), "x");
    BOOST_TEST(s.known_hosts_files.empty());
}

struct policy_case {
    std::string value;
    host_key_policy policy;
};

std::ostream &operator<<(std::ostream &out, const policy_case &c) {
    return out << c.value;
}

const std::vector<policy_case> policy_cases{
    {"yes", host_key_policy::strict},
    {"ask", host_key_policy::strict},
    {"true", host_key_policy::strict},
    {"no", host_key_policy::accept_any},
    {"off", host_key_policy::accept_any},
    {"false", host_key_policy::accept_any},
    {"accept-new", host_key_policy::accept_new},
    {"Accept-New", host_key_policy::accept_new},
};

BOOST_DATA_TEST_CASE(strict_host_key_checking_is_strict_unless_explicitly_relaxed, data::make(policy_cases), c) {
    const auto s = resolve_ok(parse_ok("StrictHostKeyChecking " + c.value + "\n"), "x");
    BOOST_TEST((s.host_key == c.policy));
}

BOOST_AUTO_TEST_CASE(tokens_and_tilde_are_expanded_in_file_names) {
    const auto config = parse_ok(R"(Host srv
    HostName real.example
    User bob
    Port 2022
    IdentityFile ~/.ssh/id_%h_%r
    IdentityFile %d/keys/%u-%n-%p-%i
    IdentityFile /k/%%literal
    IdentityFile ~
    UserKnownHostsFile ~/.ssh/kh_%n "/quoted path/kh"
)");
    const auto s = resolve_ok(config, "srv");
    const std::string uid = std::to_string(::getuid());
    BOOST_TEST(strings(s.identity_files) ==
                   (std::vector<std::string>{"/home/alice/.ssh/id_real.example_bob",
                                             "/home/alice/keys/alice-srv-2022-" + uid, "/k/%literal", "/home/alice"}),
               boost::test_tools::per_element());
    BOOST_TEST(strings(s.known_hosts_files) == (std::vector<std::string>{"/home/alice/.ssh/kh_srv", "/quoted path/kh"}),
               boost::test_tools::per_element());
    // %r is the user that will log in, so the caller's explicit user counts.
    const auto as_carol = resolve_ok(config, "srv", "carol");
    BOOST_TEST(as_carol.identity_files.front().string() == "/home/alice/.ssh/id_real.example_carol");
}

BOOST_AUTO_TEST_CASE(tilde_user_is_that_users_home) {
    const auto s = resolve_ok(parse_ok("IdentityFile ~root/key\n"), "x");
    BOOST_TEST(s.identity_files.front().string() == "/root/key");
}

BOOST_AUTO_TEST_CASE(hostname_expands_percent_h_to_the_name_given) {
    const auto s = resolve_ok(parse_ok("Host *\n  HostName %h.internal\n"), "db");
    BOOST_TEST(s.hostname == "db.internal");
}

BOOST_AUTO_TEST_CASE(match_blocks_are_skipped_and_noted) {
    const auto config = parse_ok("Match host srv\n  User matched\nHost *\n  User star\n");
    const auto s = resolve_ok(config, "srv");
    BOOST_TEST(s.user == "star");
    BOOST_REQUIRE(s.notes.size() == 1U);
    BOOST_TEST(s.notes.front().find("test.conf line 1") != std::string::npos, s.notes.front());
}

BOOST_AUTO_TEST_CASE(match_all_applies_to_every_host) {
    const auto s = resolve_ok(parse_ok("Host other\n  User no\nMatch all\n  User everyone\n"), "srv");
    BOOST_TEST(s.user == "everyone");
    BOOST_TEST(s.notes.empty());
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(errors)

struct error_case {
    std::string text;
    std::string message;  // must appear in the error, which names file and line
};

std::ostream &operator<<(std::ostream &out, const error_case &c) {
    return out << '[' << c.text << ']';
}

const std::vector<error_case> error_cases{
    {"Host a\nPort abc\n", "test.conf line 2: bad port"},
    {"Port 70000\n", "test.conf line 1: bad port"},
    {"Port 0\n", "test.conf line 1: bad port"},
    {"\n\nHostName\n", "test.conf line 3: missing argument"},
    {"User a b\n", "test.conf line 1: garbage at end of line"},
    {"StrictHostKeyChecking maybe\n", "test.conf line 1: unsupported StrictHostKeyChecking"},
    {"IdentitiesOnly perhaps\n", "test.conf line 1: unsupported IdentitiesOnly"},
    {"Host\n", "test.conf line 1: missing argument"},
    {"# comment\nIdentityFile \"/x\n", "test.conf line 2: unterminated double quote"},
    {"User \"\"\n", "test.conf line 1: missing argument"},
    // Lines of blocks that apply to no host are checked too.
    {"Host nomatch\n  Port 0\n", "test.conf line 2: bad port"},
    {"Host a\r\n  Port x\r\n", "test.conf line 2: bad port"},
};

BOOST_DATA_TEST_CASE(syntax_errors_name_file_and_line, data::make(error_cases), c) {
    auto parsed = ssh_config::parse(c.text, "test.conf", options_for(alice()));
    BOOST_REQUIRE(!parsed.has_value());
    BOOST_TEST((parsed.err().kind == error_kind::invalid));
    BOOST_TEST(parsed.err().message.find(c.message) != std::string::npos, parsed.err().message);
}

const std::vector<error_case> expansion_error_cases{
    {"Host *\n  IdentityFile /k/%Z\n", "test.conf line 2: IdentityFile: token %Z"},
    {"UserKnownHostsFile /k/50%\n", "test.conf line 1: UserKnownHostsFile"},
    {"\nHostName %d.example\n", "test.conf line 2: HostName: token %d"},
    {"IdentityFile ~no_such_user_oneds/key\n", "test.conf line 1: IdentityFile: unknown user"},
};

BOOST_DATA_TEST_CASE(expansion_errors_name_file_and_line, data::make(expansion_error_cases), c) {
    const auto config = parse_ok(c.text);
    auto settings = config.resolve("x");
    BOOST_REQUIRE(!settings.has_value());
    BOOST_TEST((settings.err().kind == error_kind::invalid));
    BOOST_TEST(settings.err().message.find(c.message) != std::string::npos, settings.err().message);
}

BOOST_AUTO_TEST_CASE(an_explicit_file_that_is_missing_is_an_error_naming_it) {
    auto loaded = ssh_config::load("/nonexistent/oneds/ssh_config", options_for(alice()));
    BOOST_REQUIRE(!loaded.has_value());
    BOOST_TEST((loaded.err().kind == error_kind::not_found));
    BOOST_TEST(loaded.err().message.find("/nonexistent/oneds/ssh_config") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(errors_in_a_loaded_file_name_its_path) {
    const temp_home home;
    const auto file = home.write("custom_config", "Host a\n  Port nope\n");
    auto loaded = ssh_config::load(file, options_for(home.local()));
    BOOST_REQUIRE(!loaded.has_value());
    BOOST_TEST(loaded.err().message.find(file.string() + " line 2: bad port") != std::string::npos,
               loaded.err().message);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(files_and_includes)

BOOST_AUTO_TEST_CASE(default_file_is_the_users_ssh_config) {
    const temp_home home;
    {
        auto none = ssh_config::load_default(options_for(home.local()));
        BOOST_REQUIRE(none.has_value());
        BOOST_TEST(none->name().empty());
        BOOST_TEST(resolve_ok(*none, "srv").hostname == "srv");
    }
    home.write(".ssh/config", "Host srv\n  HostName 192.0.2.7\n");
    auto found = ssh_config::load_default(options_for(home.local()));
    BOOST_REQUIRE(found.has_value());
    BOOST_TEST(resolve_ok(*found, "srv").hostname == "192.0.2.7");
    BOOST_TEST(found->name() == (home.path() / ".ssh/config").string());
}

BOOST_AUTO_TEST_CASE(default_file_writable_by_others_is_refused_like_ssh) {
    const temp_home home;
    const auto file = home.write(".ssh/config", "Host srv\n  StrictHostKeyChecking no\n", fs::perms(0622));
    auto loaded = ssh_config::load_default(options_for(home.local()));
    BOOST_REQUIRE(!loaded.has_value());
    BOOST_TEST((loaded.err().kind == error_kind::permission));
    BOOST_TEST(loaded.err().message.find(file.string()) != std::string::npos, loaded.err().message);
}

BOOST_AUTO_TEST_CASE(relative_includes_come_from_dot_ssh_in_glob_order) {
    const temp_home home;
    home.write(".ssh/config.d/20-b.conf", "Host b\n  User from_b\nHost a\n  User late\n");
    home.write(".ssh/config.d/10-a.conf", "Host a\n  User from_a\n  Port 2201\n");
    const auto main = home.write("main.conf", "Include config.d/*.conf\nHost *\n  User fallback\n");
    auto loaded = ssh_config::load(main, options_for(home.local()));
    BOOST_REQUIRE_MESSAGE(loaded.has_value(), (loaded ? std::string() : loaded.err().message));
    BOOST_TEST(resolve_ok(*loaded, "a").user == "from_a");
    BOOST_TEST(resolve_ok(*loaded, "a").port == 2201U);
    BOOST_TEST(resolve_ok(*loaded, "b").user == "from_b");
    BOOST_TEST(resolve_ok(*loaded, "c").user == "fallback");
}

BOOST_AUTO_TEST_CASE(include_inside_a_host_block_is_conditional_and_keeps_the_block_state) {
    const temp_home home;
    home.write(".ssh/plain.conf", "User from_include\n");
    home.write(".ssh/other_host.conf", "Host nomatch\n  Port 2000\n");
    home.write(".ssh/star.conf", "Host *\n  Port 2001\n");
    const auto main =
        home.write("main.conf", "Host x\n  Include plain.conf other_host.conf\n  IdentityFile /after/include\n"
                                "Host y\n  Include star.conf\nHost x\n  Include star.conf\n");
    auto loaded = ssh_config::load(main, options_for(home.local()));
    BOOST_REQUIRE_MESSAGE(loaded.has_value(), (loaded ? std::string() : loaded.err().message));
    const auto x = resolve_ok(*loaded, "x");
    BOOST_TEST(x.user == "from_include");
    // other_host.conf switched its own block off; x's block goes on after it.
    BOOST_TEST(strings(x.identity_files) == std::vector<std::string>{"/after/include"},
               boost::test_tools::per_element());
    BOOST_TEST(x.port == 2001U);
    const auto z = resolve_ok(*loaded, "z");
    BOOST_TEST(z.user == "alice");
    // Host * inside a file included from a block that does not match z
    // cannot apply to z.
    BOOST_TEST(z.port == 22U);
    BOOST_TEST(resolve_ok(*loaded, "y").port == 2001U);
}

BOOST_AUTO_TEST_CASE(absolute_and_tilde_includes_and_globs_without_match) {
    const temp_home home;
    const auto abs = home.write("elsewhere/abs.conf", "Host a\n  HostName abs.example\n");
    home.write("tilde.conf", "Host b\n  HostName tilde.example\n");
    const auto main =
        home.write("main.conf", "Include " + abs.string() + " ~/tilde.conf ~/missing/*.conf no_such_file\n");
    auto loaded = ssh_config::load(main, options_for(home.local()));
    BOOST_REQUIRE_MESSAGE(loaded.has_value(), (loaded ? std::string() : loaded.err().message));
    BOOST_TEST(resolve_ok(*loaded, "a").hostname == "abs.example");
    BOOST_TEST(resolve_ok(*loaded, "b").hostname == "tilde.example");
}

BOOST_AUTO_TEST_CASE(an_include_loop_is_an_error_not_a_crash) {
    const temp_home home;
    const auto loop = home.write(".ssh/loop.conf", "Include loop.conf\n");
    auto loaded = ssh_config::load(loop, options_for(home.local()));
    BOOST_REQUIRE(!loaded.has_value());
    BOOST_TEST(loaded.err().message.find("line 1: Include nested more than 16 levels") != std::string::npos,
               loaded.err().message);
}

BOOST_AUTO_TEST_CASE(errors_in_an_included_file_name_that_file) {
    const temp_home home;
    const auto inc = home.write(".ssh/bad.conf", "\nPort 99999\n");
    const auto main = home.write("main.conf", "Include bad.conf\n");
    auto loaded = ssh_config::load(main, options_for(home.local()));
    BOOST_REQUIRE(!loaded.has_value());
    BOOST_TEST(loaded.err().message.find(inc.string() + " line 2: bad port") != std::string::npos,
               loaded.err().message);
}

BOOST_AUTO_TEST_CASE(an_included_file_writable_by_others_is_refused) {
    const temp_home home;
    const auto inc = home.write(".ssh/open.conf", "StrictHostKeyChecking no\n", fs::perms(0666));
    const auto main = home.write("main.conf", "Include open.conf\n");
    auto loaded = ssh_config::load(main, options_for(home.local()));
    BOOST_REQUIRE(!loaded.has_value());
    BOOST_TEST((loaded.err().kind == error_kind::permission));
    BOOST_TEST(loaded.err().message.find(inc.string()) != std::string::npos, loaded.err().message);
}

BOOST_AUTO_TEST_CASE(resolve_host_reads_the_named_file) {
    const temp_home home;
    const auto file = home.write("cfg", "Host alias\n  HostName 127.0.0.1\n  Port 2222\n  User backup\n");
    auto s = resolve_host(file.string(), "alias", {}, options_for(home.local()));
    BOOST_REQUIRE(s.has_value());
    BOOST_TEST(s->hostname == "127.0.0.1");
    BOOST_TEST(s->port == 2222U);
    BOOST_TEST(s->user == "backup");
}

BOOST_AUTO_TEST_SUITE_END()
