#include "adapters/oned/internal/reply.hpp"

#include <xmlrpc-c/base.hpp>

#include <vector>

namespace oneds::adapters::oned::internal {
namespace {

ports::error malformed(const std::string &method, const std::string &why) {
    return {ports::error_kind::io, method + ": malformed reply from oned: " + why, 0};
}

std::string xml_escaped(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out += c;
        }
    }
    return out;
}

void replace_all(std::string &text, std::string_view what, std::string_view with) {
    if (what.empty()) return;
    for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + with.size()))
        text.replace(pos, what.size(), with);
}

}  // namespace

ports::error_kind kind_for_one_code(std::int32_t code) noexcept {
    switch (code) {
        case ports::one_authentication:
        case ports::one_authorization: return ports::error_kind::permission;
        case ports::one_no_exists: return ports::error_kind::not_found;
        default: return ports::error_kind::io;
    }
}

ports::result<ports::rpc_result> decode_reply(const std::string &method, const xmlrpc_c::value &reply) {
    if (reply.type() != xmlrpc_c::value::TYPE_ARRAY) return malformed(method, "not an array");
    const std::vector<xmlrpc_c::value> items = xmlrpc_c::value_array(reply).vectorValueValue();
    if (items.size() < 2) return malformed(method, "fewer than 2 elements");
    if (items[0].type() != xmlrpc_c::value::TYPE_BOOLEAN) return malformed(method, "first element is not a boolean");
    const bool ok = xmlrpc_c::value_boolean(items[0]);
    const xmlrpc_c::value &body = items[1];

    if (!ok) {
        if (body.type() != xmlrpc_c::value::TYPE_STRING) return malformed(method, "failure without a message");
        // A failure without a code is still a failure; oned always sends one.
        std::int32_t code = 0;
        if (items.size() > 2 && items[2].type() == xmlrpc_c::value::TYPE_INT) code = xmlrpc_c::value_int(items[2]);
        const std::string message = xmlrpc_c::value_string(body);
        return ports::error{kind_for_one_code(code), method + ": " + message + " (code " + std::to_string(code) + ")",
                            code};
    }

    // The body is built before the result; GCC 12 with -fsanitize=address
    // reports a false maybe-uninitialized on the other way round.
    ports::rpc_result out;
    switch (body.type()) {
        case xmlrpc_c::value::TYPE_INT: out.body = static_cast<std::int32_t>(xmlrpc_c::value_int(body)); break;
        case xmlrpc_c::value::TYPE_I8: out.body = static_cast<std::int64_t>(xmlrpc_c::value_i8(body)); break;
        case xmlrpc_c::value::TYPE_STRING: out.body = std::string(xmlrpc_c::value_string(body)); break;
        case xmlrpc_c::value::TYPE_BOOLEAN: out.body = static_cast<bool>(xmlrpc_c::value_boolean(body)); break;
        default: return malformed(method, "body of XML-RPC type " + std::to_string(static_cast<int>(body.type())));
    }
    return out;
}

scrubber::scrubber(std::string session) : session_(std::move(session)) {
    if (auto colon = session_.find(':'); colon != std::string::npos) password_ = session_.substr(colon + 1);
    // A server_cipher session "<server>:<user>:<token>": the token alone too.
    if (auto colon = session_.rfind(':'); colon != std::string::npos && session_.substr(colon + 1) != password_)
        token_ = session_.substr(colon + 1);
}

std::string scrubber::operator()(std::string_view text) const {
    std::string out(text);
    // Longest first, so the session is masked whole rather than as
    // "user:<redacted>"; the XML-escaped forms cover text a server quoted
    // back from the request it received.
    replace_all(out, session_, mask);
    replace_all(out, xml_escaped(session_), mask);
    if (password_.size() >= min_secret_length) {
        replace_all(out, password_, mask);
        replace_all(out, xml_escaped(password_), mask);
    }
    if (token_.size() >= min_secret_length) {
        replace_all(out, token_, mask);
        replace_all(out, xml_escaped(token_), mask);
    }
    return out;
}

ports::error scrubber::operator()(ports::error e) const {
    e.message = (*this)(e.message);
    return e;
}

}  // namespace oneds::adapters::oned::internal
