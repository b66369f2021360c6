// Host key verification against OpenSSH known_hosts files. Internal.
#pragma once

#include "plugin/ports/result.hpp"
#include "adapters/sftp/internal/handles.hpp"
#include "adapters/sshconfig/ssh_config.hpp"

namespace oneds::adapters::sftp::internal {

// The name known_hosts files use for a server: "host" on port 22,
// "[host]:port" otherwise (as ssh writes and looks up; no fallback to the
// bare name for other ports, which libssh2's checkp would allow).
std::string known_hosts_name(const std::string &hostname, std::uint16_t port);

// Checks the key the server presented in the handshake of session, by the
// policy of settings.host_key:
// * strict: accepted only if a known_hosts entry (plain or hashed) for the
//   server carries exactly this key; unknown or changed -> error_kind::host_key
//   naming the server and the files checked;
// * accept_new: unknown key accepted and appended to the first known_hosts
//   file; changed key refused;
// * accept_any: accepted.
// A key listed as @revoked is refused whatever the policy (except accept_any).
ports::status check_host_key(LIBSSH2_SESSION *session, const sshconfig::host_settings &settings);

}  // namespace oneds::adapters::sftp::internal
