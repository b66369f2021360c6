#include "adapters/ssh/ssh_runner.hpp"

#include "adapters/ssh/shell_quote.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

namespace oneds::adapters::ssh {
namespace {

// "ONEDS_PID=<digits>" -> the digits.
std::optional<std::string> parse_pid_line(std::string_view line) {
    if (!line.starts_with(pid_report_marker)) return std::nullopt;
    line.remove_prefix(pid_report_marker.size());
    if (line.empty() || line.size() > 10) return std::nullopt;
    for (const char c : line)
        if (c < '0' || c > '9') return std::nullopt;
    return std::string(line);
}

// Removes from text the lines (counted from 0, split at '\n' as the runner
// hands them to on_stderr_line) whose numbers are in taken, ascending: the
// marker lines the stderr callback took.
void drop_lines(std::string &text, const std::vector<std::size_t> &taken) {
    if (taken.empty()) return;
    std::string out;
    out.reserve(text.size());
    std::size_t start = 0, line = 0, k = 0;
    while (start < text.size()) {
        const auto nl = text.find('\n', start);
        const std::size_t next = nl == std::string::npos ? text.size() : nl + 1;
        if (k < taken.size() && taken[k] == line)
            ++k;
        else
            out.append(text, start, next - start);
        start = next;
        ++line;
    }
    text = std::move(out);
}

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

// What a stop does to a command running over ssh, on a thread of its own (a
// stop callback must not block, and run()'s thread is busy with the first
// ssh): on_stop() starts it; it waits for the remote pid (on_pid()) if ssh is
// still connecting, sends SIGINT through a second ssh (restic removes its
// lock), waits the grace for the first ssh to end (finish()), sends SIGKILL,
// then stops the local ssh. finish() also ends the sequence early and joins
// it; a helper ssh still running then gets its own stop.
class ssh_runner::remote_kill {
public:
    remote_kill(const ssh_runner &runner, std::string host, std::chrono::milliseconds grace,
                std::stop_source &local_ssh)
        : runner_(runner), host_(std::move(host)), grace_(grace), local_ssh_(local_ssh) {}
    remote_kill(const remote_kill &) = delete;
    remote_kill &operator=(const remote_kill &) = delete;
    ~remote_kill() { (void)finish(); }

    void on_pid(std::string pid) {
        const std::lock_guard lock(mutex_);
        pid_ = std::move(pid);
        changed_.notify_all();
    }

    void on_stop() noexcept {
        const std::lock_guard lock(mutex_);
        if (ended_ || started_) return;
        started_ = true;
        try {
            thread_ = std::jthread([this](std::stop_token helper_stop) { run(helper_stop); });
        } catch (...) {
            local_ssh_.request_stop();  // no thread to spare: at least stop the local ssh
        }
    }

    // The first ssh has ended: nothing more to send. Returns whether a stop
    // had started the sequence.
    bool finish() {
        std::jthread thread;
        bool started;
        {
            const std::lock_guard lock(mutex_);
            ended_ = true;
            changed_.notify_all();
            thread = std::move(thread_);
            started = started_;
        }
        return started;  // thread: stop requested (helper ssh cancelled) and joined here
    }

private:
    void run(const std::stop_token &helper_stop) noexcept {
        try {
            std::unique_lock lock(mutex_);
            // Stopped while ssh was still connecting: give the pid a moment.
            changed_.wait_for(lock, grace_, [this] { return pid_.has_value() || ended_; });
            if (ended_) return;
            if (pid_) {
                const std::string pid = *pid_;
                lock.unlock();
                runner_.signal_remote(host_, "INT", pid, helper_stop);
                lock.lock();
                if (changed_.wait_for(lock, grace_, [this] { return ended_; })) return;
                lock.unlock();
                runner_.signal_remote(host_, "KILL", pid, helper_stop);
            }
        } catch (...) {
            // Out of memory: the local ssh is stopped below all the same.
        }
        local_ssh_.request_stop();
    }

    const ssh_runner &runner_;
    const std::string host_;
    const std::chrono::milliseconds grace_;
    std::stop_source &local_ssh_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::optional<std::string> pid_;  // digits, from the ONEDS_PID line
    bool started_ = false;
    bool ended_ = false;
    std::jthread thread_;
};

ports::error_kind classify_ssh_failure(std::string_view ssh_stderr) noexcept {
    if (contains(ssh_stderr, "Host key verification failed") ||
        contains(ssh_stderr, "REMOTE HOST IDENTIFICATION HAS CHANGED") ||
        contains(ssh_stderr, "No ED25519 host key is known") || contains(ssh_stderr, "host key is known for"))
        return ports::error_kind::host_key;
    if (contains(ssh_stderr, "Permission denied")) return ports::error_kind::permission;
    for (const std::string_view text : {"Could not resolve hostname", "Connection refused", "timed out", "No route",
                                        "Network is unreachable", "Connection closed", "Connection reset"})
        if (contains(ssh_stderr, text)) return ports::error_kind::unreachable;
    return ports::error_kind::io;
}

ssh_runner::ssh_runner(ports::process_runner &local, ssh_options options)
    : local_(local), options_(std::move(options)) {}

bool ssh_runner::is_local(std::string_view host) const {
    return host.empty() || options_.local_hosts.find(host) != options_.local_hosts.end();
}

std::vector<std::string> ssh_runner::ssh_argv(const std::string &host, const std::string &remote_line) const {
    std::vector<std::string> argv{options_.ssh_binary, "-T"};
    if (!options_.ssh_config.empty()) {
        argv.emplace_back("-F");
        argv.push_back(options_.ssh_config);
    }
    argv.insert(argv.end(), {"-o", "BatchMode=yes"});
    if (options_.control_dir.empty()) {
        argv.insert(argv.end(), {"-o", "ControlMaster=no", "-o", "ControlPath=none"});
    } else {
        argv.insert(argv.end(), {"-o", "ControlMaster=auto", "-o", "ControlPath=" + options_.control_dir + "/%C", "-o",
                                 "ControlPersist=" + std::to_string(options_.control_persist.count())});
    }
    if (options_.forward_agent) {
        argv.emplace_back("-o");
        argv.emplace_back("ForwardAgent=yes");
    }
    if (options_.connect_timeout.count() > 0) {
        argv.emplace_back("-o");
        argv.push_back("ConnectTimeout=" + std::to_string(options_.connect_timeout.count()));
    }
    // "--": a host name can never be read as an option.
    argv.emplace_back("--");
    argv.push_back(host);
    argv.push_back(remote_line);
    return argv;
}

void ssh_runner::signal_remote(const std::string &host, std::string_view signal, const std::string &pid,
                               const std::stop_token &abort) const {
    ports::command kill_cmd;
    // Built step by step: GCC 12 at -O3 warns (-Wrestrict, a false positive)
    // about "-" + std::string(signal) inside a braced list.
    std::string flag = "-";
    flag.append(signal);
    const std::vector<std::string> kill_argv = {"kill", flag, pid};
    kill_cmd.argv = ssh_argv(host, remote_command_line(kill_argv, {}, false));
    ports::run_options opts;
    opts.stop = abort;
    opts.kill_grace = options_.local_kill_grace;
    // The outcome does not matter: the process may have ended meanwhile, and
    // run() judges by whether the first ssh ends.
    (void)local_.run("", kill_cmd, opts);
}

void ssh_runner::close_masters() {
    if (options_.control_dir.empty()) return;
    std::set<std::string, std::less<>> hosts;
    {
        const std::lock_guard lock(hosts_mutex_);
        hosts.swap(hosts_used_);
    }
    for (const auto &host : hosts) {
        ports::command exit_cmd;
        exit_cmd.argv = {options_.ssh_binary};
        if (!options_.ssh_config.empty()) exit_cmd.argv.insert(exit_cmd.argv.end(), {"-F", options_.ssh_config});
        exit_cmd.argv.insert(exit_cmd.argv.end(),
                             {"-o", "ControlPath=" + options_.control_dir + "/%C", "-O", "exit", "--", host});
        ports::run_options opts;
        (void)local_.run("", exit_cmd, opts);  // no master (it failed or timed out) is fine
    }
}

ports::result<ports::command_result> ssh_runner::run(const std::string &host, const ports::command &cmd,
                                                     const ports::run_options &opts) {
    if (is_local(host)) return local_.run("", cmd, opts);
    if (!options_.control_dir.empty()) {
        const std::lock_guard lock(hosts_mutex_);
        hosts_used_.insert(host);
    }

    for (const auto &name : cmd.secret_env)
        if (cmd.env.contains(name))
            return ports::error{ports::error_kind::invalid, "secret " + name +
                                                                " cannot be passed to a remote host on the command "
                                                                "line; pass it on stdin"};
    if (host.front() == '-') return ports::error{ports::error_kind::invalid, "host name '" + host + "' is not valid"};
    std::string line;
    try {
        line = remote_command_line(cmd.argv, cmd.env, true);
    } catch (const std::invalid_argument &e) {
        return ports::error{ports::error_kind::invalid, std::string(e.what()) + " (command for host " + host + ")"};
    }
    if (opts.stop.stop_requested()) {
        ports::command_result never_started;
        never_started.cancelled = true;
        return never_started;
    }

    ports::command ssh_cmd;
    ssh_cmd.argv = ssh_argv(host, line);
    ssh_cmd.stdin_data = cmd.stdin_data;

    std::stop_source local_ssh;  // stops the first ssh itself
    remote_kill killer(*this, host, opts.kill_grace, local_ssh);
    ports::run_options ssh_opts;
    ssh_opts.on_stdout_line = opts.on_stdout_line;
    ssh_opts.on_stdout_data = opts.on_stdout_data;
    std::vector<std::size_t> taken;  // numbers of the stderr lines that were ours
    ssh_opts.on_stderr_line = [&opts, &taken, &killer, pid_seen = false,
                               line = std::size_t{0}](std::string_view text) mutable {
        const std::size_t this_line = line++;
        if (!pid_seen) {
            if (auto pid = parse_pid_line(text)) {
                pid_seen = true;
                taken.push_back(this_line);
                killer.on_pid(std::move(*pid));
                return;
            }
        }
        if (opts.on_stderr_line) opts.on_stderr_line(text);
    };
    ssh_opts.stop = local_ssh.get_token();
    ssh_opts.kill_grace = options_.local_kill_grace;

    ports::result<ports::command_result> res = ports::error{ports::error_kind::io, "not run"};
    bool cancel_requested;
    {
        std::stop_callback on_stop(opts.stop, [&killer] { killer.on_stop(); });
        res = local_.run("", ssh_cmd, ssh_opts);
        // Gone before finish(): no stop can start the sequence after it.
    }
    cancel_requested = killer.finish();

    if (!res) return res.err();
    ports::command_result out = std::move(res.value());
    drop_lines(out.stderr_text, taken);
    out.cancelled = out.cancelled || cancel_requested;
    return out;
}

}  // namespace oneds::adapters::ssh
