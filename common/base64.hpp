// Base64 as oned writes it (OpenSSL EVP_EncodeBlock: one line, '=' padding) and
// as the stock scripts read it (line breaks and surrounding blanks tolerated).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace oneds::common {

std::string base64_encode(std::string_view data);
// Ignores ASCII white space anywhere (vm.xml is stored in 60-column lines).
// Returns nullopt on any other character outside the alphabet or bad padding.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace oneds::common
