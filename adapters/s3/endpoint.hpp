// RESTIC_S3_ENDPOINT parsed, and the addressing style a bucket gets there.
#pragma once

#include "plugin/ports/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace oneds::adapters::s3 {

struct endpoint {
    bool tls = true;
    std::string host;  // a name or an IP literal (IPv6 without brackets)
    std::uint16_t port = 443;
    bool explicit_port = false;
    bool ip_literal = false;
    std::string text;  // as given, without a leading "s3:" and trailing '/': for messages
};

// "host", "host:port", "http://host[:port]", "https://host[:port]", "[v6]:port",
// with an optional leading "s3:" and trailing '/'. No scheme means https, as
// restic's. Anything else (a path, user information, another scheme, a bad
// port) is error_kind::invalid naming RESTIC_S3_ENDPOINT.
ports::result<endpoint> parse_endpoint(std::string_view text);

// The Host header: host, with ":port" unless it is the scheme's default.
std::string host_header(const endpoint &e);

// Whether requests address the bucket in the path ("/bucket/key") rather than
// in the host name ("bucket.host"). As restic's minio client does with its
// default lookup, virtual-host style only for an Amazon S3 host name without
// a port and a bucket that is a plain DNS label (no dots under TLS, whose
// certificate would not match); path style everywhere else, and when forced.
bool use_path_style(const endpoint &e, std::string_view bucket, bool forced);

}  // namespace oneds::adapters::s3
