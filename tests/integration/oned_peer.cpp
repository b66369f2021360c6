#include "tests/integration/oned_peer.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <sstream>
#include <system_error>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace oneds::test {
namespace {

[[noreturn]] void throw_errno(const char *what) { throw std::system_error(errno, std::generic_category(), what); }

void close_fd(int &fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

std::vector<std::string> split_ws(std::string_view s) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) != 0) ++i;
        const std::size_t start = i;
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) == 0) ++i;
        if (i > start) out.emplace_back(s.substr(start, i - start));
    }
    return out;
}

std::optional<std::int64_t> to_int(std::string_view s) {
    std::int64_t v = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

// The rest of the line after the first n white-space separated tokens (and the
// single separator after the n-th).
std::string rest_after(std::string_view s, std::size_t n) {
    std::size_t i = 0;
    for (std::size_t t = 0; t < n; ++t) {
        while (i < s.size() && s[i] == ' ') ++i;
        while (i < s.size() && s[i] != ' ') ++i;
    }
    if (i < s.size() && s[i] == ' ') ++i;
    return std::string(s.substr(std::min(i, s.size())));
}

// The environment for the child, built before fork() because nothing but
// async-signal-safe calls may run between fork() and exec().
std::vector<std::string> child_environment(const std::map<std::string, std::string> &extra) {
    std::vector<std::string> env;
    for (char **e = environ; *e != nullptr; ++e) {
        const std::string_view entry(*e);
        const auto eq = entry.find('=');
        if (eq != std::string_view::npos && extra.contains(std::string(entry.substr(0, eq)))) continue;
        env.emplace_back(entry);
    }
    for (const auto &[k, v] : extra) env.push_back(k + "=" + v);
    return env;
}

}  // namespace

// ---- payloads -------------------------------------------------------------------

std::string base64_encode(std::string_view data) {
    std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                                  reinterpret_cast<const unsigned char *>(data.data()), static_cast<int>(data.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    for (char c : text)
        if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '+' && c != '/' && c != '=') return std::nullopt;
    std::string out(text.size() / 4 * 3 + 1, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                                  reinterpret_cast<const unsigned char *>(text.data()), static_cast<int>(text.size()));
    if (n < 0) return std::nullopt;
    // EVP_DecodeBlock counts the bytes the padding stands for.
    std::size_t len = static_cast<std::size_t>(n);
    if (!text.empty() && text.back() == '=') --len;
    if (text.size() >= 2 && text[text.size() - 2] == '=') --len;
    out.resize(len);
    return out;
}

std::string xml_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '&': out += "&amp;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string image_xml(int image_id, const std::string &ds_name, int ds_id) {
    std::ostringstream x;
    x << "<IMAGE><ID>" << image_id << "</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME>"
      << "<GNAME>oneadmin</GNAME><NAME>img-" << image_id << "</NAME>"
      << "<PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A></PERMISSIONS>"
      << "<TYPE>0</TYPE><DISK_TYPE>0</DISK_TYPE><PERSISTENT>0</PERSISTENT>"
      << "<REGTIME>1700000000</REGTIME><MODTIME>1700000000</MODTIME>"
      << "<SOURCE><![CDATA[]]></SOURCE><PATH><![CDATA[/tmp/a.qcow2]]></PATH>"
      << "<FORMAT><![CDATA[qcow2]]></FORMAT><FS/><SIZE>1024</SIZE><STATE>4</STATE>"
      << "<PREV_STATE>4</PREV_STATE><RUNNING_VMS>0</RUNNING_VMS><CLONING_OPS>0</CLONING_OPS>"
      << "<CLONING_ID>-1</CLONING_ID><TARGET_SNAPSHOT>-1</TARGET_SNAPSHOT>"
      << "<DATASTORE_ID>" << ds_id << "</DATASTORE_ID><DATASTORE>" << xml_escape(ds_name) << "</DATASTORE>"
      << "<VMS/><CLONES/><APP_CLONES/><TEMPLATE/><SNAPSHOTS/><BACKUP_INCREMENTS/></IMAGE>";
    return x.str();
}

std::string test_behaviour(const std::string &b) { return "<TEST_BEHAVIOUR>" + xml_escape(b) + "</TEST_BEHAVIOUR>"; }

std::string action_data_xml(const action_data &d) {
    std::ostringstream x;
    x << "<DS_DRIVER_ACTION_DATA>" << d.image << "<DATASTORE><ID>" << d.ds_id << "</ID>"
      << "<UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME>"
      << "<NAME>" << xml_escape(d.ds_name) << "</NAME>"
      << "<PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A></PERMISSIONS>"
      << "<DS_MAD><![CDATA[" << d.ds_mad << "]]></DS_MAD>"
      << "<TM_MAD><![CDATA[" << d.tm_mad << "]]></TM_MAD>"
      << "<BASE_PATH><![CDATA[/var/lib/one//datastores/" << d.ds_id << "]]></BASE_PATH>"
      << "<TYPE>" << d.ds_type << "</TYPE><DISK_TYPE>0</DISK_TYPE><STATE>0</STATE>"
      << "<CLUSTERS><ID>0</ID></CLUSTERS><TOTAL_MB>0</TOTAL_MB><FREE_MB>0</FREE_MB><USED_MB>0</USED_MB>"
      << "<IMAGES/><TEMPLATE><DS_MAD><![CDATA[" << d.ds_mad << "]]></DS_MAD>"
      << "<TM_MAD><![CDATA[" << d.tm_mad << "]]></TM_MAD></TEMPLATE></DATASTORE>" << d.extra_xml
      << "</DS_DRIVER_ACTION_DATA>";
    return x.str();
}

std::string action_data_payload(const action_data &d) { return base64_encode(action_data_xml(d)); }

// ---- lines -------------------------------------------------------------------------

std::optional<reply> parse_reply(const driver_line &line) {
    const auto t = split_ws(line.text);
    if (t.size() < 3 || t[0] == "LOG" || (t[1] != "SUCCESS" && t[1] != "FAILURE")) return std::nullopt;
    const auto id = to_int(t[2]);
    if (!id) return std::nullopt;
    reply r;
    r.action = t[0];
    r.success = t[1] == "SUCCESS";
    r.id = *id;
    r.info = rest_after(line.text, 3);
    r.at = line.at;
    r.index = line.index;
    return r;
}

std::optional<log_message> parse_log(const driver_line &line) {
    const auto t = split_ws(line.text);
    if (t.size() < 3 || t[0] != "LOG" || t[1].size() != 1) return std::nullopt;
    const auto id = to_int(t[2]);
    if (!id) return std::nullopt;
    return log_message{t[1][0], *id, rest_after(line.text, 3), line.index};
}

bool exit_report::exited_with(int code) const {
    return exited && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == code;
}

std::string exit_report::describe() const {
    std::ostringstream o;
    if (killed)
        o << "did not exit; SIGKILLed after " << seconds() << " s";
    else if (!exited)
        o << "not reaped";
    else if (WIFEXITED(wait_status))
        o << "exited " << WEXITSTATUS(wait_status) << " after " << seconds() << " s";
    else if (WIFSIGNALED(wait_status))
        o << "killed by signal " << WTERMSIG(wait_status) << " after " << seconds() << " s";
    return o.str();
}

// ---- the peer ---------------------------------------------------------------------

oned_peer::oned_peer(peer_options options) {
    // A driver that dies must fail a test, not kill it with SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);

    const auto env_strings = child_environment(options.env);
    std::vector<char *> envp;
    for (const auto &e : env_strings) envp.push_back(const_cast<char *>(e.c_str()));
    envp.push_back(nullptr);

    int to_pipe[2], from_pipe[2];
    if (::pipe2(to_pipe, O_CLOEXEC) != 0) throw_errno("pipe");
    if (::pipe2(from_pipe, O_CLOEXEC) != 0) {
        ::close(to_pipe[0]);
        ::close(to_pipe[1]);
        throw_errno("pipe");
    }
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
        for (int fd : {to_pipe[0], to_pipe[1], from_pipe[0], from_pipe[1]}) ::close(fd);
        throw_errno("pipe");
    }
    const char *cmd = options.executable.c_str();
    const char *args = options.arguments.c_str();
    pid_ = ::fork();
    if (pid_ < 0) {
        for (int fd : {to_pipe[0], to_pipe[1], from_pipe[0], from_pipe[1]}) ::close(fd);
        throw_errno("fork");
    }
    if (pid_ == 0) {
        // Only async-signal-safe calls from here to exec.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::dup2(to_pipe[0], 0);
        ::dup2(from_pipe[1], 1);
        ::close(2);
        environ = envp.data();
        ::execlp(cmd, cmd, args, static_cast<char *>(nullptr));
        ::_exit(127);
    }
    ::close(to_pipe[0]);
    ::close(from_pipe[1]);
    to_driver_ = to_pipe[1];
    from_driver_ = from_pipe[0];
}

oned_peer::~oned_peer() {
    try {
        finalize();
    } catch (...) {}
    stop_reader();
    close_fd(from_driver_);
    close_fd(stop_pipe_[0]);
    close_fd(stop_pipe_[1]);
}

handshake oned_peer::init() {
    handshake h;
    const auto start = peer_clock::now();
    if (!write_all("INIT\n")) {
        h.error = "cannot write INIT: " + std::string(std::strerror(errno));
        return h;
    }
    fd_set rfds;
    FD_ZERO(&rfds);
    FD_SET(from_driver_, &rfds);
    timeval tv{10, 0};
    const int rc = ::select(from_driver_ + 1, &rfds, nullptr, nullptr, &tv);
    if (rc <= 0) {
        h.error = "Driver initialization time out";
        h.took = peer_clock::now() - start;
        return h;
    }
    char buffer[32];
    const ssize_t n = ::read(from_driver_, buffer, 31);
    h.took = peer_clock::now() - start;
    if (n <= 0) {
        h.error = n == 0 ? "EOF instead of the INIT reply" : "read failed: " + std::string(std::strerror(errno));
        return h;
    }
    h.raw.assign(buffer, static_cast<std::size_t>(n));
    const auto t = split_ws(h.raw);
    h.ok = t.size() >= 2 && t[0] == "INIT" && t[1] == "SUCCESS";
    if (!h.ok) {
        h.error = "Driver initialization failed: got '" + h.raw + "'";
        return h;
    }
    reader_ = std::thread([this] { read_loop(); });
    return h;
}

bool oned_peer::write_all(const std::string &data) {
    if (to_driver_ < 0) {
        errno = EBADF;
        return false;
    }
    // One write() per line, as oned's Message::write_to; lines are far below
    // the pipe buffer, so a short write means the driver is gone.
    const ssize_t n = ::write(to_driver_, data.data(), data.size());
    return n == static_cast<ssize_t>(data.size());
}

bool oned_peer::send_request(const std::string &action, std::int64_t id, const std::string &payload) {
    return write_all(action + "  " + std::to_string(id) + " " + payload + "\n");
}

bool oned_peer::send_line(const std::string &line) { return write_all(line + "\n"); }

void oned_peer::read_loop() {
    std::string buf;
    char chunk[4096];
    for (;;) {
        pollfd fds[2] = {{from_driver_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
        const int pr = ::poll(fds, 2, -1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0 || (fds[1].revents & POLLIN) != 0) return;
        const ssize_t n = ::read(from_driver_, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        const auto now = peer_clock::now();
        std::lock_guard lock(mutex_);
        if (n <= 0) {
            if (!buf.empty()) lines_.push_back({buf, now, lines_.size()});
            eof_ = true;
            changed_.notify_all();
            return;
        }
        buf.append(chunk, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
            lines_.push_back({buf.substr(0, nl), now, lines_.size()});
            buf.erase(0, nl + 1);
        }
        changed_.notify_all();
    }
}

void oned_peer::stop_reader() {
    if (!reader_.joinable()) return;
    const char b = 's';
    [[maybe_unused]] const auto n = ::write(stop_pipe_[1], &b, 1);
    reader_.join();
}

std::vector<driver_line> oned_peer::lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
}

std::vector<reply> oned_peer::replies() const {
    std::vector<reply> out;
    for (const auto &l : lines())
        if (auto r = parse_reply(l)) out.push_back(std::move(*r));
    return out;
}

std::vector<log_message> oned_peer::logs() const {
    std::vector<log_message> out;
    for (const auto &l : lines())
        if (auto m = parse_log(l)) out.push_back(std::move(*m));
    return out;
}

std::string oned_peer::transcript() const {
    std::string out;
    for (const auto &l : lines()) out += l.text + "\n";
    return out;
}

std::optional<reply> oned_peer::wait_for_reply(const std::string &action, std::int64_t id,
                                               peer_clock::duration timeout) const {
    std::optional<reply> found;
    wait_until(
        [&](const std::vector<driver_line> &all) {
            for (const auto &l : all)
                if (auto r = parse_reply(l); r && r->action == action && r->id == id) {
                    found = std::move(r);
                    return true;
                }
            return false;
        },
        timeout);
    return found;
}

bool oned_peer::wait_until(const std::function<bool(const std::vector<driver_line> &)> &pred,
                           peer_clock::duration timeout) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return pred(lines_); });
}

bool oned_peer::wait_for_output_eof(peer_clock::duration timeout) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return eof_; });
}

exit_report oned_peer::reap(peer_clock::time_point start, peer_clock::duration limit) {
    exit_report r;
    for (;;) {
        int status = 0;
        const pid_t w = ::waitpid(pid_, &status, WNOHANG);
        if (w == pid_) {
            r.exited = true;
            r.wait_status = status;
            break;
        }
        if (w < 0 && errno != EINTR) break;  // not our child any more: nothing to wait for
        if (peer_clock::now() - start >= limit) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            r.killed = true;
            r.wait_status = status;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    r.took = peer_clock::now() - start;
    return r;
}

exit_report oned_peer::finalize() {
    if (exit_) return *exit_;
    const auto start = peer_clock::now();
    if (to_driver_ >= 0) write_all("FINALIZE\n");
    close_fd(to_driver_);
    stop_reader();
    close_fd(from_driver_);
    exit_ = reap(start, std::chrono::seconds(10));
    return *exit_;
}

exit_report oned_peer::finalize_and_listen() {
    if (exit_) return *exit_;
    const auto start = peer_clock::now();
    if (to_driver_ >= 0) write_all("FINALIZE\n");
    close_fd(to_driver_);
    exit_ = reap(start, std::chrono::seconds(10));
    return *exit_;
}

exit_report oned_peer::close_stdin_and_wait(peer_clock::duration limit) {
    if (exit_) return *exit_;
    const auto start = peer_clock::now();
    close_fd(to_driver_);
    exit_ = reap(start, limit);
    return *exit_;
}

}  // namespace oneds::test
