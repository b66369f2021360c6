#include "adapters/sftp/internal/io.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>

namespace oneds::adapters::sftp::internal {

bool ensure_libssh2_initialised() noexcept {
    static const bool initialised = libssh2_init(0) == 0;
    return initialised;
}

int wait_socket(LIBSSH2_SESSION *session, int fd, const limit &lim) {
    const int directions = libssh2_session_block_directions(session);
    short events = 0;
    if ((directions & LIBSSH2_SESSION_BLOCK_INBOUND) != 0) events |= POLLIN;
    if ((directions & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0) events |= POLLOUT;
    // EAGAIN without a direction should not happen; waiting for input (not
    // output, which is almost always possible) avoids a busy loop if it does.
    if (events == 0) events = POLLIN;
    for (;;) {
        if (lim.stop.stop_requested()) return stopped;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(lim.deadline - clock_type::now());
        if (left.count() <= 0) return deadline_passed;
        pollfd pfd{fd, events, 0};
        const int rc = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count() + 1, stop_poll.count())));
        if (rc > 0) return 0;                    // ready, or an error/hangup that the next libssh2 call reports
        if (rc < 0 && errno != EINTR) return 0;  // let libssh2 meet the broken descriptor and say so
    }
}

std::string last_error_text(LIBSSH2_SESSION *session) {
    char *message = nullptr;
    int length = 0;
    libssh2_session_last_error(session, &message, &length, 0);
    if (message == nullptr || length <= 0) return {};
    return std::string(message, static_cast<std::size_t>(length));
}

bool is_connection_error(int rc) noexcept {
    switch (rc) {
        case deadline_passed:
        case stopped:
        case LIBSSH2_ERROR_SOCKET_NONE:
        case LIBSSH2_ERROR_BANNER_RECV:
        case LIBSSH2_ERROR_BANNER_SEND:
        case LIBSSH2_ERROR_INVALID_MAC:
        case LIBSSH2_ERROR_KEX_FAILURE:
        case LIBSSH2_ERROR_SOCKET_SEND:
        case LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE:
        case LIBSSH2_ERROR_TIMEOUT:
        case LIBSSH2_ERROR_DECRYPT:
        case LIBSSH2_ERROR_SOCKET_DISCONNECT:
        case LIBSSH2_ERROR_PROTO:
        case LIBSSH2_ERROR_CHANNEL_FAILURE:
        case LIBSSH2_ERROR_CHANNEL_CLOSED:
        case LIBSSH2_ERROR_CHANNEL_EOF_SENT:
        case LIBSSH2_ERROR_SOCKET_TIMEOUT:
        case LIBSSH2_ERROR_SOCKET_RECV:
        case LIBSSH2_ERROR_ENCRYPT:
        case LIBSSH2_ERROR_BAD_SOCKET: return true;
        default: return false;
    }
}

}  // namespace oneds::adapters::sftp::internal
