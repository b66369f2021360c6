// The process that carries an SSH connection when the host is reached through
// ProxyJump or ProxyCommand, as ssh itself does it: for ProxyJump
// `ssh [-F config] -o BatchMode=yes [-J <earlier jumps>] -W <host>:<port>
// ssh://<last jump>`, for ProxyCommand the command with its %-tokens expanded,
// run by /bin/sh with exec (ssh uses the user's $SHELL; the command is the
// admin's configuration, not a string of ours). Its stdin and stdout are one end of a socket pair; the session talks
// SSH over the other end. Internal to the sftp adapter.
//
// Why not the process port: this child lives as long as the session, and the
// port runs children to completion. It is started by the project's launcher
// (common/child.hpp) in a session of its own, with default
// signals and only its three descriptors.
#pragma once

#include "adapters/sshconfig/ssh_config.hpp"

#include "common/child.hpp"
#include "common/unique_fd.hpp"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace oneds::adapters::sftp::internal {

class proxy_process {
public:
    // Starts the proxy for settings (which must name a ProxyJump or a
    // ProxyCommand); *session_end receives the descriptor to talk SSH on.
    static ports::result<std::unique_ptr<proxy_process>> start(const sshconfig::host_settings &settings,
                                                               common::unique_fd *session_end);
    // SIGTERM, then SIGKILL if it has not gone within a second; reaped.
    ~proxy_process();
    proxy_process(const proxy_process &) = delete;
    proxy_process &operator=(const proxy_process &) = delete;

    // What the proxy wrote on stderr (ssh's reason for a failed jump), its
    // first 8 KiB as one line; "" when nothing. stderr is read all the
    // session long by a thread of its own, so a talkative proxy never blocks
    // on a full pipe. Waits up to half a second for the proxy's stderr to
    // end, as after a failure it is about to.
    std::string stderr_text() const;
    // "ProxyJump bastion" / "ProxyCommand nc ..." for messages.
    [[nodiscard]] const std::string &describe() const noexcept { return description_; }

    // The argv the proxy runs for settings (for tests).
    static ports::result<std::vector<std::string>> argv_for(const sshconfig::host_settings &settings);

private:
    proxy_process(common::child child, common::unique_fd err, std::string description);
    void drain();  // the reader thread

    common::child child_;
    common::unique_fd err_;
    common::unique_fd wake_read_, wake_write_;  // end the reader
    std::string description_;
    mutable std::mutex mutex_;
    mutable std::condition_variable ended_;
    std::string collected_;  // guarded by mutex_
    bool eof_ = false;       // guarded by mutex_
    std::thread reader_;
};

}  // namespace oneds::adapters::sftp::internal
