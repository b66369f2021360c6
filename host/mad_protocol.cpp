#include "host/mad_protocol.hpp"

#include "common/base64.hpp"
#include "common/strings.hpp"

#include <charconv>

namespace oneds::host::mad {

parsed_line parse_line(std::string_view line) {
    parsed_line out;
    const auto tokens = common::split_ws(line);
    if (tokens.empty()) return out;
    if (tokens.size() == 1 && tokens[0] == "INIT") {
        out.what = parsed_line::kind::init;
        return out;
    }
    if (tokens.size() == 1 && tokens[0] == "FINALIZE") {
        out.what = parsed_line::kind::finalize;
        return out;
    }
    out.action = tokens[0];
    const auto &id = tokens.size() >= 2 ? tokens[1] : std::string();
    const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), out.id);
    if (id.empty() || ec != std::errc{} || end != id.data() + id.size()) {
        out.what = parsed_line::kind::malformed;
        return out;
    }
    if (tokens.size() < 3) {
        out.what = parsed_line::kind::missing_payload;
        return out;
    }
    out.what = parsed_line::kind::request;
    out.payload = tokens[2];
    return out;
}

std::string oversized_reply_text(std::uint64_t line_bytes) {
    return "request of " + std::to_string(line_bytes) + " bytes refused: the limit is " +
           std::to_string(k_max_request_line) + " bytes (driver action data of 32 MiB)";
}

std::string reply_line(std::string_view action, std::int64_t id, bool success, std::string_view text) {
    std::string info;
    if (action == "MONITOR") {
        info = text.empty() ? "-" : common::base64_encode(text);
    } else {
        info = common::one_line(text);
        if (info.empty()) info = "-";
    }
    return std::string(action) + (success ? " SUCCESS " : " FAILURE ") + std::to_string(id) + " " + info;
}

std::string log_line(char level, std::int64_t id, std::string_view text) {
    const char lv = (level == 'E' || level == 'W' || level == 'D') ? level : 'I';
    return std::string("LOG ") + lv + " " + std::to_string(id) + " " + common::one_line(text);
}

}  // namespace oneds::host::mad
