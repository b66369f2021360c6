#include "common/base64.hpp"

#include <openssl/evp.h>

#include <vector>

namespace oneds::common {

std::string base64_encode(std::string_view data) {
    std::string out(4 * ((data.size() + 2) / 3), '\0');
    if (data.empty()) return out;
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                                  reinterpret_cast<const unsigned char *>(data.data()), static_cast<int>(data.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    std::string clean;
    clean.reserve(text.size());
    for (char c : text) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f') continue;
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                        c == '/' || c == '=';
        if (!ok) return std::nullopt;
        clean.push_back(c);
    }
    if (clean.size() % 4 != 0) return std::nullopt;
    if (clean.empty()) return std::string();
    // '=' only as the last one or two characters.
    const auto first_pad = clean.find('=');
    if (first_pad != std::string::npos && first_pad < clean.size() - 2) return std::nullopt;
    if (first_pad != std::string::npos && first_pad == clean.size() - 2 && clean.back() != '=') return std::nullopt;
    std::string out(clean.size() / 4 * 3, '\0');
    const int n =
        EVP_DecodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                        reinterpret_cast<const unsigned char *>(clean.data()), static_cast<int>(clean.size()));
    if (n < 0) return std::nullopt;
    // EVP_DecodeBlock counts padding as zero bytes; drop them.
    std::size_t size = static_cast<std::size_t>(n);
    if (clean.ends_with("=="))
        size -= 2;
    else if (clean.ends_with('='))
        size -= 1;
    out.resize(size);
    return out;
}

}  // namespace oneds::common
