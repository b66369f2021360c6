// The result type at port boundaries: a value or an error with a kind and a
// message. Adapters may throw inside; nothing throws across a port.
// Hand-written rather than boost::system::result so that the port headers,
// which plugin authors read first, need nothing but the standard library.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace oneds::ports {

enum class error_kind {
    not_found,    // the path / host / object does not exist
    permission,   // authentication or authorisation refused
    host_key,     // server host key unknown or changed
    unreachable,  // cannot connect, connection lost, timeout
    invalid,      // bad input (names the input)
    unsupported,  // the backend cannot do this (e.g. statvfs on S3)
    cancelled,
    io,  // any other failure
};

struct error {
    error_kind kind = error_kind::io;
    std::string message;    // human-readable, no secrets
    std::int32_t code = 0;  // the remote system's own code where it has one (oned's errcode)
};

template <typename T>
class result {
public:
    result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
    result(error e) : v_(std::move(e)) {}      // NOLINT(google-explicit-constructor)
    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }
    T &value() & { return std::get<0>(v_); }
    const T &value() const & { return std::get<0>(v_); }
    T &&value() && { return std::get<0>(std::move(v_)); }
    T &operator*() & { return value(); }
    const T &operator*() const & { return value(); }
    T *operator->() { return &value(); }
    const T *operator->() const { return &value(); }
    const error &err() const { return std::get<1>(v_); }

private:
    std::variant<T, error> v_;
};

// The error of a call that was stopped through its stop_token.
inline error cancelled_error() { return {error_kind::cancelled, "cancelled", 0}; }

struct none {};
using status = result<none>;
inline status ok() { return none{}; }

}  // namespace oneds::ports
