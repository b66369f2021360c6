// The one place where oned's replies become results, and where secrets are
// scrubbed from text. Internal to the adapter; the header is visible so that
// the mapping can be tested without a server.
#pragma once

#include "plugin/ports/one_api.hpp"

#include <string>
#include <string_view>

namespace xmlrpc_c {
class value;
}

namespace oneds::adapters::oned::internal {

// permission for AUTHENTICATION and AUTHORIZATION, not_found for NO_EXISTS,
// io for every other code (including ones oned may add later).
ports::error_kind kind_for_one_code(std::int32_t code) noexcept;

// oned's reply array: [true, body, 0] gives body (int, i8, string or bool);
// [false, message, code, ...] gives "<method>: <message> (code <code>)" with
// error::code = code. Anything else (not an array, too short, a body of
// another type) is kind io, "malformed reply". Does not scrub.
ports::result<ports::rpc_result> decode_reply(const std::string &method, const xmlrpc_c::value &reply);

// Removes a session from text: the whole "user:password" string, and the
// password alone when it is at least min_secret_length characters long
// (a shorter one cannot be told apart from ordinary words, and replacing
// every "ab" would wreck the message without hiding anything). A
// server_cipher session "<server>:<user>:<token>" also loses its token alone.
class scrubber {
public:
    static constexpr std::size_t min_secret_length = 4;
    static constexpr std::string_view mask = "<redacted>";

    explicit scrubber(std::string session);
    std::string operator()(std::string_view text) const;
    ports::error operator()(ports::error e) const;

private:
    std::string session_;
    std::string password_;
    std::string token_;
};

}  // namespace oneds::adapters::oned::internal
