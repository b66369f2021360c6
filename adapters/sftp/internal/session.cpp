#include "adapters/sftp/internal/session.hpp"

#include "adapters/sftp/internal/host_key.hpp"
#include "adapters/sftp/internal/io.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <system_error>
#include <vector>

namespace oneds::adapters::sftp::internal {

namespace fs = std::filesystem;
using ports::error;
using ports::error_kind;
using std::chrono::milliseconds;

namespace {

std::string seconds_text(milliseconds timeout) {
    std::ostringstream out;
    out << static_cast<double>(timeout.count()) / 1000.0 << " s";
    return out.str();
}

std::string errno_text(int code) { return std::generic_category().message(code); }

// TCP connection with a deadline over every address of the name. Name
// resolution itself (getaddrinfo) cannot be bounded; for a backup server it is
// an /etc/hosts entry or a local resolver answer.
ports::result<unique_fd> connect_tcp(const std::string &hostname, std::uint16_t port, milliseconds timeout,
                                     const std::stop_token &stop) {
    const std::string where = hostname + ":" + std::to_string(port);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo *found = nullptr;
    const std::string service = std::to_string(port);
    const int gai = ::getaddrinfo(hostname.c_str(), service.c_str(), &hints, &found);
    if (gai != 0) return error{error_kind::unreachable, "cannot resolve " + hostname + ": " + ::gai_strerror(gai)};
    const std::unique_ptr<addrinfo, void (*)(addrinfo *)> owned(found, ::freeaddrinfo);

    const auto deadline = clock_type::now() + timeout;
    std::string last_failure = "no address";
    for (const addrinfo *ai = found; ai != nullptr; ai = ai->ai_next) {
        unique_fd sock(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
        if (!sock) {
            last_failure = errno_text(errno);
            continue;
        }
        if (::connect(sock.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                last_failure = errno_text(errno);
                continue;
            }
            int ready = 0;
            for (;;) {
                if (stop.stop_requested())
                    return error{error_kind::cancelled, "connecting to " + where + ": cancelled"};
                const auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_type::now());
                if (left.count() <= 0) break;
                pollfd pfd{sock.get(), POLLOUT, 0};
                ready = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count() + 1, stop_poll.count())));
                if (ready > 0 || (ready < 0 && errno != EINTR)) break;
            }
            if (ready <= 0)
                return error{error_kind::unreachable,
                             "cannot connect to " + where + ": no answer within " + seconds_text(timeout)};
            int so_error = 0;
            socklen_t len = sizeof so_error;
            if (::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
            if (so_error != 0) {
                last_failure = errno_text(so_error);
                continue;
            }
        }
        // SFTP is request/response with small packets.
        const int one = 1;
        ::setsockopt(sock.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return sock;
    }
    return error{error_kind::unreachable, "cannot connect to " + where + ": " + last_failure};
}

// The key blob of an OpenSSH public key file ("type base64 comment"), empty
// when the file is missing or unreadable. Never the private key.
std::string public_key_blob(const fs::path &pub_file) {
    std::ifstream in(pub_file);
    std::string type;
    std::string text;
    if (!(in >> type >> text) || text.empty()) return {};
    std::string out(3 * ((text.size() + 3) / 4), '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                                  reinterpret_cast<const unsigned char *>(text.data()), static_cast<int>(text.size()));
    if (n < 0) return {};
    // EVP_DecodeBlock counts the padding as zero bytes.
    std::size_t size = static_cast<std::size_t>(n);
    for (auto it = text.rbegin(); it != text.rend() && *it == '=' && size > 0; ++it) --size;
    out.resize(size);
    return out;
}

fs::path public_key_path(const fs::path &identity) { return fs::path(identity.string() + ".pub"); }

struct auth_outcome {
    bool authenticated = false;
    int refused = 0;  // keys the server said no to
    std::vector<std::string> tried;
    std::vector<std::string> missing;
};

std::string join(const std::vector<std::string> &items) {
    std::string out;
    for (const auto &item : items) {
        if (!out.empty()) out += ", ";
        out += item;
    }
    return out;
}

// True once the server has closed its side (waiting up to wait_ms for it).
// libssh2 reports a disconnect that arrives while it waits for an
// authentication answer as just another refusal, so the socket is asked.
bool connection_closed(int fd, int wait_ms = 0) {
    pollfd pfd{fd, POLLRDHUP, 0};
    return ::poll(&pfd, 1, wait_ms) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

// A connection that ends while keys are being offered. After refusals it is
// sshd's MaxAuthTries at work ("Too many authentication failures"), which is
// a refusal, not a network problem.
error lost_during_auth(bool timed_out, LIBSSH2_SESSION *ssh, const auth_outcome &outcome, const std::string &peer) {
    if (timed_out) return error{error_kind::unreachable, "public key authentication as " + peer + " timed out"};
    if (outcome.refused > 0)
        return error{
            error_kind::permission,
            "public key authentication as " + peer + " failed: the server closed the connection after " +
                std::to_string(outcome.refused) +
                " refused keys (too many offered? IdentitiesOnly yes limits them); tried: " + join(outcome.tried)};
    return error{error_kind::unreachable,
                 "connection to " + peer + " lost during authentication: " + last_error_text(ssh)};
}

// What one key's attempt (rc) means: nullopt to go on with the next key,
// else how authentication ends: success, cancelled, or the connection lost
// (the agent's attempts are noted as `lost_note` then).
std::optional<ports::status> judge_attempt(int rc, LIBSSH2_SESSION *ssh, int fd, const std::string &peer,
                                           auth_outcome &outcome, const std::string &lost_note = {}) {
    if (rc == 0) {
        outcome.authenticated = true;
        return ports::ok();
    }
    if (!is_connection_error(rc)) ++outcome.refused;
    if (rc == stopped) return ports::status(error{error_kind::cancelled, "authentication as " + peer + ": cancelled"});
    if (rc == deadline_passed || is_connection_error(rc) || connection_closed(fd)) {
        if (!lost_note.empty()) outcome.tried.push_back(lost_note);
        return ports::status(lost_during_auth(rc == deadline_passed, ssh, outcome, peer));
    }
    return std::nullopt;
}

// Fails only when the connection broke; a refused key is a normal outcome.
ports::status try_agent(LIBSSH2_SESSION *ssh, int fd, const sshconfig::host_settings &settings, const limit &lim,
                        const std::string &peer, auth_outcome &outcome) {
    const char *sock = std::getenv("SSH_AUTH_SOCK");
    if (sock == nullptr || *sock == '\0') return ports::ok();
    const agent_ptr agent(libssh2_agent_init(ssh));
    // The agent talks over its own local socket, in blocking mode.
    if (!agent || libssh2_agent_connect(agent.get()) != 0 || libssh2_agent_list_identities(agent.get()) != 0) {
        outcome.tried.emplace_back("ssh-agent (not reachable)");
        return ports::ok();
    }
    // IdentitiesOnly: only agent keys that belong to a configured identity,
    // which is what lets a passphrase-protected key work through the agent.
    std::vector<std::string> allowed;
    if (settings.identities_only) {
        for (const auto &identity : settings.identity_files) {
            auto blob = public_key_blob(public_key_path(identity));
            if (!blob.empty()) allowed.push_back(std::move(blob));
        }
    }
    int offered = 0;
    libssh2_agent_publickey *identity = nullptr;
    libssh2_agent_publickey *previous = nullptr;
    while (libssh2_agent_get_identity(agent.get(), &identity, previous) == 0) {
        previous = identity;
        if (settings.identities_only) {
            const std::string blob(reinterpret_cast<const char *>(identity->blob), identity->blob_len);
            if (std::find(allowed.begin(), allowed.end(), blob) == allowed.end()) continue;
        }
        ++offered;
        const int rc =
            drive(ssh, fd, lim, [&] { return libssh2_agent_userauth(agent.get(), settings.user.c_str(), identity); });
        if (auto end = judge_attempt(rc, ssh, fd, peer, outcome,
                                     "ssh-agent (" + std::to_string(offered) + (offered == 1 ? " key)" : " keys)")))
            return *end;
    }
    outcome.tried.push_back("ssh-agent (" + std::to_string(offered) + (offered == 1 ? " key)" : " keys)"));
    return ports::ok();
}

ports::status try_identity_files(LIBSSH2_SESSION *ssh, int fd, const sshconfig::host_settings &settings,
                                 const limit &lim, const std::string &peer, auth_outcome &outcome) {
    for (const auto &identity : settings.identity_files) {
        std::error_code ec;
        if (!fs::is_regular_file(identity, ec)) {
            outcome.missing.push_back(identity.string());
            continue;
        }
        const fs::path pub = public_key_path(identity);
        const bool have_pub = fs::is_regular_file(pub, ec);
        const std::string private_key = identity.string();
        const std::string public_key = pub.string();
        // No passphrase: an encrypted key fails here and belongs in the agent.
        const int rc = drive(ssh, fd, lim, [&] {
            return libssh2_userauth_publickey_fromfile_ex(
                ssh, settings.user.c_str(), static_cast<unsigned>(settings.user.size()),
                have_pub ? public_key.c_str() : nullptr, private_key.c_str(), nullptr);
        });
        outcome.tried.push_back(private_key);
        if (auto end = judge_attempt(rc, ssh, fd, peer, outcome)) return *end;
    }
    return ports::ok();
}

ports::status authenticate(LIBSSH2_SESSION *ssh, int fd, const sshconfig::host_settings &settings, milliseconds timeout,
                           const std::string &peer, const std::stop_token &stop) {
    const limit lim{clock_type::now() + timeout, stop};
    auth_outcome outcome;
    if (auto agent = try_agent(ssh, fd, settings, lim, peer, outcome); !agent) return agent.err();
    if (!outcome.authenticated) {
        if (auto files = try_identity_files(ssh, fd, settings, lim, peer, outcome); !files) return files.err();
    }
    if (outcome.authenticated && libssh2_userauth_authenticated(ssh) != 0) return ports::ok();
    // sshd sends its "too many authentication failures" disconnect a moment
    // before it closes the socket; a short wait on this failure path tells a
    // server that hung up from one that merely said no to every key.
    constexpr int hang_up_wait_ms = 250;
    if (outcome.refused > 0 && connection_closed(fd, hang_up_wait_ms))
        return lost_during_auth(false, ssh, outcome, peer);
    std::string message = "public key authentication as " + peer +
                          " failed; tried: " + (outcome.tried.empty() ? std::string("no key") : join(outcome.tried));
    if (!outcome.missing.empty()) message += "; not found: " + join(outcome.missing);
    return error{error_kind::permission, message};
}

}  // namespace

session::session(std::unique_ptr<proxy_process> proxy, unique_fd socket, session_ptr ssh, sftp_ptr sftp,
                 std::string peer, milliseconds timeout)
    : proxy_(std::move(proxy)),
      socket_(std::move(socket)),
      ssh_(std::move(ssh)),
      sftp_(std::move(sftp)),
      peer_(std::move(peer)),
      timeout_(timeout) {}

session::~session() = default;

ports::result<std::unique_ptr<session>> session::create(const sshconfig::host_settings &settings, milliseconds timeout,
                                                        const std::stop_token &stop) {
    const std::string peer = settings.user + "@" + known_hosts_name(settings.hostname, settings.port) +
                             (settings.host != settings.hostname ? " (" + settings.host + ")" : "");
    if (!ensure_libssh2_initialised()) return error{error_kind::io, "libssh2 failed to initialise"};

    // Through a ProxyJump or ProxyCommand as ssh would go, else straight.
    std::unique_ptr<proxy_process> proxy;
    unique_fd socket;
    if (!settings.proxy_jump.empty() || !settings.proxy_command.empty()) {
        auto started = proxy_process::start(settings, &socket);
        if (!started) return started.err();
        proxy = std::move(*started);
    } else {
        auto connected = connect_tcp(settings.hostname, settings.port, timeout, stop);
        if (!connected) return connected.err();
        socket = std::move(*connected);
    }
    const int fd = socket.get();

    // Every block libssh2 allocates for the session is recorded, and freed
    // with it (alloc_ledger.hpp).
    auto ledger = std::make_unique<alloc_ledger>();
    LIBSSH2_SESSION *raw_ssh = libssh2_session_init_ex(&alloc_ledger::allocate, &alloc_ledger::deallocate,
                                                       &alloc_ledger::reallocate, ledger.get());
    if (raw_ssh == nullptr) return error{error_kind::io, "libssh2 could not allocate a session"};
    session_ptr ssh(raw_ssh, session_deleter{std::move(ledger)});
    libssh2_session_set_blocking(ssh.get(), 0);

    const auto lost = [&](int rc, const std::string &step) {
        if (rc == stopped) return error{error_kind::cancelled, step + " with " + peer + ": cancelled"};
        // Through a proxy, its own words say why the connection went.
        std::string why = rc == deadline_passed ? "timed out after " + seconds_text(timeout)
                                                : "failed: " + last_error_text(ssh.get());
        if (proxy)
            if (auto said = proxy->stderr_text(); !said.empty()) why += " (" + proxy->describe() + ": " + said + ")";
        return error{error_kind::unreachable, step + " with " + peer + " " + why};
    };

    int rc = drive(ssh.get(), fd, limit{clock_type::now() + timeout, stop},
                   [&] { return libssh2_session_handshake(ssh.get(), fd); });
    if (rc != 0) return lost(rc, "SSH handshake");

    if (auto checked = check_host_key(ssh.get(), settings); !checked) return checked.err();

    if (auto authenticated = authenticate(ssh.get(), fd, settings, timeout, peer, stop); !authenticated)
        return authenticated.err();

    LIBSSH2_SFTP *raw_sftp = nullptr;
    rc = drive(ssh.get(), fd, limit{clock_type::now() + timeout, stop}, [&] {
        raw_sftp = libssh2_sftp_init(ssh.get());
        return raw_sftp != nullptr ? 0 : libssh2_session_last_errno(ssh.get());
    });
    if (raw_sftp == nullptr) {
        if (rc == LIBSSH2_ERROR_CHANNEL_FAILURE || rc == LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED)
            return error{error_kind::unsupported,
                         "the SSH server of " + peer + " refused the sftp subsystem: " + last_error_text(ssh.get())};
        return lost(rc, "starting SFTP");
    }
    sftp_ptr sftp(raw_sftp, sftp_deleter{ssh.get()});

    return std::unique_ptr<session>(
        new session(std::move(proxy), std::move(socket), std::move(ssh), std::move(sftp), peer, timeout));
}

template <typename Call>
int session::run(const std::stop_token &stop, Call &&call) {
    return drive(ssh_.get(), socket_.get(), limit{clock_type::now() + timeout_, stop}, std::forward<Call>(call));
}

ports::error session::failure(int rc, const std::string &what, const std::string &path) {
    const std::string subject = what + " " + path + " on " + peer_;
    if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL) {
        // The server answered: the connection is fine, the request was refused.
        const unsigned long code = libssh2_sftp_last_error(sftp_.get());
        switch (code) {
            case LIBSSH2_FX_NO_SUCH_FILE:
            case LIBSSH2_FX_NO_SUCH_PATH: return error{error_kind::not_found, subject + ": no such file or directory"};
            case LIBSSH2_FX_PERMISSION_DENIED:
            case LIBSSH2_FX_WRITE_PROTECT: return error{error_kind::permission, subject + ": permission denied"};
            case LIBSSH2_FX_OP_UNSUPPORTED:
                return error{error_kind::unsupported, subject + ": the server does not support this operation"};
            case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
            case LIBSSH2_FX_QUOTA_EXCEEDED:
                return error{error_kind::io, subject + ": no space left (or quota exceeded)"};
            default: return error{error_kind::io, subject + ": SFTP status " + std::to_string(code)};
        }
    }
    if (rc == stopped) {
        // Stopped in the middle of a request: its answer may still come, so
        // the session is out of step and not used again.
        health_ = health::stopped;
        return error{error_kind::cancelled, subject + ": cancelled"};
    }
    if (rc == deadline_passed) {
        health_ = health::timed_out;
        return error{error_kind::unreachable, subject + ": no answer within " + seconds_text(timeout_)};
    }
    // Anything else leaves libssh2's state unknown; lost or not, this session
    // is not used again.
    health_ = health::lost;
    const std::string text = last_error_text(ssh_.get());
    return error{is_connection_error(rc) ? error_kind::unreachable : error_kind::io,
                 subject + ": connection lost (" + (text.empty() ? "libssh2 error " + std::to_string(rc) : text) + ")"};
}

ports::result<ports::file_info> session::stat(const std::string &path, const std::stop_token &stop) {
    LIBSSH2_SFTP_ATTRIBUTES attrs{};
    const int rc = run(stop, [&] {
        return libssh2_sftp_stat_ex(sftp_.get(), path.c_str(), static_cast<unsigned>(path.size()), LIBSSH2_SFTP_STAT,
                                    &attrs);
    });
    ports::file_info info;
    if (rc != 0) {
        auto failed = failure(rc, "stat", path);
        if (failed.kind == error_kind::not_found) return info;
        return failed;
    }
    info.exists = true;
    info.is_directory = (attrs.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) != 0 && LIBSSH2_SFTP_S_ISDIR(attrs.permissions);
    if ((attrs.flags & LIBSSH2_SFTP_ATTR_SIZE) != 0 && !info.is_directory) info.size = attrs.filesize;
    info.executable = (attrs.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) != 0 && LIBSSH2_SFTP_S_ISREG(attrs.permissions) &&
                      (attrs.permissions & 0111) != 0;
    return info;
}

ports::status session::make_directories(const std::string &path, const std::stop_token &stop) {
    // The prefixes of path, shortest first: "/a", "/a/b", "/a/b/c" (or
    // "a", "a/b" for a path relative to the login directory).
    if (path.empty()) return error{error_kind::invalid, "mkdir -p: empty path"};
    std::vector<std::string> prefixes;
    std::string current = path.front() == '/' ? "/" : "";
    std::istringstream parts(path);
    for (std::string part; std::getline(parts, part, '/');) {
        if (part.empty() || part == ".") continue;
        if (!current.empty() && current.back() != '/') current += '/';
        current += part;
        prefixes.push_back(current);
    }
    if (prefixes.empty()) return ports::ok();  // "/" or "." exist

    const auto not_a_directory = [&](const std::string &p) {
        return error{error_kind::invalid,
                     "cannot create directory " + path + " on " + peer_ + ": " + p + " exists and is not a directory"};
    };

    // Most calls find the directory there already: one round trip. Otherwise
    // walk up to the deepest existing ancestor and create downwards from it.
    std::size_t first_missing = prefixes.size();
    while (first_missing > 0) {
        auto found = stat(prefixes[first_missing - 1], stop);
        if (!found) return found.err();
        if (found->exists) {
            if (!found->is_directory) return not_a_directory(prefixes[first_missing - 1]);
            break;
        }
        --first_missing;
    }
    for (std::size_t i = first_missing; i < prefixes.size(); ++i) {
        const std::string &dir = prefixes[i];
        const int rc = run(stop, [&] {
            return libssh2_sftp_mkdir_ex(sftp_.get(), dir.c_str(), static_cast<unsigned>(dir.size()),
                                         LIBSSH2_SFTP_S_IRWXU | LIBSSH2_SFTP_S_IRWXG | LIBSSH2_SFTP_S_IRWXO);
        });
        if (rc == 0) continue;
        auto failed = failure(rc, "mkdir", dir);
        if (rc != LIBSSH2_ERROR_SFTP_PROTOCOL) return failed;
        // OpenSSH reports EEXIST as a generic failure: someone else may have
        // created it meanwhile, which is fine if it is a directory.
        auto found = stat(dir, stop);
        if (!found) return found.err();
        if (!found->exists) return failed;
        if (!found->is_directory) return not_a_directory(dir);
    }
    return ports::ok();
}

ports::result<ports::capacity_info> session::statvfs(const std::string &path, const std::stop_token &stop) {
    LIBSSH2_SFTP_STATVFS st{};
    const int rc = run(stop, [&] { return libssh2_sftp_statvfs(sftp_.get(), path.c_str(), path.size(), &st); });
    if (rc != 0) return failure(rc, "statvfs", path);
    // The same arithmetic as df and the local store.
    const std::uint64_t unit = st.f_frsize != 0 ? st.f_frsize : st.f_bsize;
    ports::capacity_info info;
    info.total_bytes = st.f_blocks * unit;
    info.free_bytes = st.f_bavail * unit;
    info.used_bytes = (st.f_blocks - st.f_bfree) * unit;
    info.read_only = (st.f_flag & LIBSSH2_SFTP_ST_RDONLY) != 0;
    return info;
}

ports::result<LIBSSH2_SFTP_HANDLE *> session::open(const std::string &path, unsigned long flags, long mode,
                                                   const std::stop_token &stop) {
    LIBSSH2_SFTP_HANDLE *handle = nullptr;
    const int rc = run(stop, [&] {
        handle = libssh2_sftp_open_ex(sftp_.get(), path.c_str(), static_cast<unsigned>(path.size()), flags, mode,
                                      LIBSSH2_SFTP_OPENFILE);
        return handle != nullptr ? 0 : libssh2_session_last_errno(ssh_.get());
    });
    if (handle == nullptr) return failure(rc == 0 ? LIBSSH2_ERROR_SFTP_PROTOCOL : rc, "open", path);
    return handle;
}

void session::close(LIBSSH2_SFTP_HANDLE *handle, const std::stop_token &stop) {
    if (health_ != health::good) return;  // freed with the session
    if (const int rc = run(stop, [&] { return libssh2_sftp_close_handle(handle); });
        rc != 0 && rc != LIBSSH2_ERROR_SFTP_PROTOCOL)
        (void)failure(rc, "close", "");
}

ports::status session::rename(const std::string &from, const std::string &to, const std::stop_token &stop) {
    const int rc = run(stop, [&] {
        return libssh2_sftp_rename_ex(sftp_.get(), from.c_str(), static_cast<unsigned>(from.size()), to.c_str(),
                                      static_cast<unsigned>(to.size()),
                                      LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE);
    });
    if (rc != 0) return failure(rc, "rename " + from + " to", to);
    return ports::ok();
}

ports::status session::remove(const std::string &path, const std::stop_token &stop) {
    const int rc = run(
        stop, [&] { return libssh2_sftp_unlink_ex(sftp_.get(), path.c_str(), static_cast<unsigned>(path.size())); });
    if (rc != 0) return failure(rc, "remove", path);
    return ports::ok();
}

ports::result<std::optional<std::string>> session::read_file(const std::string &path, std::size_t max,
                                                             const std::stop_token &stop) {
    auto opened = open(path, LIBSSH2_FXF_READ, 0, stop);
    if (!opened) {
        if (opened.err().kind == error_kind::not_found) return std::optional<std::string>();
        return opened.err();
    }
    std::string text;
    char buf[16384];
    while (text.size() < max) {
        const std::size_t want = std::min(sizeof buf, max - text.size());
        const int rc = run(stop, [&] { return static_cast<int>(libssh2_sftp_read(*opened, buf, want)); });
        if (rc < 0) {
            auto failed = failure(rc, "read", path);
            close(*opened, stop);
            return failed;
        }
        if (rc == 0) break;
        text.append(buf, static_cast<std::size_t>(rc));
    }
    close(*opened, stop);
    return std::optional<std::string>(std::move(text));
}

ports::result<std::optional<std::vector<ports::dir_entry>>> session::list_directory(const std::string &path,
                                                                                    const std::stop_token &stop) {
    using listing = std::optional<std::vector<ports::dir_entry>>;
    LIBSSH2_SFTP_HANDLE *handle = nullptr;
    const int rc = run(stop, [&] {
        handle = libssh2_sftp_open_ex(sftp_.get(), path.c_str(), static_cast<unsigned>(path.size()), 0, 0,
                                      LIBSSH2_SFTP_OPENDIR);
        return handle != nullptr ? 0 : libssh2_session_last_errno(ssh_.get());
    });
    if (handle == nullptr) {
        auto failed = failure(rc == 0 ? LIBSSH2_ERROR_SFTP_PROTOCOL : rc, "opendir", path);
        if (failed.kind == error_kind::not_found) return listing();
        return failed;
    }
    std::vector<ports::dir_entry> entries;
    char name[1024];
    for (;;) {
        LIBSSH2_SFTP_ATTRIBUTES attrs{};
        const int n = run(stop, [&] { return libssh2_sftp_readdir_ex(handle, name, sizeof name, nullptr, 0, &attrs); });
        if (n < 0) {
            auto failed = failure(n, "readdir", path);
            close(handle, stop);
            return failed;
        }
        if (n == 0) break;
        ports::dir_entry e;
        e.name.assign(name, static_cast<std::size_t>(n));
        if (e.name == "." || e.name == "..") continue;
        const bool has_mode = (attrs.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) != 0;
        e.is_directory = has_mode && LIBSSH2_SFTP_S_ISDIR(attrs.permissions);
        if ((attrs.flags & LIBSSH2_SFTP_ATTR_SIZE) != 0 && !e.is_directory) e.size = attrs.filesize;
        if ((attrs.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) != 0) e.mtime = static_cast<std::int64_t>(attrs.mtime);
        if ((attrs.flags & LIBSSH2_SFTP_ATTR_UIDGID) != 0) e.uid = static_cast<std::int64_t>(attrs.uid);
        entries.push_back(std::move(e));
    }
    close(handle, stop);
    if (health_ != health::good)
        return error{error_kind::unreachable, "readdir " + path + " on " + peer_ + ": connection lost"};
    return listing(std::move(entries));
}

ports::status session::put_file(const std::string &local_path, const std::string &path, unsigned mode,
                                const std::stop_token &stop) {
    unique_fd in(::open(local_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return error{error_kind::io, "cannot read " + local_path + ": " + std::strerror(errno)};
    std::random_device random;
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, ".oneds-%08x", random());
    const std::string temp = path + suffix;
    auto opened = open(temp, LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL, LIBSSH2_SFTP_S_IRWXU, stop);
    if (!opened) return opened.err();
    const auto give_up = [&](ports::error why) {
        close(*opened, stop);
        if (health_ == health::good) (void)remove(temp, stop);
        return why;
    };
    char buf[32768];
    for (;;) {
        const ssize_t got = ::read(in.get(), buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return give_up(error{error_kind::io, "cannot read " + local_path + ": " + std::strerror(errno)});
        if (got == 0) break;
        for (ssize_t done = 0; done < got;) {
            const int rc = run(stop, [&] {
                return static_cast<int>(libssh2_sftp_write(*opened, buf + done, static_cast<std::size_t>(got - done)));
            });
            if (rc < 0) return give_up(failure(rc, "write", temp));
            done += rc;
        }
    }
    LIBSSH2_SFTP_ATTRIBUTES attrs{};
    attrs.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
    attrs.permissions = mode;
    if (const int rc = run(stop, [&] { return libssh2_sftp_fsetstat(*opened, &attrs); }); rc != 0)
        return give_up(failure(rc, "chmod", temp));
    close(*opened, stop);
    if (health_ != health::good)
        return error{error_kind::unreachable, "write " + temp + " on " + peer_ + ": connection lost"};
    if (rename(temp, path, stop)) return ports::ok();
    // path exists (or the rename failed for another reason): move it aside first.
    const std::string old = temp + ".old";
    if (auto aside = rename(path, old, stop); !aside) {
        if (health_ == health::good) (void)remove(temp, stop);
        return aside;
    }
    if (auto placed = rename(temp, path, stop); !placed) {
        if (health_ == health::good) {
            (void)rename(old, path, stop);
            (void)remove(temp, stop);
        }
        return placed;
    }
    (void)remove(old, stop);
    return ports::ok();
}

void session::say_goodbye() noexcept {
    if (health_ != health::good) return;
    health_ = health::lost;  // nothing may use it after this
    // Closing the SFTP channel first: a channel close sent after the
    // disconnect would wait for an answer that never comes. Both steps run in
    // blocking mode bounded by make_freeable's timeout.
    sftp_.reset();
    libssh2_session_disconnect_ex(ssh_.get(), SSH_DISCONNECT_BY_APPLICATION, "closing", "");
}

void session::abandon() noexcept { ::shutdown(socket_.get(), SHUT_RDWR); }

}  // namespace oneds::adapters::sftp::internal
