#include "plugin/restic/model/names.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace oneds::restic {
namespace {

bool ascii_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

bool dns_name(std::string_view s) {
    if (!s.empty() && s.back() == '.') s.remove_suffix(1);
    if (s.empty() || s.size() > 253) return false;
    std::size_t start = 0;
    while (start <= s.size()) {
        const auto dot = s.find('.', start);
        const auto label = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (const char c : label)
            if (!ascii_alnum(c) && c != '-' && c != '_') return false;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return true;
}

bool ipv4_literal(std::string_view s) {
    // inet_pton reads a C string: a NUL would end the literal early.
    if (s.size() > 15 || s.find('\0') != std::string_view::npos) return false;
    const std::string text(s);
    in_addr a{};
    return ::inet_pton(AF_INET, text.c_str(), &a) == 1;
}

}  // namespace

bool is_ipv6_literal(std::string_view host) {
    if (host.size() < 4 || host.size() > 47 || host.front() != '[' || host.back() != ']') return false;
    if (host.find('\0') != std::string_view::npos) return false;  // inet_pton would stop at it
    const std::string inner(host.substr(1, host.size() - 2));
    in6_addr a{};
    return ::inet_pton(AF_INET6, inner.c_str(), &a) == 1;  // no zone id ("%eth0"): refused
}

bool split_host_dir(std::string_view arg, std::string &host, std::string &dir) {
    std::size_t colon = std::string_view::npos;
    if (!arg.empty() && arg.front() == '[') {
        const auto close = arg.find("]:");
        if (close != std::string_view::npos) colon = close + 1;
    } else {
        colon = arg.find(':');
    }
    if (colon == std::string_view::npos || colon == 0) return false;
    host = std::string(arg.substr(0, colon));
    dir = std::string(arg.substr(colon + 1));
    return true;
}

std::string bare_host(std::string_view host) {
    if (is_ipv6_literal(host)) return std::string(host.substr(1, host.size() - 2));
    return std::string(host);
}

std::string split_safe_word_problem(std::string_view word) {
    if (word.empty()) return "must not be empty";
    if (word.front() == '-') return "must not start with '-'";
    for (const char c : word) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f) return "must be printable ASCII without blanks or control characters";
        if (c == '"' || c == '\'' || c == '\\') return "must not hold quotes or backslashes";
    }
    return {};
}

bool has_dot_segment(std::string_view path) noexcept {
    std::size_t start = 0;
    while (start <= path.size()) {
        const auto slash = path.find('/', start);
        const auto part = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
        if (part == "." || part == "..") return true;
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return false;
}

bool is_decimal_id(std::string_view s) noexcept {
    return !s.empty() && s.size() <= 10 && s.find_first_not_of("0123456789") == std::string_view::npos;
}

std::string host_name_problem(std::string_view host, const std::function<bool(std::string_view)> &is_alias) {
    constexpr const char *what =
        "must be a host name (letters, digits, '-', '_' and '.'), an IPv4 address or a bracketed IPv6 address";
    if (host.empty()) return "must not be empty";
    if (host.front() == '-') return std::string("must not start with '-': it ") + what;
    if (dns_name(host) || ipv4_literal(host) || is_ipv6_literal(host)) return {};
    const auto alias_char = [](char c) { return ascii_alnum(c) || c == '.' || c == '_' || c == '-' || c == '+'; };
    if (is_alias && std::all_of(host.begin(), host.end(), alias_char) && is_alias(host)) return {};
    return what;
}

std::string user_name_problem(std::string_view user) {
    constexpr const char *what =
        "must be a user name: a letter or '_', then letters, digits, '_', '.' or '-', at most 32 characters";
    if (user.empty() || user.size() > 32) return what;
    if (!(ascii_alnum(user.front()) && !(user.front() >= '0' && user.front() <= '9')) && user.front() != '_')
        return user.front() == '-' ? std::string("must not start with '-': it ") + what : what;
    for (const char c : user)
        if (!ascii_alnum(c) && c != '_' && c != '.' && c != '-') return what;
    return {};
}

std::string absolute_path_problem(std::string_view path) {
    if (path.empty() || path.front() != '/') return "must be an absolute path";
    for (std::size_t i = 0; i < path.size(); ++i) {
        const auto u = static_cast<unsigned char>(path[i]);
        if (u < 0x20 || u == 0x7f) return "must not hold control characters";
        // C1 controls (U+0080..U+009F) are 0xC2 0x80..0x9F in UTF-8.
        if (u == 0xc2 && i + 1 < path.size() && static_cast<unsigned char>(path[i + 1]) >= 0x80 &&
            static_cast<unsigned char>(path[i + 1]) <= 0x9f)
            return "must not hold control characters";
    }
    return {};
}

}  // namespace oneds::restic
