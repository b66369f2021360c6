// oned's side of a DATASTORE_MAD driver, for the integration tests and the
// MAD benchmark alike: it starts a driver (one_ds_host in MAD mode) and talks
// to it over pipes as oned does, so what passes here is what oned will see
// (docs/oned-protocol.md: starting and stopping, line grammar, actions).
//
// As oned:
// * the driver is started with argv {cmd, ARGUMENTS}: the whole ARGUMENTS
//   string is ONE argv element, a '/'-less cmd is looked up in PATH; stdin and
//   stdout are pipes; descriptor 2 is closed;
// * init(): writes "INIT\n", waits up to 10 s for data, does ONE read() of at
//   most 31 bytes and requires the first two tokens to be "INIT SUCCESS";
// * every line goes out in one system call (the line and its '\n' in one
//   writev()), a request as "<ACTION>  <id> <payload>" (two spaces: the empty
//   status);
// * finalize(): writes "FINALIZE\n", closes both pipe ends, waits for the
//   driver; SIGKILL when it is still there after 10 s. oned looks once a
//   second; this peer sees the exit at once (on the driver's pidfd), so that
//   tests and the benchmark can tell how long it took.
//
// Not as oned (conveniences that do not change what the driver sees):
// * the driver gets a parent-death signal (SIGKILL), so a crashed test or
//   benchmark leaves none behind;
// * extra environment variables may be given (oned passes its own environment);
// * with collect_output (the tests' way), every line the driver writes after
//   the handshake is kept by a thread of the peer, with the time it arrived;
//   without it the caller reads output_fd() itself (the benchmark's way: no
//   copy of a line it does not need).
//
// Built whether or not the tests are (tests/peer/CMakeLists.txt).
//
// Thread-safety: one thread drives a peer; write_line() may run on another
// thread while that one reads output_fd(). The reader thread only appends to
// the line list, which the accessors copy under a lock.
#pragma once

#include "common/child.hpp"
#include "common/unique_fd.hpp"

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace oneds::test {

using peer_clock = std::chrono::steady_clock;

// ---- Lines the driver writes -------------------------------------------------

struct driver_line {
    std::string text;  // without the '\n'
    peer_clock::time_point at;
    std::size_t index = 0;  // position among all lines after the handshake
};

// "<ACTION> SUCCESS|FAILURE <id> <info>", as views into the line.
struct reply_view {
    std::string_view action;
    bool success = false;
    std::int64_t id = 0;
    std::string_view info;  // the rest of the line, as is
};
// "<ACTION> SUCCESS|FAILURE <id> <info>"
struct reply {
    std::string action;
    bool success = false;
    std::int64_t id = 0;
    std::string info;  // the rest of the line, as is
    peer_clock::time_point at;
    std::size_t index = 0;
};
// "LOG <sev> <id> <text>"
struct log_message {
    char severity = '?';
    std::int64_t id = 0;
    std::string text;
    std::size_t index = 0;
};

// nullopt for anything but a reply (LOG lines included).
std::optional<reply_view> parse_reply(std::string_view line);
std::optional<reply> parse_reply(const driver_line &line);
std::optional<log_message> parse_log(const driver_line &line);

// ---- The peer -------------------------------------------------------------------

struct handshake {
    bool ok = false;    // first two tokens were "INIT SUCCESS"
    std::string raw;    // exactly what the one read() returned
    std::string error;  // why not ok (time-out, EOF, other tokens)
    peer_clock::duration took{};
};

struct exit_report {
    bool exited = false;          // reaped within the time limit, without SIGKILL
    bool killed = false;          // the peer had to SIGKILL it
    int wait_status = 0;          // from waitpid
    peer_clock::duration took{};  // from FINALIZE (or closing stdin, or the kill) to reaping

    bool exited_with(int code) const;
    bool clean() const { return exited_with(0); }
    double seconds() const { return std::chrono::duration<double>(took).count(); }
    std::string describe() const;
};

struct peer_options {
    std::string executable;                  // a '/'-less name is looked up in PATH
    std::string arguments;                   // oned's ARGUMENTS, passed as one argv element
    std::map<std::string, std::string> env;  // added to (or replacing in) this process's environment
    bool collect_output = true;              // see the top of this file
};

class oned_peer {
public:
    // Starts the driver. Throws std::system_error when it cannot.
    explicit oned_peer(peer_options options);
    // Finalizes (as oned does) when still running; never throws.
    ~oned_peer();
    oned_peer(const oned_peer &) = delete;
    oned_peer &operator=(const oned_peer &) = delete;

    pid_t pid() const noexcept { return driver_.pid(); }
    // sig to the driver; false once it has been reaped.
    bool signal(int sig) const noexcept { return driver_.signal(sig); }

    // oned's handshake. On success, with collect_output, the reader thread
    // starts collecting lines.
    handshake init();

    // line + "\n" in one system call (looping only on a short write). False
    // when the pipe is gone.
    bool write_line(std::string_view line);
    // "<action>  <id> <payload>\n".
    bool send_request(const std::string &action, std::int64_t id, const std::string &payload);
    // line + "\n", for malformed input.
    bool send_line(const std::string &line) { return write_line(line); }

    // The driver's stdout, for a caller without collect_output to poll() and
    // read(); valid until finalize() or kill().
    int output_fd() const noexcept { return from_driver_.get(); }

    std::vector<driver_line> lines() const;
    std::vector<reply> replies() const;
    std::vector<log_message> logs() const;
    // Every line so far joined with '\n' (for failure messages).
    std::string transcript() const;

    // The first reply to (action, id), waiting up to timeout for it.
    std::optional<reply> wait_for_reply(const std::string &action, std::int64_t id, peer_clock::duration timeout) const;
    // Waits until pred(all lines so far) holds; false on time-out.
    bool wait_until(const std::function<bool(const std::vector<driver_line> &)> &pred,
                    peer_clock::duration timeout) const;
    // True once the driver's stdout reached EOF, waiting up to timeout.
    bool wait_for_output_eof(peer_clock::duration timeout) const;

    // oned's stop_driver(): FINALIZE, close both pipe ends, reap (up to 10 s),
    // then SIGKILL. Idempotent: later calls (of these four) return the first
    // report.
    exit_report finalize();
    // As finalize(), but the driver's output is still read (and collected)
    // until it exits: what the driver answers after FINALIZE, which oned
    // itself no longer reads. The same 10 s limit and SIGKILL.
    exit_report finalize_and_listen();
    // Closes only the driver's stdin (EOF without FINALIZE) and reaps it like
    // finalize(), up to limit. Output keeps being collected until the driver
    // closes it.
    exit_report close_stdin_and_wait(peer_clock::duration limit = std::chrono::seconds(10));
    // SIGKILL now (a hung driver), close both pipe ends, reap.
    exit_report kill();

private:
    void read_loop();
    void stop_reader();
    exit_report reap(peer_clock::time_point start, peer_clock::duration limit);

    bool collect_;
    common::child driver_;
    common::unique_fd to_driver_;
    common::unique_fd from_driver_;
    common::unique_fd stop_read_, stop_write_;  // wakes the reader thread
    std::thread reader_;
    std::optional<exit_report> exit_;

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<driver_line> lines_;
    bool eof_ = false;
};

}  // namespace oneds::test
