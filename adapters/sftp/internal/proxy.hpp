// The process that carries an SSH connection when the host is reached through
// ProxyJump or ProxyCommand, as ssh itself does it: for ProxyJump
// `ssh [-F config] -o BatchMode=yes [-J <earlier jumps>] -W <host>:<port>
// ssh://<last jump>`, for ProxyCommand the command with its %-tokens expanded,
// run by /bin/sh as ssh runs it (the admin's configuration, not a string of
// ours). Its stdin and stdout are one end of a socket pair; the session talks
// SSH over the other end. Internal to the sftp adapter.
//
// Why not the process port: this child lives as long as the session, and the
// port runs children to completion. It is started by the project's launcher
// (common/oneds_common/child.hpp) in a session of its own, with default
// signals and only its three descriptors.
#pragma once

#include "adapters/sshconfig/ssh_config.hpp"

#include <oneds_common/child.hpp>
#include <oneds_common/unique_fd.hpp>

#include <memory>
#include <string>
#include <vector>

namespace oneds::adapters::sftp::internal {

class proxy_process {
public:
    // Starts the proxy for settings (which must name a ProxyJump or a
    // ProxyCommand); *session_end receives the descriptor to talk SSH on.
    static ports::result<std::unique_ptr<proxy_process>> start(const sshconfig::host_settings &settings,
                                                               common::unique_fd *session_end);
    // SIGTERM, then SIGKILL if it has not gone within a second; reaped.
    ~proxy_process() = default;
    proxy_process(const proxy_process &) = delete;
    proxy_process &operator=(const proxy_process &) = delete;

    // What the proxy wrote on stderr so far (ssh's reason for a failed jump),
    // as one line; "" when nothing.
    std::string stderr_text();
    // "ProxyJump bastion" / "ProxyCommand nc ..." for messages.
    [[nodiscard]] const std::string &describe() const noexcept { return description_; }

    // The argv the proxy runs for settings (for tests).
    static ports::result<std::vector<std::string>> argv_for(const sshconfig::host_settings &settings);

private:
    proxy_process(common::child child, common::unique_fd err, std::string description)
        : child_(std::move(child)), err_(std::move(err)), description_(std::move(description)) {}
    common::child child_;
    common::unique_fd err_;
    std::string description_;
    std::string collected_;
};

}  // namespace oneds::adapters::sftp::internal
