// Lock retry as a decorator of the process port: runs a restic command
// through another process_runner and, while restic reports the repository
// locked by someone else, looks at the holder once (inspect: a stale lock is
// removed and restic runs again at once) or waits `interval` and runs it
// again, up to `retries` more times. Each wait is a LOG line naming the
// holder and whether it runs. Nothing but a lock conflict is retried (a
// read-only or full storage is no lock: restic_output.hpp). A stop ends the
// wait at once; the last result is returned, marked cancelled.
#pragma once

#include "plugin/restic/cli/restic_command.hpp"
#include "plugin/restic/cli/restic_output.hpp"

#include "plugin/ports/process.hpp"

#include <chrono>
#include <functional>
#include <string>

namespace oneds::restic {

struct lock_policy {
    unsigned retries = 60;                     // stock: 60 tries ...
    std::chrono::milliseconds interval{5000};  // ... 5 s apart
};

using log_fn = std::function<void(char level, const std::string &text)>;

class lock_retrying_runner final : public ports::process_runner {
public:
    struct settings {
        lock_policy policy;
        lock_inspector inspect;  // may be empty: every holder is waited for
        std::string what;        // for the LOG lines: "backup of VM 7" ("restic" when empty)
        log_fn log;
        std::string secret;  // redacted from what is read (the password)
    };
    lock_retrying_runner(ports::process_runner &inner, settings s) : inner_(inner), s_(std::move(s)) {}

    ports::result<ports::command_result> run(const std::string &host, const ports::command &cmd,
                                             const ports::run_options &opts) override;

    // Runs made by the last run() (1 when the first one was not locked).
    unsigned attempts() const noexcept { return attempts_; }

private:
    ports::process_runner &inner_;
    settings s_;
    unsigned attempts_ = 0;
};

// Replaces every occurrence of secret in text (no-op for an empty secret).
std::string redact(std::string text, const std::string &secret);

}  // namespace oneds::restic
