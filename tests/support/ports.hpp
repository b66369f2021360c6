// Loopback ports for the fixtures' servers (sshd, the Ceph daemons).
#pragma once

namespace oneds::test {

// A TCP port on 127.0.0.1 that was free a moment ago: the kernel's choice for
// a probe socket bound to port 0, which is closed again before returning.
// Another process may take it before the caller binds it, so a server started
// on it must be retried on a new port when it fails to bind. Throws
// std::system_error when the probe socket cannot be made or bound.
[[nodiscard]] unsigned short pick_free_port();

}  // namespace oneds::test
