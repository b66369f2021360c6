// A ports::process_runner double: records every command it is asked to run
// (host, argv, environment, stdin) and answers with what the test
// scripted for it, feeding stdout and stderr through the run's callbacks as
// the real adapters do. For fast tests of an action's branches and for
// golden command lines; put an ssh_runner over it to pin the ssh form too.
#pragma once

#include "plugin/ports/process.hpp"

#include <functional>
#include <optional>
#include <mutex>
#include <string>
#include <vector>

namespace oneds::test {

struct recorded_run {
    std::string host;
    ports::command cmd;
    bool stop_requested_at_start = false;
};

// What a scripted run answers.
struct scripted_result {
    int exit_code = 0;
    std::vector<std::string> stdout_lines;
    std::vector<std::string> stderr_lines;
    bool cancelled = false;
    std::optional<ports::error> error;  // run() fails (could not start)
};

class recording_runner final : public ports::process_runner {
public:
    // Decides the answer for each run (in order); default: exit 0, no output.
    using script = std::function<scripted_result(const recorded_run &, std::size_t index)>;
    explicit recording_runner(script s = {}) : script_(std::move(s)) {}

    ports::result<ports::command_result> run(const std::string &host, const ports::command &cmd,
                                             const ports::run_options &opts) override {
        recorded_run r{host, cmd, opts.stop.stop_requested()};
        std::size_t index;
        {
            const std::lock_guard lock(mutex_);
            index = runs_.size();
            runs_.push_back(r);
        }
        const scripted_result s = script_ ? script_(r, index) : scripted_result{};
        if (s.error) return *s.error;
        ports::command_result out;
        out.exit_code = s.exit_code;
        out.cancelled = s.cancelled || opts.stop.stop_requested();
        for (const auto &line : s.stdout_lines) {
            if (opts.on_stdout_data)
                opts.on_stdout_data(line + "\n");
            else if (opts.on_stdout_line)
                opts.on_stdout_line(line);
            else
                out.stdout_text += line + "\n";
        }
        for (const auto &line : s.stderr_lines) {
            out.stderr_text += line + "\n";
            if (opts.on_stderr_line) opts.on_stderr_line(line);
        }
        return out;
    }

    std::vector<recorded_run> runs() const {
        const std::lock_guard lock(mutex_);
        return runs_;
    }

private:
    script script_;
    mutable std::mutex mutex_;
    std::vector<recorded_run> runs_;
};

}  // namespace oneds::test
