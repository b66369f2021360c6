#include "tests/peer/oned_peer.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <sstream>

#include <fcntl.h>
#include <poll.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

namespace oneds::test {
namespace {

using namespace std::chrono_literals;

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// The token of s that starts at or after i (white space separates tokens);
// i moves past it.
std::string_view next_token(std::string_view s, std::size_t &i) {
    while (i < s.size() && is_blank(s[i])) ++i;
    const std::size_t start = i;
    while (i < s.size() && !is_blank(s[i])) ++i;
    return s.substr(start, i - start);
}

// What follows the token that ended at i and the single space after it.
std::string_view rest_from(std::string_view s, std::size_t i) {
    if (i < s.size() && s[i] == ' ') ++i;
    return s.substr(i);
}

std::optional<std::int64_t> to_int(std::string_view s) {
    std::int64_t v = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc{} || r.ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

std::chrono::milliseconds left_until(peer_clock::time_point deadline) {
    return std::max(std::chrono::ceil<std::chrono::milliseconds>(deadline - peer_clock::now()), 0ms);
}

}  // namespace

// ---- lines -------------------------------------------------------------------------

std::optional<reply_view> parse_reply(std::string_view line) {
    std::size_t i = 0;
    reply_view r;
    r.action = next_token(line, i);
    const auto status = next_token(line, i);
    const auto id = to_int(next_token(line, i));
    if (!id || r.action == "LOG" || (status != "SUCCESS" && status != "FAILURE")) return std::nullopt;
    r.success = status == "SUCCESS";
    r.id = *id;
    r.info = rest_from(line, i);
    return r;
}

std::optional<reply> parse_reply(const driver_line &line) {
    const auto v = parse_reply(std::string_view(line.text));
    if (!v) return std::nullopt;
    return reply{std::string(v->action), v->success, v->id, std::string(v->info), line.at, line.index};
}

std::optional<log_message> parse_log(const driver_line &line) {
    const std::string_view text(line.text);
    std::size_t i = 0;
    const auto log = next_token(text, i);
    const auto severity = next_token(text, i);
    const auto id = to_int(next_token(text, i));
    if (log != "LOG" || severity.size() != 1 || !id) return std::nullopt;
    return log_message{severity.front(), *id, std::string(rest_from(text, i)), line.index};
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

oned_peer::oned_peer(peer_options options) : collect_(options.collect_output) {
    // A driver that dies must fail a test, not kill it with SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    common::child_spec spec;
    spec.argv = {options.executable, options.arguments};
    spec.env_set = std::move(options.env);
    spec.in = common::child_stream::pipe();
    spec.out = common::child_stream::pipe();
    spec.err = common::child_stream::closed();
    // The signal state fork and exec leave, as a driver of oned's gets it.
    spec.reset_signals = false;
    spec.parent_death_signal = SIGKILL;
    if (collect_) {
        int ends[2];
        if (::pipe2(ends, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
        stop_read_ = common::unique_fd(ends[0]);
        stop_write_ = common::unique_fd(ends[1]);
    }
    driver_ = common::spawn(spec);
    to_driver_ = std::move(driver_.stdin_pipe());
    from_driver_ = std::move(driver_.stdout_pipe());
}

oned_peer::~oned_peer() {
    try {
        finalize();
    } catch (...) {}
    stop_reader();
}

handshake oned_peer::init() {
    handshake h;
    const auto start = peer_clock::now();
    if (!write_line("INIT")) {
        h.error = "cannot write INIT: " + std::string(std::strerror(errno));
        return h;
    }
    const auto deadline = start + 10s;
    int rc = 0;
    do {
        pollfd p{from_driver_.get(), POLLIN, 0};
        rc = ::poll(&p, 1, static_cast<int>(left_until(deadline).count()));
    } while (rc < 0 && errno == EINTR);
    if (rc <= 0) {
        h.error = "Driver initialization time out";
        h.took = peer_clock::now() - start;
        return h;
    }
    char buffer[32];
    const ssize_t n = ::read(from_driver_.get(), buffer, 31);
    h.took = peer_clock::now() - start;
    if (n <= 0) {
        h.error = n == 0 ? "EOF instead of the INIT reply" : "read failed: " + std::string(std::strerror(errno));
        return h;
    }
    h.raw.assign(buffer, static_cast<std::size_t>(n));
    std::size_t i = 0;
    const auto first = next_token(h.raw, i);
    const auto second = next_token(h.raw, i);
    h.ok = first == "INIT" && second == "SUCCESS";
    if (!h.ok) {
        h.error = "Driver initialization failed: got '" + h.raw + "'";
        return h;
    }
    if (collect_) reader_ = std::thread([this] { read_loop(); });
    return h;
}

bool oned_peer::write_line(std::string_view line) {
    if (!to_driver_) {
        errno = EBADF;
        return false;
    }
    static constexpr char newline = '\n';
    // The caller's bytes as they are: no copy to append the '\n'.
    iovec parts[2] = {{const_cast<char *>(line.data()), line.size()},  // NOLINT: writev only reads
                      {const_cast<char *>(&newline), 1}};              // NOLINT
    std::size_t first = 0;
    while (first < 2) {
        const ssize_t n = ::writev(to_driver_.get(), parts + first, static_cast<int>(2 - first));
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        auto done = static_cast<std::size_t>(n);
        while (first < 2 && done >= parts[first].iov_len) done -= parts[first++].iov_len;
        if (first < 2) {
            parts[first].iov_base = static_cast<char *>(parts[first].iov_base) + done;
            parts[first].iov_len -= done;
        }
    }
    return true;
}

bool oned_peer::send_request(const std::string &action, std::int64_t id, const std::string &payload) {
    return write_line(action + "  " + std::to_string(id) + " " + payload);
}

void oned_peer::read_loop() {
    std::string buf;
    char chunk[4096];
    for (;;) {
        pollfd fds[2] = {{from_driver_.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
        const int pr = ::poll(fds, 2, -1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0 || (fds[1].revents & POLLIN) != 0) return;
        const ssize_t n = ::read(from_driver_.get(), chunk, sizeof chunk);
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
    [[maybe_unused]] const auto n = ::write(stop_write_.get(), &b, 1);
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
    auto status = driver_.wait_for(left_until(start + limit));
    if (!status) {
        status = driver_.kill();
        r.killed = true;
    } else {
        r.exited = !status->lost;  // lost: not our child any more, nothing to wait for
    }
    r.wait_status = status->raw;
    r.took = peer_clock::now() - start;
    return r;
}

exit_report oned_peer::finalize() {
    if (exit_) return *exit_;
    const auto start = peer_clock::now();
    if (to_driver_) write_line("FINALIZE");
    to_driver_.reset();
    stop_reader();
    from_driver_.reset();
    exit_ = reap(start, 10s);
    return *exit_;
}

exit_report oned_peer::finalize_and_listen() {
    if (exit_) return *exit_;
    const auto start = peer_clock::now();
    if (to_driver_) write_line("FINALIZE");
    to_driver_.reset();
    exit_ = reap(start, 10s);
    return *exit_;
}

exit_report oned_peer::close_stdin_and_wait(peer_clock::duration limit) {
    if (exit_) return *exit_;
    const auto start = peer_clock::now();
    to_driver_.reset();
    exit_ = reap(start, limit);
    return *exit_;
}

exit_report oned_peer::kill() {
    if (exit_) return *exit_;
    const auto start = peer_clock::now();
    (void)driver_.signal(SIGKILL);
    to_driver_.reset();
    stop_reader();
    from_driver_.reset();
    exit_report r;
    r.killed = true;
    r.wait_status = driver_.wait().raw;
    r.took = peer_clock::now() - start;
    exit_ = r;
    return r;
}

}  // namespace oneds::test
