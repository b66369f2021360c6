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

// A value as it may appear inside an error message: printable ASCII as it is,
// every other byte (control characters, Unicode separators, ...) as \xNN, so
// that what was wrong can be seen and nothing reaches a terminal or a log line
// that acts on it. Cut to max bytes of input, with "..." when cut.
std::string printable(std::string_view s, std::size_t max = 200);

// Text from another program (restic, ssh) made safe to show: terminal escape
// sequences (CSI, OSC and other ESC sequences) removed, other C0 controls but
// tab and newline removed, C1 controls (U+0080..U+009F as UTF-8) removed,
// carriage returns dropped. Other UTF-8 text is kept.
std::string strip_terminal_controls(std::string_view s);

}  // namespace oneds::common
