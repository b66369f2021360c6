// A fake oned for integration tests: it starts a DATASTORE_MAD driver and talks
// to it over pipes exactly as oned's Driver<MSG> (include/Driver.h) does, so
// what passes here is what oned will see. See
// docs/oned-protocol.md (starting and stopping, line grammar, actions).
//
// Exactly as oned:
// * fork() + execlp(cmd, cmd, ARGUMENTS): the whole ARGUMENTS string is ONE
//   argv element; stdin and stdout are pipes; fd 2 is CLOSED before exec.
// * init(): writes "INIT\n", waits up to 10 s for data, does ONE read() of at
//   most 31 bytes and requires the first two tokens to be "INIT SUCCESS".
// * send_request(): "<ACTION>  <id> <payload>\n" (two spaces: the empty status).
// * finalize(): writes "FINALIZE\n", closes both pipe ends, polls waitpid();
//   SIGKILL when the driver is still there after 10 s. oned polls once a
//   second; this peer polls every 100 ms so that tests can tell how long the
//   exit took.
//
// Not as oned (test conveniences that do not change what the driver sees):
// * the child gets PR_SET_PDEATHSIG(SIGKILL), so a crashed test leaves no driver;
// * extra environment variables may be given (oned passes its own environment);
// * every line the driver writes after the handshake is kept, with the time it
//   arrived, for the test to inspect; oned would dispatch it instead.
//
// Thread-safety: one test thread drives a peer; the peer's reader thread only
// appends to the line list, which the accessors copy under a lock.
#pragma once

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

// ---- Built programs (paths come from CMake's $<TARGET_FILE:...>) -----------

namespace built {
inline const char *host() { return ONEDS_TEST_HOST_PATH; }
inline const char *testdrv_plugin() { return ONEDS_TEST_TESTDRV_PATH; }
inline const char *restic_plugin() { return ONEDS_TEST_RESTIC_PATH; }
inline const char *fake_one_datastore() { return ONEDS_TEST_FAKE_ONE_DATASTORE_PATH; }
}  // namespace built

// ---- DS_DRIVER_ACTION_DATA payloads -----------------------------------------

// Base64 as oned writes it (OpenSSL EVP_EncodeBlock: one line, '=' padding).
std::string base64_encode(std::string_view data);
// Strict: nullopt on any character outside the alphabet (line breaks included)
// or on bad length/padding.
std::optional<std::string> base64_decode(std::string_view text);

// What one request's document is made of. The defaults describe an IMAGE
// datastore 100 named "default".
struct action_data {
    std::string ds_mad;
    std::string tm_mad = "dummy";
    int ds_type = 0;  // DATASTORE/TYPE: 0 IMAGE_DS, 1 SYSTEM_DS, 2 FILE_DS, 3 BACKUP_DS
    int ds_id = 100;
    std::string ds_name = "default";
    // A full <IMAGE>...</IMAGE> element written before <DATASTORE> (as oned
    // does); empty for none (MONITOR). image_xml() builds a typical one.
    std::string image;
    // Written after </DATASTORE>, e.g. test_behaviour("sleep:100").
    std::string extra_xml;
};

// The image element oned sends for image id, with an IMAGE/DATASTORE child
// holding the datastore *name* (the trap for relative XPaths).
std::string image_xml(int image_id, const std::string &ds_name = "default", int ds_id = 100);
// <TEST_BEHAVIOUR>b</TEST_BEHAVIOUR>: selects the test plugin's behaviour.
std::string test_behaviour(const std::string &b);
std::string xml_escape(std::string_view text);

std::string action_data_xml(const action_data &d);
// base64(action_data_xml(d)), as oned puts it on the request line.
std::string action_data_payload(const action_data &d);

// ---- Lines the driver writes -------------------------------------------------

struct driver_line {
    std::string text;  // without the '\n'
    peer_clock::time_point at;
    std::size_t index = 0;  // position among all lines after the handshake
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
    peer_clock::duration took{};  // from FINALIZE (or closing stdin) to reaping

    bool exited_with(int code) const;
    double seconds() const { return std::chrono::duration<double>(took).count(); }
    std::string describe() const;
};

struct peer_options {
    std::string executable;                  // run with execlp: a '/'-less name is looked up in PATH
    std::string arguments;                   // oned's ARGUMENTS, passed as one argv element
    std::map<std::string, std::string> env;  // added to (or replacing in) this process's environment
};

class oned_peer {
public:
    // Forks and execs the driver. Throws std::system_error when pipes or fork fail.
    explicit oned_peer(peer_options options);
    // Finalizes (as oned does) when still running; never throws.
    ~oned_peer();
    oned_peer(const oned_peer &) = delete;
    oned_peer &operator=(const oned_peer &) = delete;

    pid_t pid() const noexcept { return pid_; }

    // oned's handshake. On success the reader thread starts collecting lines.
    handshake init();

    // "<action>  <id> <payload>\n" in one write(). False when the pipe is gone.
    bool send_request(const std::string &action, std::int64_t id, const std::string &payload);
    // line + "\n" in one write(), for malformed input.
    bool send_line(const std::string &line);

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

    // oned's stop_driver(): FINALIZE, close both pipe ends, reap (100 ms polls,
    // up to 10 s), then SIGKILL. Idempotent: later calls return the first report.
    exit_report finalize();
    // As finalize(), but the driver's output is still read (and collected)
    // until it exits: what the driver answers after FINALIZE, which oned
    // itself no longer reads. The same 10 s limit and SIGKILL.
    exit_report finalize_and_listen();
    // Closes only the driver's stdin (EOF without FINALIZE) and reaps it like
    // finalize(), up to limit. Output keeps being collected until the driver
    // closes it.
    exit_report close_stdin_and_wait(peer_clock::duration limit = std::chrono::seconds(10));

private:
    void read_loop();
    void stop_reader();
    exit_report reap(peer_clock::time_point start, peer_clock::duration limit);
    bool write_all(const std::string &data);

    pid_t pid_ = -1;
    int to_driver_ = -1;
    int from_driver_ = -1;
    int stop_pipe_[2] = {-1, -1};
    std::thread reader_;
    std::optional<exit_report> exit_;

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<driver_line> lines_;
    bool eof_ = false;
};

}  // namespace oneds::test
