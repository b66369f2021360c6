#include "adapters/oned/xmlrpc_one_api.hpp"

#include "adapters/oned/internal/reply.hpp"
#include "common/strings.hpp"

#include <xmlrpc-c/base.h>
#include <xmlrpc-c/base.hpp>
#include <xmlrpc-c/client_transport.hpp>
#include <xmlrpc-c/girerr.hpp>
#include <xmlrpc-c/xml.hpp>

#include <algorithm>
#include <chrono>
#include <charconv>
#include <cmath>
#include <limits>
#include <mutex>
#include <sstream>

namespace oneds::adapters::oned {
namespace {

using ports::error;
using ports::error_kind;

// What one call's transaction reports back. Written by xmlrpc-c's callbacks,
// which run on the calling thread inside finishAsync(), so no locking.
struct call_state {
    bool done = false;
    bool transport_ok = false;
    bool too_large = false;
    std::string response;  // the reply XML, or the transport's error text
    std::size_t limit = 0;
    int interrupt = 0;  // xmlrpc-c aborts the transfer once this is non-zero
};

class transaction final : public xmlrpc_c::xmlTransaction {
public:
    explicit transaction(std::shared_ptr<call_state> state) : state_(std::move(state)) {}

    void finish(const std::string &response_xml) const override {
        state_->done = true;
        state_->transport_ok = true;
        state_->response = response_xml;
    }
    void finishErr(const girerr::error &e) const override {
        state_->done = true;
        state_->response = e.what();
    }
    // Stops an oversized reply as soon as its announced length or the bytes
    // received so far exceed the limit, instead of buffering all of it.
    void progress(const xmlrpc_progress_data &data) const override {
        const auto limit = static_cast<double>(state_->limit);
        if (data.response.total > limit || data.response.now > limit) {
            state_->too_large = true;
            state_->interrupt = 1;
        }
    }

private:
    std::shared_ptr<call_state> state_;
};

xmlrpc_c::value to_xmlrpc(const ports::rpc_value &v) {
    return std::visit(
        [](const auto &x) -> xmlrpc_c::value {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::int32_t>)
                return xmlrpc_c::value_int(x);
            else if constexpr (std::is_same_v<T, std::int64_t>)
                return xmlrpc_c::value_i8(x);
            else if constexpr (std::is_same_v<T, bool>)
                return xmlrpc_c::value_boolean(x);
            else
                return xmlrpc_c::value_string(x);
        },
        v);
}

// xmlrpc-c refuses to parse any reply longer than a process-global limit.
// Raise it (never lower it: another user in the process may rely on a larger
// one) so that our own, per-adapter limit is the one that applies.
void raise_global_parse_limit(std::size_t wanted) {
    static std::mutex m;
    std::lock_guard lock(m);
    if (xmlrpc_limit_get(XMLRPC_XML_SIZE_LIMIT_ID) < wanted) xmlrpc_limit_set(XMLRPC_XML_SIZE_LIMIT_ID, wanted);
}

std::string strip_userinfo(const std::string &url) {
    auto scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    auto authority = scheme + 3;
    auto end = url.find_first_of("/?#", authority);
    auto at = url.rfind('@', end == std::string::npos ? std::string::npos : end);
    if (at == std::string::npos || at < authority) return url;
    return url.substr(0, authority) + url.substr(at + 1);
}

std::string seconds_text(std::chrono::milliseconds ms) {
    std::ostringstream s;
    s << static_cast<double>(ms.count()) / 1000.0 << " s";
    return s.str();
}

// How long to keep driving a transfer that was told to stop: libcurl
// notices the interrupt on its next progress callback, which comes with the
// next poll. Only a libcurl that ignores it entirely could exhaust this.
constexpr unsigned abort_poll_ms = 50;
constexpr int abort_poll_rounds = 100;
// How often a call in progress looks at its stop token.
constexpr long long stop_poll_ms = 100;

}  // namespace

xmlrpc_one_api::xmlrpc_one_api(client_options options)
    : options_(std::move(options)), description_(strip_userinfo(options_.endpoint)) {}

ports::result<std::unique_ptr<xmlrpc_one_api>> xmlrpc_one_api::create(client_options options) {
    const std::string shown = strip_userinfo(options.endpoint);
    if (!options.endpoint.starts_with("http://") && !options.endpoint.starts_with("https://"))
        return error{error_kind::invalid, "oned endpoint " + shown + " is not an http:// or https:// URL", 0};
    if (options.cipher) {
        if (options.act_as.empty() || options.act_as.find_first_of(": \t\r\n") != std::string::npos)
            return error{error_kind::invalid,
                         "cannot log in to oned as user '" + options.act_as +
                             "': a user name is not empty and holds no ':' or white space",
                         0};
    } else if (options.session.find(':') == std::string::npos)
        return error{error_kind::invalid, "oned session is malformed (expected user:password)", 0};
    if (options.timeout <= std::chrono::milliseconds::zero() ||
        options.timeout.count() > std::numeric_limits<unsigned int>::max())
        return error{error_kind::invalid, "oned timeout must be positive", 0};
    if (options.max_response_bytes == 0)
        return error{error_kind::invalid, "oned response size limit must be positive", 0};
    raise_global_parse_limit(options.max_response_bytes);
    return std::unique_ptr<xmlrpc_one_api>(new xmlrpc_one_api(std::move(options)));
}

std::string xmlrpc_one_api::describe() const { return description_; }

ports::result<ports::rpc_result> xmlrpc_one_api::call(const std::string &method,
                                                      const std::vector<ports::rpc_value> &params,
                                                      const std::stop_token &stop) {
    // A token session is minted per call, so that every call has the full
    // validity however long the calls before it took (a deliberate
    // difference: the stock restore makes one token for all of its calls, so
    // a restore whose allocations take over 120 s in all fails halfway).
    secret_string token_session;
    if (options_.cipher) {
        const auto now =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        try {
            token_session = secret_string(options_.cipher->session_for(
                options_.act_as, static_cast<std::int64_t>(now) + login_token_validity.count()));
        } catch (const std::exception &e) {
            // OpenSSL's own failure text; it holds no key material.
            return error{error_kind::io, method + ": cannot make the server_cipher login token: " + e.what(), 0};
        }
    }
    const std::string &session = options_.cipher ? token_session.str() : options_.session;
    const internal::scrubber scrub(session);
    try {
        auto r = call_unscrubbed(method, params, session, stop);
        if (!r) {
            if (options_.cipher && r.err().code == ports::one_authentication) {
                auto e = r.err();
                e.message += ": oned refused the server_cipher login of " + options_.cipher->server_user() + " as " +
                             options_.act_as + " made from " + options_.cipher_file + " (" + options_.act_as +
                             " must be an enabled oned user, and the file must hold the password of oned's "
                             "server_cipher user, e.g. serveradmin, whose auth driver is server_cipher)";
                return scrub(e);
            }
            return scrub(r.err());
        }
        return r;
    } catch (const std::exception &e) {
        return scrub(error{error_kind::io, method + ": " + e.what(), 0});
    } catch (...) {
        return error{error_kind::io, method + ": unknown failure in the XML-RPC client", 0};
    }
}

ports::result<ports::rpc_result> xmlrpc_one_api::call_unscrubbed(const std::string &method,
                                                                 const std::vector<ports::rpc_value> &params,
                                                                 const std::string &session,
                                                                 const std::stop_token &stop) {
    xmlrpc_c::paramList param_list;
    param_list.add(xmlrpc_c::value_string(session));
    for (const auto &p : params) param_list.add(to_xmlrpc(p));
    std::string call_xml;
    xmlrpc_c::xml::generateCall(method, param_list, &call_xml);

    auto state = std::make_shared<call_state>();
    state->limit = options_.max_response_bytes;
    const auto timeout_ms = static_cast<unsigned int>(options_.timeout.count());
    {
        // libcurl gets the deadline too, but xmlrpc-c only looks at libcurl's
        // timers when its select() wakes, at most every 3 s; the async
        // interface with our own deadline is what makes the timeout exact.
        xmlrpc_c::clientXmlTransport_curl transport(
            xmlrpc_c::clientXmlTransport_curl::constrOpt().timeout(timeout_ms).user_agent("one_ds_host"));
        transport.setInterrupt(&state->interrupt);
        xmlrpc_c::carriageParm_curl0 carriage(options_.endpoint);
        transport.start(&carriage, call_xml, xmlrpc_c::xmlTransactionPtr(new transaction(state)));
        // In slices, so that a stop is seen within one; the interrupt flag is
        // only ever written on this thread (xmlrpc-c reads it here too).
        const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
        bool was_stopped = false;
        while (!state->done) {
            if (stop.stop_requested()) {
                was_stopped = true;
                break;
            }
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            transport.finishAsync(
                xmlrpc_c::timeout(static_cast<unsigned>(std::min<long long>(left.count(), stop_poll_ms))));
        }
        bool timed_out = false;
        if (!state->done) {
            timed_out = !state->too_large && !was_stopped;
            state->interrupt = 1;
        }
        // The transport must not be destroyed with a transfer in flight.
        for (int round = 0; !state->done && round < abort_poll_rounds; ++round)
            transport.finishAsync(xmlrpc_c::timeout(abort_poll_ms));
        if (!state->done) transport.finishAsync(xmlrpc_c::timeout());
        if (was_stopped) return error{error_kind::cancelled, method + ": cancelled (oned may still carry it out)", 0};
        if (timed_out)
            return error{
                error_kind::unreachable,
                method + ": oned at " + description_ + " did not answer within " + seconds_text(options_.timeout), 0};
    }

    if (state->too_large || state->response.size() > options_.max_response_bytes)
        return error{error_kind::io,
                     method + ": reply from oned at " + description_ + " exceeds " +
                         std::to_string(options_.max_response_bytes) + " bytes",
                     0};
    if (!state->transport_ok)
        return error{
            error_kind::unreachable,
            method + ": oned at " + description_ + " unreachable: " + std::string(common::trim(state->response)), 0};

    xmlrpc_c::rpcOutcome outcome;
    try {
        xmlrpc_c::xml::parseResponse(state->response, &outcome);
    } catch (const std::exception &e) {
        return error{error_kind::io, method + ": malformed reply from oned: " + e.what(), 0};
    }
    if (!outcome.succeeded()) {
        const xmlrpc_c::fault f = outcome.getFault();
        return error{
            error_kind::io,
            method + ": XML-RPC fault " + std::to_string(static_cast<int>(f.getCode())) + ": " + f.getDescription(), 0};
    }
    return internal::decode_reply(method, outcome.getResult());
}

namespace {

ports::result<std::chrono::milliseconds> parse_timeout(const std::map<std::string, std::string> &config) {
    auto it = config.find("oned_timeout");
    if (it == config.end()) return default_timeout;
    const auto text = common::trim(it->second);
    double seconds = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    // Up to a day: beyond that the value is a typo, and it must fit xmlrpc-c's
    // unsigned milliseconds.
    if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(seconds) || seconds <= 0 ||
        seconds > 86400)
        return error{error_kind::invalid, "oned_timeout: expected seconds in (0, 86400], got \"" + it->second + "\"",
                     0};
    return std::chrono::milliseconds(std::max<long long>(1, std::llround(seconds * 1000)));
}

ports::result<std::size_t> parse_max_response(const std::map<std::string, std::string> &config) {
    auto it = config.find("oned_max_response_bytes");
    if (it == config.end()) return default_max_response_bytes;
    const auto text = common::trim(it->second);
    std::size_t bytes = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), bytes);
    if (ec != std::errc() || end != text.data() + text.size() || bytes == 0)
        return error{error_kind::invalid,
                     "oned_max_response_bytes: expected a positive number of bytes, got \"" + it->second + "\"", 0};
    return bytes;
}

std::string value_or_empty(const std::map<std::string, std::string> &config, const std::string &key) {
    auto it = config.find(key);
    return it == config.end() ? std::string() : it->second;
}

}  // namespace

ports::result<std::unique_ptr<ports::one_api>> make_one_api(const std::map<std::string, std::string> &config) {
    return make_one_api(config, environment::from_process());
}

namespace {

// Endpoint, deadline and size limit: what every client of the plugin shares.
ports::result<client_options> transport_options(const std::map<std::string, std::string> &config,
                                                const environment &env) {
    client_options options;
    auto timeout = parse_timeout(config);
    if (!timeout) return timeout.err();
    options.timeout = *timeout;
    auto max_response = parse_max_response(config);
    if (!max_response) return max_response.err();
    options.max_response_bytes = *max_response;
    options.endpoint = xmlrpc_one_api::resolve_endpoint(value_or_empty(config, "host.oned_endpoint"), env);
    return options;
}

}  // namespace

ports::result<std::unique_ptr<ports::one_api>> make_one_api(const std::map<std::string, std::string> &config,
                                                            const environment &env) {
    auto transport = transport_options(config, env);
    if (!transport) return transport.err();
    client_options options = std::move(*transport);
    auto session = xmlrpc_one_api::resolve_session(value_or_empty(config, "host.oned_auth_file"), env);
    if (!session) return session.err();
    options.session = std::move(*session);
    auto api = xmlrpc_one_api::create(std::move(options));
    if (!api) return api.err();
    return std::unique_ptr<ports::one_api>(std::move(*api));
}

cipher_login::cipher_login(client_options base, std::filesystem::path cipher_auth_file)
    : base_(std::move(base)), file_(std::move(cipher_auth_file)) {
    base_.session.clear();
    base_.cipher.reset();
}

ports::result<std::unique_ptr<ports::one_api>> cipher_login::as_user(const std::string &username) {
    auto cipher = server_cipher::from_file(file_);
    if (!cipher) return cipher.err();
    client_options options = base_;
    options.cipher = std::make_shared<const server_cipher>(std::move(*cipher));
    options.act_as = username;
    options.cipher_file = file_.string();
    auto api = xmlrpc_one_api::create(std::move(options));
    if (!api) return api.err();
    return std::unique_ptr<ports::one_api>(std::move(*api));
}

ports::result<std::unique_ptr<ports::one_api_as_user>> make_one_api_as_user(
    const std::map<std::string, std::string> &config) {
    return make_one_api_as_user(config, environment::from_process());
}

ports::result<std::unique_ptr<ports::one_api_as_user>> make_one_api_as_user(
    const std::map<std::string, std::string> &config, const environment &env) {
    auto transport = transport_options(config, env);
    if (!transport) return transport.err();
    return std::unique_ptr<ports::one_api_as_user>(std::make_unique<cipher_login>(
        std::move(*transport),
        xmlrpc_one_api::resolve_cipher_auth_file(value_or_empty(config, "host.one_cipher_auth"), env)));
}

}  // namespace oneds::adapters::oned
