// Endpoint and credential resolution, in Ruby OCA's order
// (docs/oned-protocol.md#endpoint-and-credentials).
#include "adapters/oned/xmlrpc_one_api.hpp"

#include "common/strings.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <system_error>

namespace oneds::adapters::oned {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> getenv_str(const char *name) {
    if (const char *v = std::getenv(name)) return std::string(v);
    return std::nullopt;
}

enum class read_status { ok, missing, unreadable };

// The first line of a file, without its line ending. Never reports the
// content, only whether it could be read.
read_status read_first_line(const fs::path &path, std::string &line) {
    std::error_code ec;
    if (!fs::exists(path, ec))
        return ec && ec != std::errc::no_such_file_or_directory ? read_status::unreadable : read_status::missing;
    if (fs::is_directory(path, ec)) return read_status::unreadable;
    std::ifstream in(path, std::ios::binary);
    if (!in) return read_status::unreadable;
    std::getline(in, line);
    if (in.bad()) return read_status::unreadable;
    return read_status::ok;
}

std::string rstrip(std::string s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n' ||
                          s.back() == '\v' || s.back() == '\f'))
        s.pop_back();
    return s;
}

// One credential file: the session, or an error naming the file.
ports::result<std::string> session_from(const fs::path &path) {
    std::string line;
    switch (read_first_line(path, line)) {
        case read_status::missing:
            return ports::error{ports::error_kind::not_found, "oned auth file " + path.string() + " does not exist", 0};
        case read_status::unreadable:
            return ports::error{ports::error_kind::permission, "oned auth file " + path.string() + " cannot be read",
                                0};
        case read_status::ok: break;
    }
    line = rstrip(std::move(line));
    if (line.empty())
        return ports::error{ports::error_kind::invalid, "oned auth file " + path.string() + " is empty", 0};
    if (line.find(':') == std::string::npos)
        return ports::error{ports::error_kind::invalid,
                            "oned auth file " + path.string() + " is malformed (expected user:password)", 0};
    return line;
}

}  // namespace

environment environment::from_process() {
    environment env;
    env.home = getenv_str("HOME");
    env.one_xmlrpc = getenv_str("ONE_XMLRPC");
    env.one_auth = getenv_str("ONE_AUTH");
    env.one_cipher_auth = getenv_str("ONE_CIPHER_AUTH");
    return env;
}

std::string xmlrpc_one_api::resolve_endpoint(const std::string &explicit_endpoint, const environment &env) {
    if (auto v = common::trim(explicit_endpoint); !v.empty()) return std::string(v);
    if (env.one_xmlrpc)
        if (auto v = common::trim(*env.one_xmlrpc); !v.empty()) return std::string(v);
    auto from_file = [](const fs::path &path) -> std::string {
        std::string line;
        if (read_first_line(path, line) != read_status::ok) return {};
        return std::string(common::trim(line));
    };
    if (env.home && !env.home->empty())
        if (auto v = from_file(fs::path(*env.home) / ".one" / "one_endpoint"); !v.empty()) return v;
    if (auto v = from_file(env.system_one_dir / "one_endpoint"); !v.empty()) return v;
    return default_endpoint;
}

ports::result<std::string> xmlrpc_one_api::resolve_session(const std::string &explicit_auth_file,
                                                           const environment &env) {
    // A file the admin named must be used or reported, never silently
    // replaced by another identity.
    if (!explicit_auth_file.empty()) return session_from(explicit_auth_file);
    if (env.one_auth && !env.one_auth->empty()) return session_from(*env.one_auth);

    std::vector<fs::path> defaults;
    if (env.home && !env.home->empty()) defaults.push_back(fs::path(*env.home) / ".one" / "one_auth");
    defaults.push_back(env.system_one_dir / "one_auth");
    std::string tried;
    for (const auto &path : defaults) {
        auto session = session_from(path);
        if (session || session.err().kind != ports::error_kind::not_found) return session;
        tried += (tried.empty() ? "" : ", ") + path.string();
    }
    return ports::error{ports::error_kind::not_found,
                        "no oned credentials: set oned_auth_file or $ONE_AUTH (looked in " + tried + ")", 0};
}

// A deliberate difference: the stock restore always sets $ONE_CIPHER_AUTH to
// onegate_auth before it reads it; here a setting or the variable can name
// another file (a deployment that keeps the key elsewhere), and onegate_auth
// is only the default.
std::filesystem::path xmlrpc_one_api::resolve_cipher_auth_file(const std::string &explicit_file,
                                                               const environment &env) {
    if (auto v = common::trim(explicit_file); !v.empty()) return std::string(v);
    if (env.one_cipher_auth)
        if (auto v = common::trim(*env.one_cipher_auth); !v.empty()) return std::string(v);
    return env.system_one_dir / "onegate_auth";
}

}  // namespace oneds::adapters::oned
