// ports::one_api over oned's XML-RPC interface (docs/oned-protocol.md#the-oned-api),
// with xmlrpc-c's C++ client and its libcurl transport.
//
// Where it talks to and as whom are resolved the way OpenNebula's own
// clients do (Ruby OCA): see resolve_endpoint() and resolve_session().
//
// Every call has a deadline (default 30 s) and a limit on the size of the
// reply (default 64 MiB); both are per adapter. A call that misses the
// deadline is abandoned at the deadline, not at libcurl's next timer check;
// one whose stop token stops is abandoned within 100 ms (kind cancelled).
//
// Errors: oned's [false, message, code] becomes "<method>: <message> (code
// <n>)" with error::code = oned's code and kind permission (0x100, 0x200),
// not_found (0x400) or io; a transport failure (refused, deadline, HTTP
// status other than 200) is kind unreachable with code 0 and names the
// endpoint; an XML-RPC fault, a malformed or oversized reply is io. No
// message ever contains the session string or its password: every text that
// leaves the adapter, including xmlrpc-c's and libcurl's, is scrubbed first.
// The adapter does not log.
//
// Thread safety: call() may run on any number of threads at once. Each call
// builds its own transport (one libcurl handle and connection) and shares
// nothing mutable with other calls, so calls never wait for each other; oned
// closes idle connections anyway, so there is little to pool.
//
// Process-wide effect: xmlrpc-c checks every reply it parses against one
// process-global size limit (512 KiB by default, too small for a large
// image pool). create() raises that limit to this adapter's own limit when
// it is lower, and never lowers it; the adapter enforces its own limit
// itself, while the reply arrives.
#pragma once

#include "adapters/oned/server_cipher.hpp"
#include "plugin/ports/one_api.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace oneds::adapters::oned {

inline constexpr const char *default_endpoint = "http://localhost:2633/RPC2";
inline constexpr std::chrono::milliseconds default_timeout{30'000};
inline constexpr std::size_t default_max_response_bytes = std::size_t{64} << 20;
// How long a server_cipher login token is valid, as the stock restore makes it.
inline constexpr std::chrono::seconds login_token_validity{120};

// The parts of the process environment that endpoint and credential
// resolution read; tests build one with a fake HOME instead.
struct environment {
    std::optional<std::string> home;             // $HOME
    std::optional<std::string> one_xmlrpc;       // $ONE_XMLRPC
    std::optional<std::string> one_auth;         // $ONE_AUTH
    std::optional<std::string> one_cipher_auth;  // $ONE_CIPHER_AUTH
    // oneadmin's directory, the last place looked in.
    std::filesystem::path system_one_dir = "/var/lib/one/.one";

    static environment from_process();
};

struct client_options {
    std::string endpoint;  // http(s)://host:port/RPC2; a user:password@ in it is never shown
    std::string session;   // "user:password" (or "user:token"); never logged
    // Instead of session: every call gets a fresh server_cipher login token
    // for act_as, valid login_token_validity from the call's start.
    // cipher_file only names the source in messages.
    std::shared_ptr<const server_cipher> cipher;
    std::string act_as;
    std::string cipher_file;
    std::chrono::milliseconds timeout = default_timeout;
    std::size_t max_response_bytes = default_max_response_bytes;
};

class xmlrpc_one_api final : public ports::one_api {
public:
    // The first of: explicit_endpoint, $ONE_XMLRPC, the first line of
    // $HOME/.one/one_endpoint, the first line of <system_one_dir>/one_endpoint,
    // default_endpoint. Values are trimmed; an empty value or a missing or
    // unreadable file counts as absent.
    static std::string resolve_endpoint(const std::string &explicit_endpoint, const environment &env);

    // The session from the first of: explicit_auth_file, the file named by
    // $ONE_AUTH, $HOME/.one/one_auth, <system_one_dir>/one_auth. An explicit
    // file or one named by $ONE_AUTH must exist (as in Ruby OCA); the two
    // default places are skipped when missing. The first line is taken,
    // right-stripped, and must contain ':'. Errors name the file, never its
    // content: not_found (missing; or nothing found anywhere), permission
    // (unreadable), invalid (empty or no ':').
    static ports::result<std::string> resolve_session(const std::string &explicit_auth_file, const environment &env);

    // The server_cipher credentials file: explicit_file, else
    // $ONE_CIPHER_AUTH, else <system_one_dir>/onegate_auth (what the stock
    // restore uses). Not read here.
    static std::filesystem::path resolve_cipher_auth_file(const std::string &explicit_file, const environment &env);

    // Checks the options (an http:// or https:// endpoint, a session with ':'
    // or a cipher and a user to act as, a positive timeout and size limit);
    // kind invalid otherwise.
    static ports::result<std::unique_ptr<xmlrpc_one_api>> create(client_options options);

    ports::result<ports::rpc_result> call(const std::string &method, const std::vector<ports::rpc_value> &params,
                                          const std::stop_token &stop) override;
    // The endpoint without any user:password@ part.
    std::string describe() const override;

    std::chrono::milliseconds timeout() const noexcept { return options_.timeout; }
    std::size_t max_response_bytes() const noexcept { return options_.max_response_bytes; }

private:
    explicit xmlrpc_one_api(client_options options);

    ports::result<ports::rpc_result> call_unscrubbed(const std::string &method,
                                                     const std::vector<ports::rpc_value> &params,
                                                     const std::string &session, const std::stop_token &stop);

    client_options options_;
    std::string description_;
};

// The factory the plugin uses, with what the host passes it (see
// host/config.cpp plugin_config()): "host.oned_endpoint",
// "host.oned_auth_file" (both optional: resolution as above) and the
// plugin's own "oned_timeout" (seconds, decimals allowed, default 30) and
// "oned_max_response_bytes" (default 64 MiB). Bad values are kind invalid
// and name the key.
ports::result<std::unique_ptr<ports::one_api>> make_one_api(const std::map<std::string, std::string> &config);
ports::result<std::unique_ptr<ports::one_api>> make_one_api(const std::map<std::string, std::string> &config,
                                                            const environment &env);

// ports::one_api_as_user with server_cipher login tokens, as the stock restore
// logs in: as_user() reads the cipher auth file each time (so a changed file
// applies to the next restore), keeps only the derived key, and returns a
// client whose every call carries a fresh token for that user. Without
// oned_auth_file's credentials: only the cipher auth file is needed.
class cipher_login final : public ports::one_api_as_user {
public:
    cipher_login(client_options base, std::filesystem::path cipher_auth_file);
    ports::result<std::unique_ptr<ports::one_api>> as_user(const std::string &username) override;
    const std::filesystem::path &cipher_auth_file() const noexcept { return file_; }

private:
    client_options base_;
    std::filesystem::path file_;
};

// The factory the plugin uses: endpoint, oned_timeout and
// oned_max_response_bytes as make_one_api(), and "host.one_cipher_auth"
// (optional: resolve_cipher_auth_file()).
ports::result<std::unique_ptr<ports::one_api_as_user>> make_one_api_as_user(
    const std::map<std::string, std::string> &config);
ports::result<std::unique_ptr<ports::one_api_as_user>> make_one_api_as_user(
    const std::map<std::string, std::string> &config, const environment &env);

}  // namespace oneds::adapters::oned
