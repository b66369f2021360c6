#include "adapters/s3/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <stdexcept>

namespace oneds::adapters::s3::sigv4 {

namespace {

std::string hex(const unsigned char *data, std::size_t size) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(size * 2);
    for (std::size_t i = 0; i < size; ++i) {
        out.push_back(digits[data[i] >> 4]);
        out.push_back(digits[data[i] & 0x0f]);
    }
    return out;
}

std::string hmac(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char *>(data.data()), data.size(), out, &size) == nullptr) {
        throw std::runtime_error("HMAC-SHA256 failed");
    }
    return std::string(reinterpret_cast<const char *>(out), size);
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (char &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Leading and trailing blanks removed, inner runs of blanks made one space.
std::string trimmed(std::string_view text) {
    std::string out;
    bool blank = false;
    for (const char c : text) {
        if (c == ' ' || c == '\t') {
            blank = !out.empty();
            continue;
        }
        if (blank) out.push_back(' ');
        blank = false;
        out.push_back(c);
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> sorted_headers(const request &r) {
    std::vector<std::pair<std::string, std::string>> headers;
    headers.reserve(r.headers.size());
    for (const auto &[name, value] : r.headers) headers.emplace_back(lower(name), trimmed(value));
    std::sort(headers.begin(), headers.end());
    return headers;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char *>(data.data()), data.size(), digest);
    return hex(digest, sizeof digest);
}

std::string uri_encode(std::string_view text, bool keep_slash) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(digits[u >> 4]);
            out.push_back(digits[u & 0x0f]);
        }
    }
    return out;
}

std::string amz_date(std::chrono::system_clock::time_point when) {
    const std::time_t t = std::chrono::system_clock::to_time_t(when);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &tm);
    return text;
}

std::string canonical_query(const request &r) {
    std::vector<std::pair<std::string, std::string>> encoded;
    encoded.reserve(r.query.size());
    for (const auto &[name, value] : r.query) encoded.emplace_back(uri_encode(name, false), uri_encode(value, false));
    std::sort(encoded.begin(), encoded.end());
    std::string out;
    for (const auto &[name, value] : encoded) {
        if (!out.empty()) out.push_back('&');
        out += name;
        out.push_back('=');
        out += value;
    }
    return out;
}

std::string signed_headers(const request &r) {
    std::string out;
    for (const auto &header : sorted_headers(r)) {
        if (!out.empty()) out.push_back(';');
        out += header.first;
    }
    return out;
}

std::string canonical_request(const request &r) {
    std::string out = r.method + '\n' + r.canonical_uri + '\n' + canonical_query(r) + '\n';
    for (const auto &[name, value] : sorted_headers(r)) out += name + ':' + value + '\n';
    out += '\n' + signed_headers(r) + '\n' + r.payload_hash;
    return out;
}

std::string string_to_sign(std::string_view amz_date, std::string_view region,
                           std::string_view canonical_request_text) {
    std::string out = "AWS4-HMAC-SHA256\n";
    out += amz_date;
    out += '\n';
    out += amz_date.substr(0, 8);
    out += '/';
    out += region;
    out += "/s3/aws4_request\n";
    out += sha256_hex(canonical_request_text);
    return out;
}

std::string signature(std::string_view secret, std::string_view amz_date, std::string_view region,
                      std::string_view string_to_sign_text) {
    std::string key = "AWS4";
    key += secret;
    std::string derived = hmac(key, amz_date.substr(0, 8));
    derived = hmac(derived, region);
    derived = hmac(derived, "s3");
    derived = hmac(derived, "aws4_request");
    const std::string raw = hmac(derived, string_to_sign_text);
    std::fill(key.begin(), key.end(), '\0');
    std::fill(derived.begin(), derived.end(), '\0');
    return hex(reinterpret_cast<const unsigned char *>(raw.data()), raw.size());
}

std::string authorization(std::string_view access_key_id, std::string_view secret, std::string_view region,
                          std::string_view amz_date, const request &r) {
    const std::string sts = string_to_sign(amz_date, region, canonical_request(r));
    std::string out = "AWS4-HMAC-SHA256 Credential=";
    out += access_key_id;
    out += '/';
    out += amz_date.substr(0, 8);
    out += '/';
    out += region;
    out += "/s3/aws4_request,SignedHeaders=";
    out += signed_headers(r);
    out += ",Signature=";
    out += signature(secret, amz_date, region, sts);
    return out;
}

}  // namespace oneds::adapters::s3::sigv4
