// The oned side of a DATASTORE_MAD, for benchmarks: it starts a driver and
// talks to it exactly as oned's Driver<MSG> does (include/Driver.h in
// OpenNebula/one; docs/oned-protocol.md#starting-and-stopping-the-driver and #line-grammar):
// * fork() + execlp(cmd, cmd, ARGUMENTS): ARGUMENTS is ONE argv element; stdin
//   and stdout are pipes; fd 2 is CLOSED before exec;
// * handshake: "INIT\n", up to 10 s for data, ONE read() of at most 31 bytes
//   whose first two tokens must be "INIT SUCCESS";
// * every request line goes out in one write() ("<ACTION>  <id> <payload>\n");
// * stop: "FINALIZE\n", close both pipe ends, poll waitpid(), SIGKILL after 10 s
//   (oned polls once a second, this peer every 10 ms to time the exit).
//
// Self-contained (no test library) so that the benchmarks build with
// -DONEDS_BUILD_TESTS=OFF. Not as oned: the child gets PR_SET_PDEATHSIG, so a
// crashed benchmark leaves no driver behind.
//
// Thread-safety: write_line() may run on one thread while another reads
// output_fd(); everything else belongs to the thread that owns the peer.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>

namespace oneds::bench {

struct exit_report {
    bool exited = false;  // reaped within 10 s of FINALIZE, without SIGKILL
    bool killed = false;
    int wait_status = 0;
    std::chrono::steady_clock::duration took{};

    bool clean() const;  // exited with status 0
    std::string describe() const;
};

class mad_peer {
public:
    // Forks and execs the driver. Throws std::system_error when pipes or fork fail.
    mad_peer(const std::string &executable, const std::string &arguments);
    // SIGKILLs and reaps the driver when finalize() was not called; never throws.
    ~mad_peer();
    mad_peer(const mad_peer &) = delete;
    mad_peer &operator=(const mad_peer &) = delete;

    pid_t pid() const noexcept { return pid_; }

    // oned's handshake. Throws std::runtime_error with the reason when it fails.
    void init();

    // line + "\n" in one write() (looping only on a short write). False when
    // the pipe is gone.
    bool write_line(std::string_view line);

    // The driver's stdout, for the caller to poll() and read(); valid until finalize().
    int output_fd() const noexcept { return from_driver_; }

    // oned's stop_driver(). Idempotent: later calls return the first report.
    exit_report finalize();
    // SIGKILL now (a hung driver), then reap.
    exit_report kill();

private:
    exit_report reap(std::chrono::steady_clock::time_point start, std::chrono::steady_clock::duration limit);

    pid_t pid_ = -1;
    int to_driver_ = -1;
    int from_driver_ = -1;
    bool reaped_ = false;
    exit_report exit_;
};

}  // namespace oneds::bench
