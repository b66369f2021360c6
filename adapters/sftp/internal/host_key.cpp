#include "adapters/sftp/internal/host_key.hpp"

#include "adapters/sftp/internal/io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <array>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

namespace oneds::adapters::sftp::internal {

namespace fs = std::filesystem;
using ports::error;
using ports::error_kind;
using sshconfig::host_key_policy;

namespace {

int known_host_key_bits(int hostkey_type) {
    switch (hostkey_type) {
        case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
        case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
        case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
        default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
    }
}

std::string base64(const char *data, std::size_t size) {
    std::string out(4 * ((size + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                                  reinterpret_cast<const unsigned char *>(data), static_cast<int>(size));
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
}

std::string file_list(const std::vector<fs::path> &files) {
    if (files.empty()) return "no known_hosts file (UserKnownHostsFile none)";
    std::string out;
    for (const auto &file : files) {
        if (!out.empty()) out += ", ";
        out += file.string();
        std::error_code ec;
        if (!fs::exists(file, ec)) out += " (missing)";
    }
    return out;
}

// What the files hold that libssh2 can use, plus the @revoked keys, which
// libssh2's own reader cannot represent (and on which its readfile would
// stop reading the rest of the file).
struct loaded_hosts {
    knownhosts_ptr hosts;
    std::vector<std::string> revoked_keys;  // base64 blobs
};

ports::result<loaded_hosts> load(LIBSSH2_SESSION *session, const std::vector<fs::path> &files) {
    loaded_hosts out{knownhosts_ptr(libssh2_knownhost_init(session)), {}};
    if (!out.hosts) return error{error_kind::io, "libssh2 could not allocate a known hosts collection"};
    for (const auto &file : files) {
        std::ifstream in(file);
        if (!in) continue;  // like ssh: a missing known_hosts file holds no keys
        for (std::string line; std::getline(in, line);) {
            const auto first = line.find_first_not_of(" \t");
            if (first == std::string::npos || line[first] == '#') continue;
            if (line[first] == '@') {
                std::istringstream words(line.substr(first));
                std::string marker;
                std::string hosts;
                std::string type;
                std::string key;
                if (words >> marker >> hosts >> type >> key && marker == "@revoked") out.revoked_keys.push_back(key);
                continue;  // @cert-authority: no certificates here
            }
            // Lines libssh2 cannot parse (key types it does not know) are
            // skipped one by one; they cannot vouch for this server anyway.
            (void)libssh2_knownhost_readline(out.hosts.get(), line.c_str() + first, line.size() - first,
                                             LIBSSH2_KNOWNHOST_FILE_OPENSSH);
        }
    }
    return out;
}

// Appends the accepted key to the first known_hosts file, as ssh does for
// accept-new, so that a later change of that key is refused.
ports::status remember(LIBSSH2_KNOWNHOSTS *hosts, const std::string &name, const char *key, std::size_t key_len,
                       int typemask, const fs::path &file) {
    libssh2_knownhost *entry = nullptr;
    if (libssh2_knownhost_addc(hosts, name.c_str(), nullptr, key, key_len, nullptr, 0, typemask, &entry) != 0 ||
        entry == nullptr)
        return error{error_kind::io, "cannot add the host key of " + name + " to the known hosts collection"};
    std::array<char, 8192> line{};
    std::size_t length = 0;
    if (libssh2_knownhost_writeline(hosts, entry, line.data(), line.size(), &length, LIBSSH2_KNOWNHOST_FILE_OPENSSH) !=
        0)
        return error{error_kind::io, "cannot format the host key of " + name};
    const fs::path dir = file.parent_path();
    if (!dir.empty()) ::mkdir(dir.c_str(), 0700);  // ~/.ssh may not exist yet; failure shows at open
    const int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return error{error_kind::io, "cannot record the host key of " + name + " in " + file.string() + ": " +
                                         std::generic_category().message(errno)};
    const unique_fd owned(fd);
    // One write with O_APPEND: concurrent writers do not interleave lines.
    if (::write(owned.get(), line.data(), length) != static_cast<ssize_t>(length))
        return error{error_kind::io, "cannot record the host key of " + name + " in " + file.string()};
    return ports::ok();
}

}  // namespace

std::string known_hosts_name(const std::string &hostname, std::uint16_t port) {
    if (port == 22) return hostname;
    return "[" + hostname + "]:" + std::to_string(port);
}

ports::status check_host_key(LIBSSH2_SESSION *session, const sshconfig::host_settings &settings) {
    if (settings.host_key == host_key_policy::accept_any) return ports::ok();
    std::size_t key_len = 0;
    int key_type = LIBSSH2_HOSTKEY_TYPE_UNKNOWN;
    const char *key = libssh2_session_hostkey(session, &key_len, &key_type);
    // HostKeyAlias replaces the host (and port) in the known_hosts lookup, as in ssh.
    const std::string name =
        settings.host_key_alias.empty() ? known_hosts_name(settings.hostname, settings.port) : settings.host_key_alias;
    const std::string server = name + (settings.host != settings.hostname ? " (" + settings.host + ")" : "");
    if (key == nullptr || key_len == 0) return error{error_kind::host_key, "no host key received from " + server};

    auto loaded = load(session, settings.known_hosts_files);
    if (!loaded) return loaded.err();
    const std::string key_text = base64(key, key_len);
    for (const auto &revoked : loaded->revoked_keys) {
        if (revoked == key_text)
            return error{error_kind::host_key, "the host key of " + server + " is marked @revoked in " +
                                                   file_list(settings.known_hosts_files)};
    }

    const int typemask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | known_host_key_bits(key_type);
    const int rc = libssh2_knownhost_check(loaded->hosts.get(), name.c_str(), key, key_len, typemask, nullptr);
    switch (rc) {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH: return ports::ok();
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
            return error{error_kind::host_key,
                         "the host key of " + server + " does not match the one recorded in " +
                             file_list(settings.known_hosts_files) +
                             ": refusing to connect (someone may be intercepting the connection; if the key was "
                             "changed on purpose, replace the old entry)"};
        case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
            if (settings.host_key == host_key_policy::accept_new) {
                // As ssh: a key that cannot be recorded (read-only home) still
                // lets this connection through; the next one sees it as new again.
                if (!settings.known_hosts_files.empty())
                    (void)remember(loaded->hosts.get(), name, key, key_len, typemask,
                                   settings.known_hosts_files.front());
                return ports::ok();
            }
            return error{error_kind::host_key,
                         "the host key of " + server + " is not known: checked " +
                             file_list(settings.known_hosts_files) + " (add it, e.g. from ssh-keyscan -p " +
                             std::to_string(settings.port) + " " + settings.hostname +
                             " after checking its fingerprint, or set StrictHostKeyChecking accept-new)"};
        default:
            return error{error_kind::io, "cannot check the host key of " + server + ": " + last_error_text(session)};
    }
}

}  // namespace oneds::adapters::sftp::internal
