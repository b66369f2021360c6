// Where the oned adapter finds its endpoint and credentials: Ruby OCA's order,
// with a fake HOME and a fake /var/lib/one/.one.
#define BOOST_TEST_MODULE oned_resolution
#include <boost/test/unit_test.hpp>

#include "adapters/oned/xmlrpc_one_api.hpp"
#include "tests/oned/test_print.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;
using oneds::adapters::oned::environment;
using oneds::adapters::oned::make_one_api;
using oneds::adapters::oned::xmlrpc_one_api;
using oneds::ports::error_kind;

namespace {

// A scratch tree: <root>/home/.one and <root>/var/.one, removed afterwards.
struct fake_homes {
    fs::path root;
    environment env;

    fake_homes() {
        std::string tmpl = (fs::temp_directory_path() / "oned-resolution-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp");
        root = tmpl;
        fs::create_directories(root / "home" / ".one");
        fs::create_directories(root / "var" / ".one");
        env.home = (root / "home").string();
        env.system_one_dir = root / "var" / ".one";
    }
    ~fake_homes() {
        std::error_code ec;
        fs::permissions(root, fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(root, ec);
    }
    fs::path write(const fs::path &relative, const std::string &content) const {
        auto p = root / relative;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << content;
        return p;
    }
};

std::string session_of(const std::string &explicit_file, const environment &env) {
    auto r = xmlrpc_one_api::resolve_session(explicit_file, env);
    BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
    return *r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(endpoint_resolution)

BOOST_FIXTURE_TEST_CASE(explicit_value_wins_over_everything, fake_homes) {
    env.one_xmlrpc = "http://from-env:2633/RPC2";
    write("home/.one/one_endpoint", "http://from-home:2633/RPC2\n");
    write("var/.one/one_endpoint", "http://from-var:2633/RPC2\n");
    BOOST_TEST(xmlrpc_one_api::resolve_endpoint("  http://explicit:2633/RPC2 ", env) == "http://explicit:2633/RPC2");
}

BOOST_FIXTURE_TEST_CASE(one_xmlrpc_comes_second, fake_homes) {
    env.one_xmlrpc = "http://from-env:2633/RPC2";
    write("home/.one/one_endpoint", "http://from-home:2633/RPC2\n");
    BOOST_TEST(xmlrpc_one_api::resolve_endpoint("", env) == "http://from-env:2633/RPC2");
}

BOOST_FIXTURE_TEST_CASE(home_file_comes_third_first_line_trimmed, fake_homes) {
    env.one_xmlrpc = "   ";  // blank counts as unset
    write("home/.one/one_endpoint", "  http://from-home:2633/RPC2  \r\nhttp://second-line\n");
    write("var/.one/one_endpoint", "http://from-var:2633/RPC2\n");
    BOOST_TEST(xmlrpc_one_api::resolve_endpoint("", env) == "http://from-home:2633/RPC2");
}

BOOST_FIXTURE_TEST_CASE(system_file_comes_fourth, fake_homes) {
    write("home/.one/one_endpoint", "\n");  // empty first line counts as absent
    write("var/.one/one_endpoint", "http://from-var:2633/RPC2");
    BOOST_TEST(xmlrpc_one_api::resolve_endpoint("", env) == "http://from-var:2633/RPC2");
}

BOOST_FIXTURE_TEST_CASE(default_comes_last, fake_homes) {
    BOOST_TEST(xmlrpc_one_api::resolve_endpoint("", env) == "http://localhost:2633/RPC2");
    env.home.reset();
    BOOST_TEST(xmlrpc_one_api::resolve_endpoint("", env) == "http://localhost:2633/RPC2");
}

BOOST_FIXTURE_TEST_CASE(from_process_reads_the_real_environment, fake_homes) {
    ::setenv("ONE_XMLRPC", "http://process-env:2633/RPC2", 1);
    ::setenv("HOME", env.home->c_str(), 1);
    auto e = environment::from_process();
    ::unsetenv("ONE_XMLRPC");
    BOOST_TEST(e.one_xmlrpc.value_or("") == "http://process-env:2633/RPC2");
    BOOST_TEST(e.home.value_or("") == *env.home);
    BOOST_TEST(xmlrpc_one_api::resolve_endpoint("", e) == "http://process-env:2633/RPC2");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(credential_resolution)

BOOST_FIXTURE_TEST_CASE(explicit_file_wins, fake_homes) {
    auto f = write("explicit_auth", "alice:from-explicit\n");
    env.one_auth = write("env_auth", "bob:from-env\n").string();
    write("home/.one/one_auth", "carol:from-home\n");
    BOOST_TEST(session_of(f.string(), env) == "alice:from-explicit");
}

BOOST_FIXTURE_TEST_CASE(one_auth_comes_second, fake_homes) {
    env.one_auth = write("env_auth", "bob:from-env\n").string();
    write("home/.one/one_auth", "carol:from-home\n");
    BOOST_TEST(session_of("", env) == "bob:from-env");
}

BOOST_FIXTURE_TEST_CASE(home_comes_third, fake_homes) {
    write("home/.one/one_auth", "carol:from-home\n");
    write("var/.one/one_auth", "oneadmin:from-var\n");
    BOOST_TEST(session_of("", env) == "carol:from-home");
}

BOOST_FIXTURE_TEST_CASE(system_file_comes_fourth, fake_homes) {
    write("var/.one/one_auth", "oneadmin:from-var\n");
    BOOST_TEST(session_of("", env) == "oneadmin:from-var");
}

BOOST_FIXTURE_TEST_CASE(first_line_right_stripped_password_may_hold_colons_and_blanks, fake_homes) {
    auto f = write("a", "user:pa ss:wo rd \t\r\nsecond:line\n");
    BOOST_TEST(session_of(f.string(), env) == "user:pa ss:wo rd");
}

BOOST_FIXTURE_TEST_CASE(missing_explicit_file_is_an_error_naming_it_not_a_fallback, fake_homes) {
    write("home/.one/one_auth", "carol:from-home\n");
    auto missing = (root / "nope").string();
    auto r = xmlrpc_one_api::resolve_session(missing, env);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.err().kind == error_kind::not_found);
    BOOST_TEST(r.err().message.find(missing) != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(missing_one_auth_file_is_an_error_naming_it, fake_homes) {
    write("home/.one/one_auth", "carol:from-home\n");
    env.one_auth = (root / "gone").string();
    auto r = xmlrpc_one_api::resolve_session("", env);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.err().message.find(*env.one_auth) != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(malformed_file_is_invalid_and_its_content_is_not_shown, fake_homes) {
    auto f = write("bad", "no-colon-secret-token\n");
    auto r = xmlrpc_one_api::resolve_session(f.string(), env);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.err().kind == error_kind::invalid);
    BOOST_TEST(r.err().message.find(f.string()) != std::string::npos);
    BOOST_TEST(r.err().message.find("no-colon-secret-token") == std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(empty_file_is_invalid, fake_homes) {
    auto f = write("empty", "  \n");
    auto r = xmlrpc_one_api::resolve_session(f.string(), env);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.err().kind == error_kind::invalid);
}

BOOST_FIXTURE_TEST_CASE(malformed_home_file_is_reported_not_skipped, fake_homes) {
    write("home/.one/one_auth", "garbage\n");
    write("var/.one/one_auth", "oneadmin:from-var\n");
    auto r = xmlrpc_one_api::resolve_session("", env);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.err().kind == error_kind::invalid);
}

BOOST_FIXTURE_TEST_CASE(unreadable_file_is_permission_naming_it, fake_homes) {
    if (::geteuid() == 0) return;  // root reads anything
    auto f = write("locked", "user:secret\n");
    fs::permissions(f, fs::perms::none);
    auto r = xmlrpc_one_api::resolve_session(f.string(), env);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.err().kind == error_kind::permission);
    BOOST_TEST(r.err().message.find(f.string()) != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(nothing_anywhere_is_not_found_listing_the_places, fake_homes) {
    auto r = xmlrpc_one_api::resolve_session("", env);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.err().kind == error_kind::not_found);
    BOOST_TEST(r.err().message.find((root / "home" / ".one" / "one_auth").string()) != std::string::npos);
    BOOST_TEST(r.err().message.find((root / "var" / ".one" / "one_auth").string()) != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(factory)

BOOST_FIXTURE_TEST_CASE(reads_the_host_keys_and_the_timeout, fake_homes) {
    auto f = write("auth", "oneadmin:secret\n");
    auto api = make_one_api({{"host.oned_endpoint", "http://oned.example:2633/RPC2"},
                             {"host.oned_auth_file", f.string()},
                             {"oned_timeout", "2.5"}},
                            env);
    BOOST_TEST_REQUIRE(api.has_value(), (api ? "" : api.err().message));
    BOOST_TEST((*api)->describe() == "http://oned.example:2633/RPC2");
    auto *x = dynamic_cast<xmlrpc_one_api *>(api->get());
    BOOST_REQUIRE(x);
    BOOST_TEST(x->timeout().count() == 2500);
}

BOOST_FIXTURE_TEST_CASE(defaults_come_from_the_environment, fake_homes) {
    write("home/.one/one_auth", "carol:secret\n");
    env.one_xmlrpc = "http://env-oned:2633/RPC2";
    auto api = make_one_api({}, env);
    BOOST_TEST_REQUIRE(api.has_value(), (api ? "" : api.err().message));
    BOOST_TEST((*api)->describe() == "http://env-oned:2633/RPC2");
    auto *x = dynamic_cast<xmlrpc_one_api *>(api->get());
    BOOST_TEST(x->timeout().count() == 30000);
}

BOOST_FIXTURE_TEST_CASE(bad_values_are_invalid_and_name_the_key, fake_homes) {
    auto f = write("auth", "oneadmin:secret\n");
    for (const char *bad : {"0", "-1", "abc", "10s", "1e9"}) {
        auto api = make_one_api({{"host.oned_auth_file", f.string()}, {"oned_timeout", bad}}, env);
        BOOST_REQUIRE(!api);
        BOOST_TEST(api.err().kind == error_kind::invalid);
        BOOST_TEST(api.err().message.find("oned_timeout") != std::string::npos);
    }
    auto api = make_one_api({{"host.oned_auth_file", f.string()}, {"oned_max_response_bytes", "0"}}, env);
    BOOST_REQUIRE(!api);
    BOOST_TEST(api.err().message.find("oned_max_response_bytes") != std::string::npos);
    api = make_one_api({{"host.oned_auth_file", f.string()}, {"host.oned_endpoint", "ftp://x"}}, env);
    BOOST_REQUIRE(!api);
    BOOST_TEST(api.err().kind == error_kind::invalid);
}

BOOST_FIXTURE_TEST_CASE(missing_credentials_fail_the_factory, fake_homes) {
    auto api = make_one_api({}, env);
    BOOST_REQUIRE(!api);
    BOOST_TEST(api.err().kind == error_kind::not_found);
}

BOOST_FIXTURE_TEST_CASE(describe_hides_credentials_in_the_url, fake_homes) {
    auto f = write("auth", "oneadmin:secret\n");
    auto api = make_one_api(
        {{"host.oned_endpoint", "http://user:urlpass@oned:2633/RPC2"}, {"host.oned_auth_file", f.string()}}, env);
    BOOST_TEST_REQUIRE(api.has_value());
    BOOST_TEST((*api)->describe() == "http://oned:2633/RPC2");
}

BOOST_AUTO_TEST_SUITE_END()
