// AWS Signature Version 4 for S3 requests (header-based, unsigned-payload
// free: the payload's SHA-256 is always given), and the pieces it is built
// from, exposed for the unit tests that check them against AWS's published
// example.
//
// Nothing here logs or keeps a key: the secret goes in, a signature comes out.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace oneds::adapters::s3::sigv4 {

// SHA-256 of data as 64 lower-case hex digits.
std::string sha256_hex(std::string_view data);
// The SHA-256 of an empty payload.
inline constexpr std::string_view empty_payload_hash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Percent-encodes every byte except A-Z a-z 0-9 - . _ ~ (and '/' when
// keep_slash), with upper-case hex: AWS's UriEncode().
std::string uri_encode(std::string_view text, bool keep_slash);

// "20130524T000000Z" for a point in time (UTC).
std::string amz_date(std::chrono::system_clock::time_point when);

struct request {
    std::string method;         // "GET", "HEAD"
    std::string canonical_uri;  // already encoded (uri_encode(path, true)), starting with '/'
    // Query parameters, not encoded; empty values allowed ("location" -> "location=").
    std::vector<std::pair<std::string, std::string>> query;
    // Headers to sign (any case); must include host and x-amz-date.
    std::vector<std::pair<std::string, std::string>> headers;
    std::string payload_hash = std::string(empty_payload_hash);
};

// The query string in canonical form (encoded, sorted): also what goes on the
// request line, so that both agree.
std::string canonical_query(const request &r);
// "host;range;x-amz-content-sha256;x-amz-date"
std::string signed_headers(const request &r);
std::string canonical_request(const request &r);
// amz_date: "YYYYMMDDTHHMMSSZ"; the scope's date is its first 8 characters.
std::string string_to_sign(std::string_view amz_date, std::string_view region, std::string_view canonical_request_text);
// Hex signature of string_to_sign with the key derived from secret, date, region and "s3".
std::string signature(std::string_view secret, std::string_view amz_date, std::string_view region,
                      std::string_view string_to_sign_text);
// The Authorization header's value.
std::string authorization(std::string_view access_key_id, std::string_view secret, std::string_view region,
                          std::string_view amz_date, const request &r);

}  // namespace oneds::adapters::s3::sigv4
