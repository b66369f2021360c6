// ssh_runner against a scripted local runner: what it asks the local runner to
// run, and in which order, without any ssh.
#define BOOST_TEST_MODULE adapter_ssh_runner_unit_test
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "adapters/ssh/shell_quote.hpp"
#include "adapters/ssh/ssh_runner.hpp"
#include "tests/adapters/process/test_cancellation.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace bdata = boost::unit_test::data;
using namespace std::chrono_literals;
using oneds::adapters::ssh::classify_ssh_failure;
using oneds::adapters::ssh::pid_report_prefix;
using oneds::adapters::ssh::remote_command_line;
using oneds::adapters::ssh::ssh_options;
using oneds::adapters::ssh::ssh_runner;
using oneds::ports::command;
using oneds::ports::command_result;
using oneds::ports::error_kind;
using oneds::ports::run_options;
using oneds::test::test_cancellation;

BOOST_TEST_DONT_PRINT_LOG_VALUE(oneds::ports::error_kind)

namespace {

command_result exited(int code) {
    command_result r;
    r.exit_code = code;
    return r;
}

// Records every command; the one carrying the pid prefix (the remote command
// proper) is played by main_script, every other one (a kill) exits 0.
class scripted_runner final : public oneds::ports::process_runner {
public:
    struct call {
        std::string host;
        command cmd;
    };
    using script = std::function<command_result(const command &, const run_options &)>;

    script main_script = [](const command &, const run_options &) { return exited(0); };

    oneds::ports::result<command_result> run(const std::string &host, const command &cmd,
                                             const run_options &opts) override {
        {
            const std::lock_guard lock(mutex_);
            calls_.push_back({host, cmd});
        }
        changed_.notify_all();
        if (!cmd.argv.empty() && cmd.argv.back().find(pid_report_prefix) != std::string::npos)
            return main_script(cmd, opts);
        return exited(0);
    }

    std::vector<call> calls() const {
        const std::lock_guard lock(mutex_);
        return calls_;
    }

    // Waits until a recorded command's last word is line.
    bool wait_for_line(const std::string &line, std::chrono::milliseconds limit) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, limit, [&] {
            for (const auto &c : calls_)
                if (!c.cmd.argv.empty() && c.cmd.argv.back() == line) return true;
            return false;
        });
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<call> calls_;
};

bool wait_until_cancelled(const std::stop_token &stop, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (stop.stop_requested()) return true;
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

command restic_backup() {
    command cmd;
    cmd.argv = {"restic", "backup", "--json", "/var/lib/one/datastores/0/7/backup/disk.0.0"};
    cmd.env = {{"RESTIC_REPOSITORY", "sftp:oneadmin@backup:/var/lib/one/datastores/100/7"}};
    cmd.stdin_data = "the password\n";
    return cmd;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ssh_runner_commands)

BOOST_AUTO_TEST_CASE(ssh_argv_carries_the_fixed_options_the_config_and_the_host) {
    scripted_runner local;
    const ssh_runner runner(local, ssh_options{.ssh_binary = "/usr/bin/ssh",
                                               .ssh_config = "/etc/one/ssh config",
                                               .forward_agent = true,
                                               .local_hosts = {"localhost"},
                                               .connect_timeout = 15s,
                                               .local_kill_grace = 2s,
                                               .control_dir = {},
                                               .control_persist = 15s});
    BOOST_TEST(runner.ssh_argv("node1", "'true'") ==
                   (std::vector<std::string>{"/usr/bin/ssh", "-T", "-F", "/etc/one/ssh config", "-o", "BatchMode=yes",
                                             "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o",
                                             "ForwardAgent=yes", "-o", "ConnectTimeout=15", "--", "node1", "'true'"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(multiplexing_uses_the_private_control_dir) {
    scripted_runner local;
    ssh_options options;
    options.control_dir = "/tmp/oneds-ssh-abc";
    options.control_persist = 20s;
    options.forward_agent = false;
    options.connect_timeout = 0s;
    const ssh_runner runner(local, options);
    BOOST_TEST(runner.ssh_argv("node1", "'true'") ==
                   (std::vector<std::string>{"ssh", "-T", "-o", "BatchMode=yes", "-o", "ControlMaster=auto", "-o",
                                             "ControlPath=/tmp/oneds-ssh-abc/%C", "-o", "ControlPersist=20", "--",
                                             "node1", "'true'"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(optional_options_are_left_to_ssh_config) {
    scripted_runner local;
    ssh_options options;
    options.forward_agent = false;
    options.connect_timeout = 0s;
    const ssh_runner runner(local, options);
    BOOST_TEST(runner.ssh_argv("node1", "'true'") ==
                   (std::vector<std::string>{"ssh", "-T", "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o",
                                             "ControlPath=none", "--", "node1", "'true'"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(remote_command_runs_as_one_ssh_with_stdin_and_no_environment) {
    scripted_runner local;
    ssh_runner runner(local);
    const command cmd = restic_backup();
    auto res = runner.run("node1", cmd, {});
    BOOST_TEST_REQUIRE(res.has_value());
    const auto calls = local.calls();
    BOOST_TEST_REQUIRE(calls.size() == 1U);
    BOOST_TEST(calls[0].host == "");
    BOOST_TEST(calls[0].cmd.argv == runner.ssh_argv("node1", remote_command_line(cmd.argv, cmd.env, true)),
               boost::test_tools::per_element());
    BOOST_TEST(calls[0].cmd.env.empty());
    BOOST_TEST(calls[0].cmd.stdin_data == cmd.stdin_data);
}

BOOST_AUTO_TEST_CASE(secret_in_env_is_refused_for_a_remote_host) {
    scripted_runner local;
    ssh_runner runner(local);
    command cmd = restic_backup();
    cmd.env["RESTIC_PASSWORD"] = "hunter2";
    cmd.secret_env = {"RESTIC_PASSWORD"};
    const auto res = runner.run("node1", cmd, {});
    BOOST_TEST_REQUIRE(!res.has_value());
    BOOST_TEST((res.err().kind == error_kind::invalid));
    BOOST_TEST(res.err().message ==
               "secret RESTIC_PASSWORD cannot be passed to a remote host on the command line; pass it on stdin");
    BOOST_TEST(local.calls().empty(), "nothing may run");
}

BOOST_AUTO_TEST_CASE(secret_names_not_in_env_are_fine) {
    scripted_runner local;
    ssh_runner runner(local);
    command cmd = restic_backup();
    cmd.secret_env = {"RESTIC_PASSWORD"};
    BOOST_TEST(runner.run("node1", cmd, {}).has_value());
}

BOOST_DATA_TEST_CASE(local_hosts_go_to_the_local_runner_unchanged, bdata::make({"", "localhost"}), host) {
    scripted_runner local;
    ssh_runner runner(local);
    command cmd = restic_backup();
    cmd.env["RESTIC_PASSWORD"] = "hunter2";
    cmd.secret_env = {"RESTIC_PASSWORD"};
    BOOST_TEST_REQUIRE(runner.run(host, cmd, {}).has_value());
    const auto calls = local.calls();
    BOOST_TEST_REQUIRE(calls.size() == 1U);
    BOOST_TEST(calls[0].host == "");
    BOOST_TEST(calls[0].cmd.argv == cmd.argv, boost::test_tools::per_element());
    BOOST_TEST((calls[0].cmd.env == cmd.env));
    BOOST_TEST(calls[0].cmd.stdin_data == cmd.stdin_data);
    BOOST_TEST(calls[0].cmd.secret_env == cmd.secret_env, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_set_of_local_names_is_configurable) {
    scripted_runner local;
    ssh_options options;
    options.local_hosts = {"frontend"};
    ssh_runner runner(local, options);
    BOOST_TEST(runner.is_local("frontend"));
    BOOST_TEST(runner.is_local(""));
    BOOST_TEST(!runner.is_local("localhost"));
    command cmd;
    cmd.argv = {"true"};
    BOOST_TEST_REQUIRE(runner.run("localhost", cmd, {}).has_value());
    BOOST_TEST(local.calls().at(0).cmd.argv.front() == "ssh");
}

BOOST_AUTO_TEST_CASE(bad_words_are_refused_before_anything_runs) {
    scripted_runner local;
    ssh_runner runner(local);
    command cmd;
    cmd.argv = {"true"};
    cmd.env = {{"NOT A NAME", "x"}};
    auto res = runner.run("node1", cmd, {});
    BOOST_TEST_REQUIRE(!res.has_value());
    BOOST_TEST((res.err().kind == error_kind::invalid));
    cmd.env.clear();
    cmd.argv = {"-oProxyCommand=evil"};
    res = runner.run("node1", cmd, {});
    BOOST_TEST_REQUIRE(!res.has_value());
    BOOST_TEST((res.err().kind == error_kind::invalid));
    res =
        runner.run("-oProxyCommand=evil", command{.argv = {"true"}, .env = {}, .stdin_data = {}, .secret_env = {}}, {});
    BOOST_TEST_REQUIRE(!res.has_value());
    BOOST_TEST((res.err().kind == error_kind::invalid));
    BOOST_TEST(local.calls().empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ssh_runner_output)

BOOST_AUTO_TEST_CASE(pid_line_is_taken_out_of_stderr_and_the_rest_kept) {
    scripted_runner local;
    local.main_script = [](const command &, const run_options &opts) {
        for (const char *line :
             {"Warning: Permanently added 'node1'", "ONEDS_PID=77", "Fatal: wrong password", "ONEDS_PID=78"})
            opts.on_stderr_line(line);
        opts.on_stdout_line("{\"message_type\":\"summary\"}");
        return command_result{.exit_code = 1,
                              .cancelled = false,
                              .stdout_text = {},
                              .stderr_text =
                                  "Warning: Permanently added 'node1'\nONEDS_PID=77\nFatal: wrong "
                                  "password\nONEDS_PID=78\n"};
    };
    ssh_runner runner(local);
    std::vector<std::string> err_lines;
    std::vector<std::string> out_lines;
    run_options opts;
    opts.on_stderr_line = [&](std::string_view l) { err_lines.emplace_back(l); };
    opts.on_stdout_line = [&](std::string_view l) { out_lines.emplace_back(l); };
    auto res = runner.run("node1", restic_backup(), opts);
    BOOST_TEST_REQUIRE(res.has_value());
    BOOST_TEST(res->exit_code == 1);
    // Only the first pid line is ours; a later one is the command's own output.
    BOOST_TEST(res->stderr_text == "Warning: Permanently added 'node1'\nFatal: wrong password\nONEDS_PID=78\n");
    BOOST_TEST(err_lines == (std::vector<std::string>{"Warning: Permanently added 'node1'", "Fatal: wrong password",
                                                      "ONEDS_PID=78"}),
               boost::test_tools::per_element());
    BOOST_TEST(out_lines == (std::vector<std::string>{"{\"message_type\":\"summary\"}"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(connection_failure_is_a_result_with_exit_255) {
    scripted_runner local;
    local.main_script = [](const command &, const run_options &opts) {
        opts.on_stderr_line("ssh: connect to host node1 port 22: Connection refused");
        return command_result{.exit_code = 255,
                              .cancelled = false,
                              .stdout_text = {},
                              .stderr_text = "ssh: connect to host node1 port 22: Connection refused\n"};
    };
    ssh_runner runner(local);
    auto res = runner.run("node1", restic_backup(), {});
    BOOST_TEST_REQUIRE(res.has_value());
    BOOST_TEST(res->exit_code == 255);
    BOOST_TEST((classify_ssh_failure(res->stderr_text) == error_kind::unreachable));
}

BOOST_DATA_TEST_CASE(
    ssh_failures_are_classified,
    bdata::make(std::vector<std::string>{"Host key verification failed.\r\n",
                                         "@@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n",
                                         "oneadmin@node1: Permission denied (publickey).\r\n",
                                         "ssh: Could not resolve hostname nowhere: Name or service not known\r\n",
                                         "ssh: connect to host 10.0.0.1 port 22: Connection refused\r\n",
                                         "ssh: connect to host 10.0.0.1 port 22: Connection timed out\r\n",
                                         "ssh: connect to host 10.0.0.1 port 22: No route to host\r\n",
                                         "ssh: connect to host 10.0.0.1 port 22: Network is unreachable\r\n",
                                         "Connection closed by 10.0.0.1 port 22\r\n",
                                         "kex_exchange_identification: read: Connection reset by peer\r\n",
                                         "something else entirely\n", ""}) ^
        bdata::make(std::vector<error_kind>{error_kind::host_key, error_kind::host_key, error_kind::permission,
                                            error_kind::unreachable, error_kind::unreachable, error_kind::unreachable,
                                            error_kind::unreachable, error_kind::unreachable, error_kind::unreachable,
                                            error_kind::unreachable, error_kind::io, error_kind::io}),
    text, kind) {
    BOOST_TEST((classify_ssh_failure(text) == kind), text);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ssh_runner_cancellation)

BOOST_AUTO_TEST_CASE(cancel_sends_sigint_to_the_remote_pid_through_a_second_ssh) {
    scripted_runner local;
    test_cancellation cancel;
    bool local_ssh_cancelled = false;
    bool int_sent = false;
    ssh_runner runner(local);
    const std::string kill_int = remote_command_line({"kill", "-INT", "4242"}, {}, false);
    local.main_script = [&](const command &, const run_options &opts) {
        opts.on_stderr_line("ONEDS_PID=4242");
        cancel.cancel();
        // The remote command ends once the remote kill has been sent.
        int_sent = local.wait_for_line(kill_int, 10s);
        local_ssh_cancelled = opts.stop.stop_requested();
        return command_result{.exit_code = 130, .cancelled = false, .stdout_text = {}, .stderr_text = {}};
    };
    run_options opts;
    opts.stop = cancel.token();
    opts.kill_grace = 10s;
    auto res = runner.run("node1", restic_backup(), opts);
    BOOST_TEST_REQUIRE(res.has_value());
    BOOST_TEST(int_sent);
    BOOST_TEST(res->cancelled);
    BOOST_TEST(!local_ssh_cancelled, "the local ssh must be left alone while the remote side ends");
    const auto calls = local.calls();
    BOOST_TEST_REQUIRE(calls.size() == 2U, "no SIGKILL after a timely end");
    BOOST_TEST(calls[1].host == "");
    BOOST_TEST(calls[1].cmd.argv == runner.ssh_argv("node1", kill_int), boost::test_tools::per_element());
    BOOST_TEST(calls[1].cmd.stdin_data.empty());
}

BOOST_AUTO_TEST_CASE(remote_command_that_outlives_the_grace_is_killed_then_the_local_ssh) {
    scripted_runner local;
    test_cancellation cancel;
    bool local_ssh_cancelled = false;
    ssh_runner runner(local);
    local.main_script = [&](const command &, const run_options &opts) {
        opts.on_stderr_line("ONEDS_PID=4242");
        cancel.cancel();
        local_ssh_cancelled = wait_until_cancelled(opts.stop, 10s);
        return command_result{.exit_code = 255, .cancelled = true, .stdout_text = {}, .stderr_text = {}};
    };
    run_options opts;
    opts.stop = cancel.token();
    opts.kill_grace = 100ms;
    auto res = runner.run("node1", restic_backup(), opts);
    BOOST_TEST_REQUIRE(res.has_value());
    BOOST_TEST(local_ssh_cancelled);
    BOOST_TEST(res->cancelled);
    const auto calls = local.calls();
    BOOST_TEST_REQUIRE(calls.size() == 3U);
    BOOST_TEST(calls[1].cmd.argv.back() == remote_command_line({"kill", "-INT", "4242"}, {}, false));
    BOOST_TEST(calls[2].cmd.argv.back() == remote_command_line({"kill", "-KILL", "4242"}, {}, false));
}

BOOST_AUTO_TEST_CASE(cancel_before_the_pid_is_known_stops_the_local_ssh) {
    scripted_runner local;
    test_cancellation cancel;
    bool local_ssh_cancelled = false;
    ssh_runner runner(local);
    local.main_script = [&](const command &, const run_options &opts) {
        cancel.cancel();  // still "connecting": no pid line yet
        local_ssh_cancelled = wait_until_cancelled(opts.stop, 10s);
        return command_result{.exit_code = 255, .cancelled = true, .stdout_text = {}, .stderr_text = {}};
    };
    run_options opts;
    opts.stop = cancel.token();
    opts.kill_grace = 100ms;
    auto res = runner.run("node1", restic_backup(), opts);
    BOOST_TEST_REQUIRE(res.has_value());
    BOOST_TEST(local_ssh_cancelled);
    BOOST_TEST(res->cancelled);
    BOOST_TEST(local.calls().size() == 1U, "no pid, so no remote kill");
}

BOOST_AUTO_TEST_CASE(run_cancelled_before_it_starts_starts_nothing) {
    scripted_runner local;
    test_cancellation cancel;
    cancel.cancel();
    ssh_runner runner(local);
    run_options opts;
    opts.stop = cancel.token();
    auto res = runner.run("node1", restic_backup(), opts);
    BOOST_TEST_REQUIRE(res.has_value());
    BOOST_TEST(res->cancelled);
    BOOST_TEST(local.calls().empty());
}

BOOST_AUTO_TEST_CASE(cancel_after_the_end_sends_nothing) {
    scripted_runner local;
    test_cancellation cancel;
    ssh_runner runner(local);
    local.main_script = [](const command &, const run_options &opts) {
        opts.on_stderr_line("ONEDS_PID=4242");
        return command_result{.exit_code = 0, .cancelled = false, .stdout_text = {}, .stderr_text = {}};
    };
    run_options opts;
    opts.stop = cancel.token();
    auto res = runner.run("node1", restic_backup(), opts);
    cancel.cancel();
    BOOST_TEST_REQUIRE(res.has_value());
    BOOST_TEST(!res->cancelled);
    std::this_thread::sleep_for(100ms);
    BOOST_TEST(local.calls().size() == 1U);
}

BOOST_AUTO_TEST_SUITE_END()
