#include "adapters/s3/endpoint.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <charconv>

namespace oneds::adapters::s3 {

namespace {

using ports::error;
using ports::error_kind;

error bad(const std::string &why) { return error{error_kind::invalid, "RESTIC_S3_ENDPOINT " + why}; }

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
    }
    return true;
}

bool ends_with(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_'; }

}  // namespace

ports::result<endpoint> parse_endpoint(std::string_view text) {
    if (starts_with_nocase(text, "s3:")) text.remove_prefix(3);
    while (!text.empty() && text.back() == '/') text.remove_suffix(1);
    endpoint e;
    e.text = std::string(text);
    if (text.empty()) return bad("is empty (expected host[:port] or http(s)://host[:port])");
    if (starts_with_nocase(text, "https://")) {
        text.remove_prefix(8);
    } else if (starts_with_nocase(text, "http://")) {
        e.tls = false;
        e.port = 80;
        text.remove_prefix(7);
    } else if (text.find("://") != std::string_view::npos) {
        return bad("'" + e.text + "' has a scheme other than http:// or https://");
    }
    // Not echoed: user information may be a password.
    if (text.find('@') != std::string_view::npos) return bad("must not carry user information (user@)");
    if (text.find_first_of("/?#") != std::string_view::npos) {
        return bad("'" + e.text + "' has a path; give host[:port] only (the bucket is separate)");
    }
    std::string_view host = text;
    std::string_view port;
    if (!host.empty() && host.front() == '[') {
        const auto close = host.find(']');
        if (close == std::string_view::npos) return bad("'" + e.text + "' has an unclosed '[' in its IPv6 address");
        const std::string_view rest = host.substr(close + 1);
        host = host.substr(1, close - 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return bad("'" + e.text + "' has text after its IPv6 address");
            port = rest.substr(1);
            e.explicit_port = true;
        }
        in6_addr addr{};
        if (::inet_pton(AF_INET6, std::string(host).c_str(), &addr) != 1) {
            return bad("'" + e.text + "' has an invalid IPv6 address");
        }
        e.ip_literal = true;
    } else {
        const auto colon = host.rfind(':');
        if (colon != std::string_view::npos) {
            port = host.substr(colon + 1);
            host = host.substr(0, colon);
            e.explicit_port = true;
        }
        if (host.find(':') != std::string_view::npos) {
            return bad("'" + e.text + "': write an IPv6 address in brackets, [address]:port");
        }
        for (const char c : host) {
            if (!name_char(c)) return bad("'" + e.text + "' has a character that cannot be in a host name");
        }
        in_addr addr{};
        e.ip_literal = ::inet_pton(AF_INET, std::string(host).c_str(), &addr) == 1;
    }
    if (host.empty()) return bad("'" + e.text + "' has no host");
    e.host = std::string(host);
    if (e.explicit_port) {
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
            return bad("'" + e.text + "' has an invalid port (1-65535)");
        }
        e.port = static_cast<std::uint16_t>(value);
    }
    return e;
}

std::string host_header(const endpoint &e) {
    std::string out = e.host.find(':') != std::string::npos ? "[" + e.host + "]" : e.host;
    if (e.port != (e.tls ? 443 : 80)) out += ":" + std::to_string(e.port);
    return out;
}

bool use_path_style(const endpoint &e, std::string_view bucket, bool forced) {
    if (forced || e.ip_literal || e.explicit_port) return true;
    std::string host = e.host;
    for (char &c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool aws =
        host == "s3.amazonaws.com" ||
        (host.rfind("s3", 0) == 0 && (ends_with(host, ".amazonaws.com") || ends_with(host, ".amazonaws.com.cn")));
    if (!aws) return true;
    // A bucket name usable as one DNS label (under TLS no dots: the
    // certificate's wildcard covers one label only).
    if (bucket.size() < 3 || bucket.size() > 63) return true;
    for (const char c : bucket) {
        const bool ok = std::islower(static_cast<unsigned char>(c)) != 0 ||
                        std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '-' || (c == '.' && !e.tls);
        if (!ok) return true;
    }
    return bucket.front() == '-' || bucket.back() == '-';
}

}  // namespace oneds::adapters::s3
