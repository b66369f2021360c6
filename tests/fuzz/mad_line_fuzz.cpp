// oned's line protocol (host/mad_protocol.hpp) and the router of its payload
// (host/driver_router.hpp): any line parses to one of the kinds without a
// crash; a request carries an action, an id and a payload without blanks;
// the reply and log lines built from any text are one line, and MONITOR's
// info decodes back to the text.
#include "common/base64.hpp"
#include "host/driver_router.hpp"
#include "host/mad_protocol.hpp"

#include "tests/fuzz/fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace {

bool one_line(const std::string &s) { return s.find_first_of("\r\n") == std::string::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    using namespace oneds::host;
    using kind = mad::parsed_line::kind;
    const std::string_view line(reinterpret_cast<const char *>(data), size);

    const auto p = mad::parse_line(line);
    switch (p.what) {
        case kind::empty:
        case kind::init:
        case kind::finalize:
        case kind::malformed: break;
        case kind::missing_payload: FUZZ_CHECK(!p.action.empty()); break;
        case kind::request: {
            FUZZ_CHECK(!p.action.empty() && !p.payload.empty());
            FUZZ_CHECK(p.payload.find_first_of(" \t\r\n") == std::string::npos);
            // The request re-formed the way oned writes it parses the same.
            const auto again = mad::parse_line(p.action + "  " + std::to_string(p.id) + " " + p.payload);
            FUZZ_CHECK(again.what == kind::request && again.action == p.action && again.id == p.id &&
                       again.payload == p.payload);
            const auto routed = route_payload(p.payload);
            if (const auto *r = std::get_if<routed_request>(&routed))
                FUZZ_CHECK(oneds::common::base64_decode(p.payload) == r->document);
            break;
        }
    }

    for (const bool success : {true, false}) {
        const auto reply = mad::reply_line(p.action.empty() ? "RM" : p.action, p.id, success, line);
        FUZZ_CHECK(one_line(reply));
        const auto monitor = mad::reply_line("MONITOR", p.id, success, line);
        FUZZ_CHECK(one_line(monitor));
        if (!line.empty()) {
            const auto info = monitor.substr(monitor.rfind(' ') + 1);
            FUZZ_CHECK(oneds::common::base64_decode(info) == line);
        }
    }
    FUZZ_CHECK(one_line(mad::log_line(size ? static_cast<char>(data[0]) : 'I', p.id, line)));
    return 0;
}
