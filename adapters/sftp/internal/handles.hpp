// RAII owners for what the SFTP adapter takes from libssh2 and the kernel.
// Each owner only frees; anything that talks to the server (disconnect
// messages, channel close) is an explicit step of session, with a deadline.
// Internal to the sftp adapter.
#pragma once

#include <libssh2.h>
#include <libssh2_sftp.h>

#include "adapters/sftp/internal/alloc_ledger.hpp"
#include "common/unique_fd.hpp"

#include <unistd.h>

#include <memory>
#include <utility>

namespace oneds::adapters::sftp::internal {

using unique_fd = oneds::common::unique_fd;

// libssh2's free functions would return LIBSSH2_ERROR_EAGAIN and free nothing
// on a non-blocking session with a channel still open; these deleters switch
// the session to blocking mode with a short timeout first, so freeing always
// completes and never waits long on a server that stopped answering.
inline void make_freeable(LIBSSH2_SESSION *session) noexcept {
    constexpr long free_timeout_ms = 2000;
    libssh2_session_set_timeout(session, free_timeout_ms);
    libssh2_session_set_blocking(session, 1);
}

// Owns the session's alloc_ledger too: what libssh2 left allocated for the
// session (handles whose close never completed) goes with it.
struct session_deleter {
    std::unique_ptr<alloc_ledger> ledger;
    void operator()(LIBSSH2_SESSION *session) const noexcept {
        make_freeable(session);
        libssh2_session_free(session);
        if (ledger) ledger->release_all();
    }
};

struct sftp_deleter {
    LIBSSH2_SESSION *session = nullptr;
    void operator()(LIBSSH2_SFTP *sftp) const noexcept {
        if (session != nullptr) make_freeable(session);
        libssh2_sftp_shutdown(sftp);
    }
};

struct knownhosts_deleter {
    void operator()(LIBSSH2_KNOWNHOSTS *hosts) const noexcept { libssh2_knownhost_free(hosts); }
};

struct agent_deleter {
    void operator()(LIBSSH2_AGENT *agent) const noexcept {
        libssh2_agent_disconnect(agent);
        libssh2_agent_free(agent);
    }
};

using session_ptr = std::unique_ptr<LIBSSH2_SESSION, session_deleter>;
using sftp_ptr = std::unique_ptr<LIBSSH2_SFTP, sftp_deleter>;
using knownhosts_ptr = std::unique_ptr<LIBSSH2_KNOWNHOSTS, knownhosts_deleter>;
using agent_ptr = std::unique_ptr<LIBSSH2_AGENT, agent_deleter>;

// libssh2_init once per process, before the first session; thread-safe.
// libssh2_exit is never called: this code lives in a plugin inside someone
// else's process, which may use libssh2 itself.
bool ensure_libssh2_initialised() noexcept;

}  // namespace oneds::adapters::sftp::internal
