// oned's DATASTORE_MAD line protocol (docs/oned-protocol.md#line-grammar), as
// pure functions: what a line from oned says, and the lines written back.
//
//   oned -> host:  INIT | FINALIZE | <ACTION>  <id> <base64 DS_DRIVER_ACTION_DATA>
//   host -> oned:  INIT SUCCESS | <ACTION> SUCCESS|FAILURE <id> <info> | LOG <E|W|I|D> <id> <text>
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace oneds::host::mad {

struct parsed_line {
    enum class kind {
        empty,            // blank: ignored
        init,             // INIT
        finalize,         // FINALIZE
        request,          // <ACTION> <id> <payload>
        missing_payload,  // <ACTION> <id>: answered with a FAILURE
        malformed,        // no id: logged and ignored (no id to answer)
    };
    kind what = kind::empty;
    std::string action;  // as oned sent it, e.g. "MONITOR"
    std::int64_t id = 0;
    std::string payload;  // base64
};

// Tokens are separated by runs of blanks (oned writes two after the action);
// a trailing '\r' has already been dropped.
parsed_line parse_line(std::string_view line);

// The longest request line the host takes from oned: a payload of 32 MiB (the
// limit action mode puts on stdin) plus room for the action and id. A longer
// one is answered with a FAILURE naming its size (oversized_reply_text) and
// never stored whole.
inline constexpr std::size_t k_max_request_line = (std::size_t{32} << 20) + 4096;
std::string oversized_reply_text(std::uint64_t line_bytes);

// "<ACTION> SUCCESS|FAILURE <id> <info>". oned base64-decodes the info of
// MONITOR on success and failure alike, so MONITOR's text is encoded here;
// for the rest the text becomes one line. Empty info is "-".
std::string reply_line(std::string_view action, std::int64_t id, bool success, std::string_view text);

// "LOG <level> <id> <text>", the text made one line; level E, W, D or I (any
// other becomes I).
std::string log_line(char level, std::int64_t id, std::string_view text);

}  // namespace oneds::host::mad
