// The process_runner for other hosts: runs an argv vector on a hypervisor or
// the backup server through the OpenSSH client, `ssh`.
//
// Why the OpenSSH client and not a libssh2 exec channel:
// * Agent forwarding. The stock driver runs `ssh -o ForwardAgent=yes <host>`
//   so that restic on the hypervisor reaches the backup server over SFTP with
//   the front end's keys; hypervisors hold no key of their own for it. libssh2
//   1.10 (Debian 12) cannot forward an agent, so with it `backup` could not
//   work on an unchanged installation.
// * The admin's ssh_config, for free and exactly: ProxyJump, Include, Match,
//   Host patterns, ciphers, IdentityFile, known_hosts handling. Re-implementing
//   that on libssh2 would be a second, subtly different ssh.
// The cost, one ssh start per command, is paid only for commands that must
// run elsewhere (restic backup on the hypervisor, restic on the backup server).
// Storage access that can be native (stat, monitor) uses the SFTP adapter.
//
// How a command runs: `ssh -T [options] -- <host> <line>` where <line> is
// remote_command_line(argv, env, report_pid = true) (see shell_quote.hpp): the
// remote login shell prints its pid to stderr, then execs the command. stdin
// (the restic password, for example) travels through the ssh channel's stdin.
// ssh itself is started by the injected local runner, so it runs without a
// shell, in its own session, with a clean signal mask.
//
// Contract, in addition to ports/process.hpp:
// * host "" or a name in options.local_hosts: cmd is run by the local runner
//   unchanged (no ssh); secrets in cmd.env are fine there.
// * Any other host: a name of cmd.secret_env present in cmd.env is refused
//   with error_kind::invalid, because ssh can pass environment only on the
//   remote command line, where every user of that host can read it. Bad
//   environment names or argv words are refused the same way.
// * stderr: the line "ONEDS_PID=<n>" printed by the remote shell is removed
//   from stderr_text and not passed to on_stderr_line; everything else is.
// * exit_code is the remote command's, as ssh reports it. ssh's own failure is
//   exit code 255 with ssh's message in stderr_text; run() still returns a
//   command_result then, and classify_ssh_failure() tells the caller what went
//   wrong (no pid line was seen: the command never started).
// * Cancellation: when opts.stop stops, a second ssh to the same host runs
//   `kill -INT <pid>`, so restic gets SIGINT on its own host and removes its
//   lock. If the first ssh has not ended opts.kill_grace later, a third runs
//   `kill -KILL <pid>` and the local ssh is cancelled too (SIGINT, then SIGKILL
//   after options.local_kill_grace). If the pid is not known yet (ssh still
//   connecting), it is awaited for up to opts.kill_grace; without it, only the
//   local ssh is cancelled. result.cancelled is true when any of this ran.
// * Thread-safe: run() may be called from many threads at once.
#pragma once

#include "plugin/ports/process.hpp"
#include "plugin/ports/result.hpp"

#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace oneds::adapters::ssh {

struct ssh_options {
    std::string ssh_binary = "ssh";  // looked up in PATH by the local runner
    std::string ssh_config;          // passed as -F <path> when not empty
    // -o ForwardAgent=yes, as the stock driver. false passes nothing, which
    // leaves the decision to ssh_config.
    bool forward_agent = true;
    // Host names that mean this machine: run without ssh.
    std::set<std::string, std::less<>> local_hosts{"localhost"};
    // -o ConnectTimeout=<seconds>; zero passes nothing (ssh_config decides).
    std::chrono::seconds connect_timeout{30};
    // After the remote kill -KILL, how long the local ssh gets after SIGINT.
    std::chrono::milliseconds local_kill_grace{2000};
    // Non-empty: reuse one ssh connection per host (OpenSSH multiplexing) with
    // sockets in this private directory (mode 0700, owned by the caller) and
    // masters that outlive their last client by control_persist. Each ssh
    // start costs a key exchange and a login (~0.4-0.6 s here); an action that
    // runs several commands on one host pays it once. Empty: every ssh
    // connects on its own (-o ControlMaster=no, as the stock driver).
    std::string control_dir;
    std::chrono::seconds control_persist{15};
};

class ssh_runner final : public ports::process_runner {
public:
    // local starts ssh and runs everything meant for this machine. It must
    // outlive this runner. (The plugin composes the two; this adapter does not
    // know the process adapter.)
    explicit ssh_runner(ports::process_runner &local, ssh_options options = {});

    ports::result<ports::command_result> run(const std::string &host, const ports::command &cmd,
                                             const ports::run_options &opts) override;

    // Whether host is run here, without ssh.
    [[nodiscard]] bool is_local(std::string_view host) const;

    // The local argv that runs remote_line on host:
    //   ssh -T [-F config] -o BatchMode=yes <multiplexing> [-o ForwardAgent=yes]
    //       [-o ConnectTimeout=N] -- host remote_line
    // BatchMode so that nothing ever prompts. <multiplexing> is
    // -o ControlMaster=auto -o ControlPath=<control_dir>/%C -o ControlPersist=N
    // with a control_dir, else -o ControlMaster=no -o ControlPath=none (as the
    // stock driver: every command has its own connection).
    [[nodiscard]] std::vector<std::string> ssh_argv(const std::string &host, const std::string &remote_line) const;

    // Asks every multiplexing master this runner started to exit (ssh -O exit).
    // Call before removing control_dir; a no-op without multiplexing.
    void close_masters();

private:
    class remote_kill;
    // ssh host kill -<signal> <pid>, stopped by abort.
    void signal_remote(const std::string &host, std::string_view signal, const std::string &pid,
                       const std::stop_token &abort) const;

    ports::process_runner &local_;
    ssh_options options_;
    std::mutex hosts_mutex_;
    std::set<std::string, std::less<>> hosts_used_;
};

// What ssh's stderr says about a failed connection (exit code 255):
// "Host key verification failed" / "REMOTE HOST IDENTIFICATION HAS CHANGED"
// -> host_key; "Permission denied" -> permission; "Could not resolve
// hostname", "Connection refused", "timed out", "No route", "Network is
// unreachable", "Connection closed", "Connection reset" -> unreachable;
// anything else -> io.
[[nodiscard]] ports::error_kind classify_ssh_failure(std::string_view ssh_stderr) noexcept;

}  // namespace oneds::adapters::ssh
