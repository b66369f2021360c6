// A program run as the remotes scripts run one_ds_host in action mode: an
// argv vector (no shell), stdin fed from a string and then closed, stdout and
// stderr captured separately, the exit status and how long it took recorded.
#pragma once

#include "common/child.hpp"
#include "common/unique_fd.hpp"

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace oneds::test {

struct process_result {
    int exit_code = -1;   // -1 unless it exited normally
    int term_signal = 0;  // the signal that ended it, if one did
    bool killed = false;  // it outlived the wait limit and was SIGKILLed
    std::string out;
    std::string err;
    std::chrono::steady_clock::duration took{};  // from spawn to reaping
    double seconds() const { return std::chrono::duration<double>(took).count(); }
};

class spawned_process {
public:
    // Starts argv (argv[0] an absolute path) with this process's environment
    // plus env. Throws std::system_error when it cannot.
    spawned_process(const std::vector<std::string> &argv, std::string input,
                    const std::map<std::string, std::string> &env = {}, bool hold_input = false);
    ~spawned_process();  // SIGKILLs and reaps a child still running
    spawned_process(const spawned_process &) = delete;
    spawned_process &operator=(const spawned_process &) = delete;

    pid_t pid() const noexcept { return child_.pid(); }
    // True once the child has a handler installed for sig (its SigCgt mask in
    // /proc), waiting up to timeout: after that, sig reaches its handler
    // rather than the default action. Polls without sleeping, so a signal sent
    // right after it returns arrives as early as it can.
    bool wait_for_signal_handler(int sig, std::chrono::milliseconds timeout) const;
    void send_signal(int sig) const;
    // With hold_input, the child's stdin stays open and empty until this.
    void release_input() noexcept { hold_input_ = false; }
    // Waits for the child to exit, SIGKILLing it (killed set) if it has not
    // after limit, counted from this call (not from the start: whatever the
    // caller did before, the child gets the whole limit). The result's took
    // still runs from the start to the reaping.
    process_result wait(std::chrono::milliseconds limit = std::chrono::seconds(30));

private:
    void pump();

    common::child child_;
    common::unique_fd in_, out_, err_;
    std::string input_;
    std::atomic<bool> hold_input_{false};
    std::string out_text_, err_text_;
    std::thread pump_;
    std::chrono::steady_clock::time_point start_;
};

// Spawns, feeds input, waits (SIGKILL after limit, from the start).
process_result run_process(const std::vector<std::string> &argv, const std::string &input = {},
                           const std::map<std::string, std::string> &env = {},
                           std::chrono::milliseconds limit = std::chrono::seconds(30));

}  // namespace oneds::test
