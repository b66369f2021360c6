// The adapter's server_cipher login (make_one_api_as_user) against the fake
// oned, which verifies tokens with code of its own as oned does: calls run
// as the target user; an expired token, a token made with the wrong
// password, a server user whose driver is not server_cipher and an unknown
// target user are refused (0x100); no message holds the password or the
// token.
#define BOOST_TEST_MODULE oned_cipher_login
#include <boost/test/unit_test.hpp>

#include "adapters/oned/server_cipher.hpp"
#include "adapters/oned/xmlrpc_one_api.hpp"
#include "tests/integration/scratch_dir.hpp"
#include "tests/oned/fake_oned.hpp"

#include <pugixml.hpp>

#include <chrono>
#include <ctime>

using namespace oneds::test::oned;
using oneds::adapters::oned::client_options;
using oneds::adapters::oned::server_cipher;
using oneds::adapters::oned::xmlrpc_one_api;
using oneds::ports::error_kind;
using oneds::ports::rpc_value;

namespace {

const std::string k_cipher_password = "cipher:secret-of-serveradmin";

struct cipher_fixture {
    fake_oned oned{[] {
        fake_oned::options o;
        o.serveradmin_password = k_cipher_password;
        return o;
    }()};
    oneds::test::scratch_dir dir;
    int alice = -1;

    cipher_fixture() {
        alice = oned.add_user("alice", "alice-core-password");
        datastore_record ds;
        ds.id = 1;
        ds.name = "default";
        oned.add_datastore(ds);
        oned.start();
    }

    std::unique_ptr<oneds::ports::one_api_as_user> login(const std::string &file_content) {
        const auto file = dir.write("onegate_auth", file_content);
        auto made = oneds::adapters::oned::make_one_api_as_user(
            {{"host.oned_endpoint", oned.endpoint()}, {"host.one_cipher_auth", file}, {"oned_timeout", "5"}});
        BOOST_TEST_REQUIRE(made.has_value(), (made ? "" : made.err().message));
        return std::move(*made);
    }

    // A client with a session made by hand (expired tokens).
    std::unique_ptr<xmlrpc_one_api> with_session(std::string session) {
        client_options o;
        o.endpoint = oned.endpoint();
        o.session = std::move(session);
        auto api = xmlrpc_one_api::create(std::move(o));
        BOOST_TEST_REQUIRE(api.has_value());
        return std::move(*api);
    }
};

void require_no_secret(const std::string &text) {
    BOOST_TEST(text.find(k_cipher_password) == std::string::npos, text);
    BOOST_TEST(text.find("secret-of-serveradmin") == std::string::npos, text);
    BOOST_TEST(text.find("serveradmin:alice:") == std::string::npos, text);
    BOOST_TEST(text.find(oneds::adapters::oned::sha256_hex(k_cipher_password).substr(0, 32)) == std::string::npos,
               text);
}

void require_refused(const oneds::ports::result<oneds::ports::rpc_result> &r) {
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST((r.err().kind == error_kind::permission));
    BOOST_TEST(r.err().code == 0x100);
    BOOST_TEST(r.err().message.find("User couldn't be authenticated, aborting call.") != std::string::npos,
               r.err().message);
    require_no_secret(r.err().message);
}

long long now() { return static_cast<long long>(std::time(nullptr)); }

}  // namespace

BOOST_FIXTURE_TEST_SUITE(cipher_login, cipher_fixture)

BOOST_AUTO_TEST_CASE(calls_run_as_the_target_user) {
    auto users = login(oned.serveradmin_credentials() + "\n");
    auto api = users->as_user("alice");
    BOOST_TEST_REQUIRE(api.has_value(), (api ? "" : api.err().message));
    auto me = (*api)->call("one.user.info", std::vector<rpc_value>{-1}, {});
    BOOST_TEST_REQUIRE(me.has_value(), (me ? "" : me.err().message));
    pugi::xml_document doc;
    doc.load_string(std::get<std::string>(me->body).c_str());
    BOOST_TEST(doc.select_node("/USER/NAME").node().text().get() == std::string("alice"));
    auto id =
        (*api)->call("one.image.allocate", std::vector<rpc_value>{std::string("NAME=\"a\"\nTYPE=\"OS\"\n"), 1}, {});
    BOOST_TEST_REQUIRE(id.has_value(), (id ? "" : id.err().message));
    const auto img = oned.image(std::get<std::int32_t>(id->body));
    BOOST_TEST_REQUIRE(img.has_value());
    BOOST_TEST(img->uid == alice);
    BOOST_TEST(img->gid == 1);
    for (const auto &c : oned.calls()) BOOST_TEST(c.user == "alice", c.method);
    // Each call has a token of its own, valid 120 s from the call.
    BOOST_TEST(oneds::adapters::oned::login_token_validity.count() == 120);
}

BOOST_AUTO_TEST_CASE(an_expired_token_is_refused) {
    const auto cipher = server_cipher::from_password("serveradmin", k_cipher_password);
    require_refused(with_session(cipher.session_for("alice", now() - 1))->call("one.user.info", {-1}, {}));
    // The same made valid is accepted: the refusal was the expiry.
    auto ok = with_session(cipher.session_for("alice", now() + 120))->call("one.user.info", {-1}, {});
    BOOST_TEST(ok.has_value(), (ok ? "" : ok.err().message));
    BOOST_TEST(oned.calls().back().user == "alice");
}

BOOST_AUTO_TEST_CASE(a_token_made_with_the_wrong_password_is_refused_with_the_fix) {
    auto users = login("serveradmin:not-the-password\n");
    auto api = users->as_user("alice");
    BOOST_TEST_REQUIRE(api.has_value(), (api ? "" : api.err().message));
    auto r = (*api)->call("one.user.info", std::vector<rpc_value>{-1}, {});
    require_refused(r);
    const auto &m = r.err().message;
    BOOST_TEST(m.find("oned refused the server_cipher login of serveradmin as alice made from " +
                      dir.file("onegate_auth")) != std::string::npos,
               m);
    BOOST_TEST(m.find("not-the-password") == std::string::npos, m);
    BOOST_TEST(oned.calls().back().user.empty(), "the fake let the call through");
}

BOOST_AUTO_TEST_CASE(a_server_user_without_the_server_cipher_driver_is_refused) {
    // oneadmin's driver is core: its password cannot sign tokens.
    auto users = login(oned.oneadmin_session() + "\n");
    auto api = users->as_user("alice");
    BOOST_TEST_REQUIRE(api.has_value());
    require_refused((*api)->call("one.user.info", std::vector<rpc_value>{-1}, {}));
}

BOOST_AUTO_TEST_CASE(an_unknown_target_user_is_refused) {
    auto users = login(oned.serveradmin_credentials() + "\n");
    auto api = users->as_user("mallory");
    BOOST_TEST_REQUIRE(api.has_value());
    require_refused((*api)->call("one.user.info", std::vector<rpc_value>{-1}, {}));
    BOOST_TEST(oned.images().empty());
}

BOOST_AUTO_TEST_CASE(a_bad_user_name_or_file_fails_before_any_call) {
    auto users = login(oned.serveradmin_credentials() + "\n");
    auto bad = users->as_user("al ice");
    BOOST_TEST_REQUIRE(!bad.has_value());
    BOOST_TEST((bad.err().kind == error_kind::invalid));
    users = login("no colon here\n");
    auto malformed = users->as_user("alice");
    BOOST_TEST_REQUIRE(!malformed.has_value());
    BOOST_TEST(malformed.err().message.find(dir.file("onegate_auth") + " is malformed") != std::string::npos,
               malformed.err().message);
    BOOST_TEST(malformed.err().message.find("no colon here") == std::string::npos, malformed.err().message);
    BOOST_TEST(oned.calls().empty());
}

BOOST_AUTO_TEST_SUITE_END()
