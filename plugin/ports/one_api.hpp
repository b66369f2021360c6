// Port: oned's XML-RPC API (docs/oned-protocol.md#the-oned-api), for the actions that
// create or update OpenNebula objects (restore creates images and a VM
// template; datastore health goes back as template attributes).
//
// Every call is authenticated by the adapter with the session it was built
// with ("user:password"); the session is never logged or put in an error.
// Replies are oned's [ok, body, errcode]: the adapter decodes them in one
// place, and a false ok becomes an error carrying oned's text and code.
#pragma once

#include "plugin/ports/result.hpp"

#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <variant>
#include <vector>

namespace oneds::ports {

// XML-RPC scalar values oned's methods take and return.
using rpc_value = std::variant<std::int32_t, std::int64_t, bool, std::string>;

// oned's error codes (ErrorCode in include/Request.h), for rpc_error::code.
enum one_error_code : std::int32_t {
    one_success = 0x0000,
    one_authentication = 0x0100,
    one_authorization = 0x0200,
    one_no_exists = 0x0400,
    one_action = 0x0800,
    one_rpc_api = 0x1000,
    one_internal = 0x2000,
    one_allocate = 0x4000,
    one_locked = 0x8000,
    one_replication = 0x10000,
};

struct rpc_result {
    rpc_value body;  // the second element of oned's reply (XML text, an id, ...)
};

class one_api {
public:
    virtual ~one_api() = default;
    // Calls `method` (full name, e.g. "one.image.allocate") with the session
    // prepended to params. On oned's [false, msg, code] returns an error whose
    // message is "<method>: <oned's message> (code <code>)", kind permission
    // for authentication/authorisation codes, not_found for NO_EXISTS, io for
    // the rest, with error::code = oned's code; transport failures (refused,
    // timeout) are kind unreachable with code 0. A stop abandons the call at
    // once (kind cancelled); oned may still carry it out.
    virtual result<rpc_result> call(const std::string &method, const std::vector<rpc_value> &params,
                                    const std::stop_token &stop) = 0;
    // Where it talks to, for messages: the endpoint URL (no credentials).
    virtual std::string describe() const = 0;
};

// Port: clients of oned that act as a named user, so that oned itself checks
// that user's ACLs, quotas and restricted attributes and the objects made
// belong to the user and the user's group (restore, as the stock driver does:
// docs/oned-protocol.md#restore-as-the-requesting-user).
class one_api_as_user {
public:
    virtual ~one_api_as_user() = default;
    // A client whose every call runs as `username`. The credentials that
    // allow it are read now: a missing, unreadable or malformed source is an
    // error here (kind not_found, permission or invalid) that names where it
    // looked and how to fix it, never what it read. Whether oned accepts
    // them shows in the first call (kind permission, code one_authentication).
    virtual result<std::unique_ptr<one_api>> as_user(const std::string &username) = 0;
};

}  // namespace oneds::ports
