#include "common/strings.hpp"

#include <algorithm>
#include <cctype>

namespace oneds::common {
namespace {
bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
}  // namespace

std::vector<std::string> split_ws(std::string_view s) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_ws(s[i])) ++i;
        const auto start = i;
        while (i < s.size() && !is_ws(s[i])) ++i;
        if (i > start) out.emplace_back(s.substr(start, i - start));
    }
    return out;
}

std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (;;) {
        const auto pos = s.find(sep, start);
        out.emplace_back(s.substr(start, pos == std::string_view::npos ? s.npos : pos - start));
        if (pos == std::string_view::npos) break;
        start = pos + 1;
    }
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
    return s;
}

std::string one_line(std::string_view s) {
    std::string out(s);
    std::replace_if(
        out.begin(), out.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
    while (!out.empty() && is_ws(out.back())) out.pop_back();
    return out;
}

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (auto &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string to_upper(std::string_view s) {
    std::string out(s);
    for (auto &c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

std::string printable(std::string_view s, std::size_t max) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    const bool cut = s.size() > max;
    if (cut) s = s.substr(0, max);
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) {
            out += c;
            continue;
        }
        out += "\\x";
        out += hex[u >> 4];
        out += hex[u & 15];
    }
    if (cut) out += "...";
    return out;
}

namespace {
// The length of the valid UTF-8 sequence at s[i] (1..4), or 0 when invalid.
std::size_t utf8_length(std::string_view s, std::size_t i) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    if (b < 0x80) return 1;
    if (b >= 0xc2 && b <= 0xdf)
        n = 2;
    else if (b >= 0xe0 && b <= 0xef)
        n = 3;
    else if (b >= 0xf0 && b <= 0xf4)
        n = 4;
    else
        return 0;
    if (i + n > s.size()) return 0;
    for (std::size_t k = 1; k < n; ++k)
        if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
    return n;
}
}  // namespace

std::string strip_terminal_controls(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        const auto u = static_cast<unsigned char>(s[i]);
        if (u == 0x1b) {  // ESC
            ++i;
            if (i < s.size() && s[i] == '[') {  // CSI: parameters, then a final byte 0x40..0x7e
                ++i;
                while (i < s.size() &&
                       !(static_cast<unsigned char>(s[i]) >= 0x40 && static_cast<unsigned char>(s[i]) <= 0x7e))
                    ++i;
                if (i < s.size()) ++i;
            } else if (i < s.size() && s[i] == ']') {  // OSC: up to BEL or ESC '\\'
                ++i;
                while (i < s.size() && s[i] != '\a' && !(s[i] == 0x1b && i + 1 < s.size() && s[i + 1] == '\\')) ++i;
                if (i < s.size()) i += s[i] == '\a' ? 1 : 2;
            } else if (i < s.size()) {
                ++i;  // a two-byte sequence (ESC c, ESC 7, ...)
            }
            continue;
        }
        const std::size_t n = utf8_length(s, i);
        if (n == 0) {  // not UTF-8: a lone 8-bit control (0x9b is CSI) or garbage
            ++i;
            continue;
        }
        if (n == 2 && u == 0xc2 && static_cast<unsigned char>(s[i + 1]) <= 0x9f) {  // a C1 control
            i += 2;
            continue;
        }
        if (n == 1 && ((u < 0x20 && u != '\t' && u != '\n') || u == 0x7f)) {
            ++i;
            continue;
        }
        out.append(s.substr(i, n));
        i += n;
    }
    return out;
}

}  // namespace oneds::common
