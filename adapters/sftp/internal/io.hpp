// Driving non-blocking libssh2 calls against a deadline. Internal.
#pragma once

#include "adapters/sftp/internal/handles.hpp"

#include <chrono>
#include <stop_token>
#include <string>

namespace oneds::adapters::sftp::internal {

using clock_type = std::chrono::steady_clock;

// How long a step may wait: until a deadline, or until its request stops.
struct limit {
    clock_type::time_point deadline;
    std::stop_token stop;
};

// Returned by drive() instead of a libssh2 code when the deadline passed or
// the request stopped. Outside libssh2's range so that they cannot be
// mistaken for its codes.
constexpr int deadline_passed = -10000;
constexpr int stopped = -10001;

// A wait on a socket polls at most this long at a time, so that a stop is
// noticed within it.
constexpr std::chrono::milliseconds stop_poll{100};

// Waits until the socket is ready in the direction libssh2 last blocked on.
// Returns 0 when ready, deadline_passed or stopped.
int wait_socket(LIBSSH2_SESSION *session, int fd, const limit &lim);

// Repeats call() while it returns LIBSSH2_ERROR_EAGAIN, polling the socket in
// between; returns its final code, deadline_passed or stopped.
template <typename Call>
int drive(LIBSSH2_SESSION *session, int fd, const limit &lim, Call &&call) {
    for (;;) {
        const int rc = call();
        if (rc != LIBSSH2_ERROR_EAGAIN) return rc;
        if (const int waited = wait_socket(session, fd, lim); waited != 0) return waited;
    }
}

// libssh2's text for the last error of session ("" when none).
std::string last_error_text(LIBSSH2_SESSION *session);

// Codes after which the connection itself is gone or unusable, as opposed to
// a refusal the server sent over a healthy connection.
bool is_connection_error(int rc) noexcept;

}  // namespace oneds::adapters::sftp::internal
