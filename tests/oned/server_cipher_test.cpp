#define BOOST_TEST_MODULE oned_server_cipher
// server_cipher login tokens (adapters/oned/server_cipher.hpp) against
// vectors computed independently with OpenSSL's command line tool:
//
//   H=$(printf %s "$password" | openssl dgst -sha256 -r | cut -d' ' -f1)
//   K=${H:0:32}; IV=${K:0:16}
//   printf %s "$plain" | openssl enc -aes-256-cbc
//       -K $(printf %s "$K" | xxd -p | tr -d '\n')
//       -iv $(printf %s "$IV" | xxd -p | tr -d '\n') -base64 -A
//   (one command line)
//
// and the cipher auth file's errors, which name the file and the fix and
// never its content.
#include "adapters/oned/server_cipher.hpp"
#include "adapters/oned/xmlrpc_one_api.hpp"

#include "tests/integration/scratch_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <string>

#include <unistd.h>

namespace fs = std::filesystem;
using oneds::adapters::oned::server_cipher;
using oneds::adapters::oned::sha256_hex;
using oneds::ports::error_kind;

namespace {

// Password with a ':' and a blank: the file splits at the first ':' only.
const std::string k_password = "pa:ss w0rd";
const std::string k_sha = "6816766b847c88d8e38791daed562b56801e60b0b21148e15417dd7bdc22dc85";

void require_no_secret(const std::string &text) {
    BOOST_TEST(text.find(k_password) == std::string::npos, text);
    BOOST_TEST(text.find("w0rd") == std::string::npos, text);
    BOOST_TEST(text.find(k_sha.substr(0, 32)) == std::string::npos, text);
}

}  // namespace

BOOST_AUTO_TEST_CASE(sha256_hex_is_what_oned_stores) { BOOST_TEST(sha256_hex(k_password) == k_sha); }

BOOST_AUTO_TEST_CASE(the_session_matches_the_openssl_vectors) {
    const auto c = server_cipher::from_password("serveradmin", k_password);
    BOOST_TEST(c.server_user() == "serveradmin");
    // One block of plain text (28 bytes, padded to 32).
    BOOST_TEST(c.session_for("alice", 1700000000) == "serveradmin:alice:glY/h4GqflJpmlgFqcHkM1vV642OVRmDg+OMBg7Bles=");
    // Three blocks, another password.
    const auto other = server_cipher::from_password("serveradmin", "oneadmin-long-password-0123456789");
    BOOST_TEST(other.session_for("bob-the-builder", 4102444800) ==
               "serveradmin:bob-the-builder:Ml2I7btk5PHPhIo/eED7RquDZFObUtugklVC0XOJs85sSY6AnxLqtJtIvvNOIrEc");
}

BOOST_AUTO_TEST_CASE(the_file_splits_at_the_first_colon_and_drops_trailing_blanks) {
    oneds::test::scratch_dir dir;
    const auto file = dir.write("onegate_auth", "serveradmin:" + k_password + " \t\r\n\n");
    auto c = server_cipher::from_file(file);
    BOOST_TEST_REQUIRE(c.has_value(), (c ? std::string() : c.err().message));
    BOOST_TEST(c->server_user() == "serveradmin");
    BOOST_TEST(c->session_for("alice", 1700000000) == "serveradmin:alice:glY/h4GqflJpmlgFqcHkM1vV642OVRmDg+OMBg7Bles=");
}

// A second line (a note, a stray key) is not part of the password: OpenNebula's
// client takes the rest of the first line.
BOOST_AUTO_TEST_CASE(the_password_is_the_rest_of_the_first_line) {
    oneds::test::scratch_dir dir;
    const auto file = dir.write("onegate_auth", "serveradmin:" + k_password + "\r\n# rotated 2026-11\n");
    auto c = server_cipher::from_file(file);
    BOOST_TEST_REQUIRE(c.has_value(), (c ? std::string() : c.err().message));
    BOOST_TEST(c->session_for("alice", 1700000000) == "serveradmin:alice:glY/h4GqflJpmlgFqcHkM1vV642OVRmDg+OMBg7Bles=");
}

BOOST_AUTO_TEST_CASE(a_bad_file_is_a_clear_error_without_its_content) {
    oneds::test::scratch_dir dir;
    struct bad {
        std::string name;
        std::string content;  // "" with dir_ = a directory
        error_kind kind;
        std::string problem;
    };
    const bad cases[] = {
        {"empty", "\n \n", error_kind::invalid, " is empty"},
        {"nocolon", "serveradmin w0rd\n", error_kind::invalid, "is malformed (no ':' between user and password)"},
        {"nouser", ":" + k_password + "\n", error_kind::invalid, "is malformed (no user before ':')"},
        {"nopassword", "serveradmin:\n", error_kind::invalid, "is malformed (no password after ':')"},
    };
    for (const auto &b : cases) {
        BOOST_TEST_CONTEXT(b.name) {
            const auto file = dir.write(b.name, b.content);
            auto c = server_cipher::from_file(file);
            BOOST_TEST_REQUIRE(!c.has_value());
            BOOST_TEST((c.err().kind == b.kind));
            const auto &m = c.err().message;
            BOOST_TEST(m.starts_with("oned server_cipher auth file " + file + " "), m);
            BOOST_TEST(m.find(b.problem) != std::string::npos, m);
            BOOST_TEST(m.find("serveradmin") != std::string::npos, "the fix names oned's server_cipher user: " << m);
            BOOST_TEST(m.find("mode 600") != std::string::npos, m);
            require_no_secret(m);
        }
    }
    // Missing; behind a file (unreadable whoever runs the test); a directory.
    const auto missing = dir.file("absent");
    auto c = server_cipher::from_file(missing);
    BOOST_TEST_REQUIRE(!c.has_value());
    BOOST_TEST((c.err().kind == error_kind::not_found));
    BOOST_TEST(c.err().message.starts_with("oned server_cipher auth file " + missing + " does not exist: "),
               c.err().message);
    const auto blocker = dir.write("plain", "x");
    c = server_cipher::from_file(blocker + "/onegate_auth");
    BOOST_TEST_REQUIRE(!c.has_value());
    BOOST_TEST((c.err().kind == error_kind::permission), c.err().message);
    BOOST_TEST(c.err().message.find(blocker + "/onegate_auth cannot be reached") != std::string::npos, c.err().message);
    c = server_cipher::from_file(dir.path());
    BOOST_TEST_REQUIRE(!c.has_value());
    BOOST_TEST(c.err().message.find("is a directory") != std::string::npos, c.err().message);
    // Unreadable by mode: root reads anything, so only checked for others.
    if (::geteuid() != 0) {
        const auto closed = dir.write("closed", "serveradmin:" + k_password + "\n");
        fs::permissions(closed, fs::perms::none);
        c = server_cipher::from_file(closed);
        BOOST_TEST_REQUIRE(!c.has_value());
        BOOST_TEST((c.err().kind == error_kind::permission));
        BOOST_TEST(c.err().message.find(closed + " cannot be read (") != std::string::npos, c.err().message);
        require_no_secret(c.err().message);
    }
}

BOOST_AUTO_TEST_CASE(the_file_is_found_as_documented) {
    using oneds::adapters::oned::environment;
    using oneds::adapters::oned::xmlrpc_one_api;
    environment env;
    env.system_one_dir = "/srv/one/.one";
    BOOST_TEST(xmlrpc_one_api::resolve_cipher_auth_file("", env) == fs::path("/srv/one/.one/onegate_auth"));
    env.one_cipher_auth = "/etc/cipher";
    BOOST_TEST(xmlrpc_one_api::resolve_cipher_auth_file("", env) == fs::path("/etc/cipher"));
    BOOST_TEST(xmlrpc_one_api::resolve_cipher_auth_file(" /explicit ", env) == fs::path("/explicit"));
    env.one_cipher_auth = "";
    BOOST_TEST(xmlrpc_one_api::resolve_cipher_auth_file("", env) == fs::path("/srv/one/.one/onegate_auth"));
}
