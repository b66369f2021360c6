// Small string helpers shared by the host and the plugins.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace oneds::common {

// Splits on runs of ASCII white space; no empty tokens.
std::vector<std::string> split_ws(std::string_view s);
// Splits on a separator character; keeps empty tokens.
std::vector<std::string> split(std::string_view s, char sep);
std::string_view trim(std::string_view s);
// Makes text safe for one protocol line: CR and LF become spaces, trailing
// white space is dropped.
std::string one_line(std::string_view s);
std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);

}  // namespace oneds::common
