// Driving non-blocking libssh2 calls against a deadline. Internal.
#pragma once

#include "sftp/internal/handles.hpp"

#include <chrono>
#include <string>

namespace oneds::adapters::sftp::internal {

using clock_type = std::chrono::steady_clock;

// Returned by drive() instead of a libssh2 code when the deadline passed.
// Outside libssh2's range so that it cannot be mistaken for one of its codes.
constexpr int deadline_passed = -10000;

// Waits until the socket is ready in the direction libssh2 last blocked on.
// False once the deadline has passed.
bool wait_socket(LIBSSH2_SESSION *session, int fd, clock_type::time_point deadline);

// Repeats call() while it returns LIBSSH2_ERROR_EAGAIN, polling the socket in
// between; returns its final code, or deadline_passed.
template <typename Call>
int drive(LIBSSH2_SESSION *session, int fd, clock_type::time_point deadline, Call &&call) {
    for (;;) {
        const int rc = call();
        if (rc != LIBSSH2_ERROR_EAGAIN)
            return rc;
        if (!wait_socket(session, fd, deadline))
            return deadline_passed;
    }
}

// libssh2's text for the last error of session ("" when none).
std::string last_error_text(LIBSSH2_SESSION *session);

// Codes after which the connection itself is gone or unusable, as opposed to
// a refusal the server sent over a healthy connection.
bool is_connection_error(int rc) noexcept;

}  // namespace oneds::adapters::sftp::internal
