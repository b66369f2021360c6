// Runs restic through the process port, here or on a host, and turns the exit
// into an exit_info. Handles what every restic call needs:
//  - the command line, environment and stdin from process_command() (the
//    password never on a command line);
//  - lock conflicts, through the lock_retrying_runner decorator (lock_retry.hpp)
//    when the command asks for it;
//  - cancellation: SIGINT to restic (it removes its lock), SIGKILL after a grace;
//  - error text: restic's own words, with the password and the S3 keys redacted if one ever shows.
#pragma once

#include "plugin/restic/cli/lock_retry.hpp"
#include "plugin/restic/cli/restic_command.hpp"
#include "plugin/restic/cli/restic_output.hpp"

#include "plugin/ports/process.hpp"
#include "plugin/ports/stop.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace oneds::restic {

struct restic_outcome {
    exit_info exit;
    ports::command_result raw;
    bool cancelled = false;
    // Stopped by the runner at restic's first retry of what cannot get
    // better: restic got SIGINT (and SIGKILL if it did not end in time), so
    // its lock may be left, as after a cancel.
    bool stopped_early = false;
    unsigned attempts = 0;

    // restic may have left its lock: cancelled (killed if SIGINT was not
    // enough), stopped early, or killed by someone else. Such a lock is stale
    // and goes with a plain `restic unlock`.
    [[nodiscard]] bool may_have_left_lock() const noexcept {
        return cancelled || stopped_early || exit.kind == exit_kind::killed;
    }
};

class restic_runner {
public:
    restic_runner(ports::process_runner &runner, lock_policy locks, std::chrono::milliseconds kill_grace, log_fn log);

    // Runs c (its command line from process_command()). Fails (ports::error)
    // only when restic or ssh could not be started, or c cannot be composed
    // (kind invalid, "Wrong restic datastore configuration: ...").
    ports::result<restic_outcome> run(const restic_command &c, const datastore_attributes &a,
                                      const std::stop_token &stop);

private:
    ports::process_runner &runner_;
    lock_policy locks_;
    std::chrono::milliseconds kill_grace_;
    log_fn log_;
};

// Why a run that did not succeed failed, in one line: what its kind means
// ("the repository's storage is read-only: ..."), restic's own words, and for
// a lock the holder and the attempts made. Never empty.
std::string failure_text(const restic_outcome &o);

// The port's error kind for a restic run that ended as k: repo_missing is
// not_found, wrong_password and permission are permission, network is
// unreachable, interrupted is cancelled, the rest io.
ports::error_kind error_kind_of(exit_kind k);

}  // namespace oneds::restic
