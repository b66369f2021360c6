#include "adapters/s3/s3_store.hpp"

#include "adapters/s3/endpoint.hpp"
#include "adapters/s3/sigv4.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <optional>
#include <utility>
#include <vector>

namespace oneds::adapters::s3 {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using asio::ip::tcp;
using boost::system::error_code;
using ports::error;
using ports::error_kind;
using clock_type = std::chrono::steady_clock;

namespace {

using response = http::response<http::string_body>;
using query_list = std::vector<std::pair<std::string, std::string>>;

// What a call may wait for, and until when.
struct call {
    const std::stop_token &stop;
    clock_type::time_point deadline;
};

std::string seconds_text(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
    return std::to_string(d.count()) + " ms";
}

// The text between <tag> and </tag> in an S3 error document, or "".
std::string xml_field(const std::string &body, const std::string &tag) {
    const std::string open = "<" + tag + ">";
    const auto start = body.find(open);
    if (start == std::string::npos) return {};
    const auto from = start + open.size();
    const auto end = body.find("</" + tag + ">", from);
    if (end == std::string::npos) return {};
    return body.substr(from, end - from);
}

// Every <tag>...</tag> block of body, in order.
std::vector<std::string> xml_blocks(const std::string &body, const std::string &tag) {
    std::vector<std::string> out;
    const std::string open = "<" + tag + ">", close = "</" + tag + ">";
    for (std::size_t at = body.find(open); at != std::string::npos; at = body.find(open, at)) {
        const auto from = at + open.size();
        const auto end = body.find(close, from);
        if (end == std::string::npos) break;
        out.push_back(body.substr(from, end - from));
        at = end + close.size();
    }
    return out;
}

// XML's five predefined entities (keys in a listing come escaped).
std::string xml_unescape(std::string_view text) {
    static const std::pair<std::string_view, char> entities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    std::string out;
    while (!text.empty()) {
        bool replaced = false;
        if (text.front() == '&')
            for (const auto &[name, c] : entities)
                if (text.starts_with(name)) {
                    out += c;
                    text.remove_prefix(name.size());
                    replaced = true;
                    break;
                }
        if (!replaced) {
            out += text.front();
            text.remove_prefix(1);
        }
    }
    return out;
}

std::optional<std::uint64_t> to_u64(std::string_view text) {
    std::uint64_t value = 0;
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

std::string header(const response &r, std::string_view name) {
    const auto it = r.find(beast::string_view(name.data(), name.size()));
    if (it == r.end()) return {};
    return std::string(it->value());
}

// The total size from "Content-Range: bytes 0-0/1234".
std::optional<std::uint64_t> range_total(const response &r) {
    const std::string value = header(r, "Content-Range");
    const auto slash = value.rfind('/');
    if (slash == std::string::npos) return std::nullopt;
    return to_u64(std::string_view(value).substr(slash + 1));
}

bool is_ip_address(const std::string &host) {
    error_code ec;
    (void)asio::ip::make_address(host, ec);
    return !ec;
}

// Reads a PEM bundle: the number of certificates in it, or why it cannot be used.
ports::result<int> count_certificates(const std::string &path) {
    BIO *bio = BIO_new_file(path.c_str(), "r");
    if (bio == nullptr) {
        const int saved = errno;
        ERR_clear_error();
        return error{error_kind::invalid,
                     "RESTIC_S3_CACERT '" + path + "' cannot be read: " + std::strerror(saved != 0 ? saved : ENOENT)};
    }
    int count = 0;
    while (X509 *cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
        X509_free(cert);
        ++count;
    }
    ERR_clear_error();  // the end of the file reads as an error
    BIO_free(bio);
    if (count == 0) {
        return error{error_kind::invalid,
                     "RESTIC_S3_CACERT '" + path + "' holds no PEM certificate (-----BEGIN CERTIFICATE-----)"};
    }
    return count;
}

}  // namespace

// "2026-11-30T18:00:00.000Z" (S3's LastModified) in seconds since the epoch;
// 0 when it is not that.
static std::int64_t iso8601_seconds(const std::string &text) {
    std::tm tm{};
    const char *end = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == nullptr) return 0;
    return static_cast<std::int64_t>(::timegm(&tm));
}

struct s3_store::impl {
    s3_target target;
    endpoint ep;
    bool path_style = true;
    std::string root;  // without a trailing '/'
    std::chrono::milliseconds timeout;
    std::string description;

    asio::io_context io;
    asio::ssl::context ssl{asio::ssl::context::tls_client};
    std::optional<tcp::socket> plain;
    std::optional<asio::ssl::stream<tcp::socket>> tls;
    beast::flat_buffer buffer;
    bool connected = false;

    ~impl() { disconnect(); }

    // The host name the connection is for (virtual-host style: bucket.host).
    std::string connect_host() const { return path_style ? ep.host : target.bucket + "." + ep.host; }
    std::string host_field() const {
        const std::string h = host_header(ep);
        return path_style ? h : target.bucket + "." + h;
    }

    tcp::socket &socket() { return tls ? tls->next_layer() : *plain; }

    void disconnect() {
        error_code ignored;
        if (tls) tls->next_layer().close(ignored);
        if (plain) plain->close(ignored);
        tls.reset();
        plain.reset();
        buffer.clear();
        connected = false;
    }

    // Cancels whatever is pending; its handler runs with an error.
    void abort_io() {
        error_code ignored;
        if (tls) tls->next_layer().close(ignored);
        if (plain) plain->close(ignored);
    }

    enum class outcome { done, stopped, timed_out };

    // Runs the event loop until done, checking the stop token and the
    // deadline at least every 50 ms; on either, aborts and waits for the
    // handler (which then sees an error).
    // abandon: return at a stop or the deadline without waiting for the
    // handler (whose state must then outlive this call).
    outcome wait(const bool &done, const call &c, bool abandon = false) {
        outcome result = outcome::done;
        while (!done) {
            io.restart();
            io.run_for(std::chrono::milliseconds(50));
            if (done || result != outcome::done) continue;
            if (c.stop.stop_requested()) {
                result = outcome::stopped;
            } else if (clock_type::now() >= c.deadline) {
                result = outcome::timed_out;
            }
            if (result != outcome::done) {
                abort_io();
                if (abandon) return result;
            }
        }
        return result;
    }

    error cancelled() const { return error{error_kind::cancelled, "S3 request to " + ep.text + " cancelled"}; }
    error timed_out(const char *doing) const {
        return error{error_kind::unreachable,
                     "the S3 endpoint " + ep.text + " " + doing + " within " + seconds_text(timeout)};
    }

    ports::status connect(const call &c) {
        disconnect();
        const std::string host = connect_host();
        // getaddrinfo cannot be interrupted. Asio's resolver runs it on a
        // thread that its io_context joins when destroyed, so a stop would
        // return at once but the store's destruction would still wait out
        // the lookup. The lookup therefore runs on a detached thread of its
        // own whose result lands in shared state: a stop or the deadline
        // abandons it for good.
        struct lookup {
            std::mutex m;
            bool done = false;
            int rc = 0;
            int err = 0;
            std::vector<tcp::endpoint> addresses;
        };
        const auto found = std::make_shared<lookup>();
        std::thread([found, host, port = std::to_string(ep.port)] {
            addrinfo hints{};
            hints.ai_family = AF_UNSPEC;
            hints.ai_socktype = SOCK_STREAM;
            addrinfo *res = nullptr;
            const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
            const int err = errno;
            std::vector<tcp::endpoint> eps;
            if (rc == 0) {
                for (const addrinfo *p = res; p != nullptr; p = p->ai_next) {
                    if (p->ai_family != AF_INET && p->ai_family != AF_INET6) continue;
                    tcp::endpoint e;
                    std::memcpy(e.data(), p->ai_addr, p->ai_addrlen);
                    e.resize(p->ai_addrlen);
                    eps.push_back(e);
                }
                ::freeaddrinfo(res);
            }
            const std::lock_guard lock(found->m);
            found->rc = rc;
            found->err = err;
            found->addresses = std::move(eps);
            found->done = true;
        }).detach();
        for (;;) {
            {
                const std::lock_guard lock(found->m);
                if (found->done) break;
            }
            if (c.stop.stop_requested()) return cancelled();
            if (clock_type::now() >= c.deadline) return timed_out("could not be resolved");
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (found->rc != 0 || found->addresses.empty()) {
            const std::string why = found->rc == EAI_SYSTEM ? std::string(std::strerror(found->err))
                                    : found->rc != 0        ? std::string(::gai_strerror(found->rc))
                                                            : std::string("no IPv4 or IPv6 address");
            return error{error_kind::unreachable,
                         "cannot resolve the host '" + host + "' of the S3 endpoint " + ep.text + ": " + why};
        }
        const std::vector<tcp::endpoint> addresses = found->addresses;
        bool done = false;
        error_code ec;

        if (ep.tls) {
            tls.emplace(io, ssl);
        } else {
            plain.emplace(io);
        }
        done = false;
        asio::async_connect(socket(), addresses, [&](const error_code &e, const tcp::endpoint &) {
            ec = e;
            done = true;
        });
        auto end = wait(done, c);
        if (end == outcome::stopped) return disconnect(), cancelled();
        if (end == outcome::timed_out) return disconnect(), timed_out("did not accept a connection");
        if (ec) {
            disconnect();
            return error{error_kind::unreachable, "cannot connect to the S3 endpoint " + ep.text + ": " + ec.message()};
        }
        error_code ignored;
        socket().set_option(tcp::no_delay(true), ignored);
        if (ep.tls) {
            SSL *handle = tls->native_handle();
            if (!is_ip_address(host)) {
                SSL_set_tlsext_host_name(handle, host.c_str());
                SSL_set1_host(handle, host.c_str());
            } else {
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), host.c_str());
            }
            done = false;
            tls->async_handshake(asio::ssl::stream_base::client, [&](const error_code &e) {
                ec = e;
                done = true;
            });
            end = wait(done, c);
            if (end == outcome::stopped) return disconnect(), cancelled();
            if (end == outcome::timed_out) return disconnect(), timed_out("did not complete the TLS handshake");
            if (ec) {
                const long verify = SSL_get_verify_result(handle);
                disconnect();
                if (!target.insecure_tls &&
                    (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH)) {
                    return error{error_kind::host_key,
                                 "the TLS certificate of the S3 endpoint " + ep.text + " is not for '" + host + "' (" +
                                     X509_verify_cert_error_string(verify) +
                                     "); write a name the certificate holds in RESTIC_S3_ENDPOINT, or skip the "
                                     "check with RESTIC_S3_INSECURE_TLS=yes"};
                }
                if (!target.insecure_tls && verify != X509_V_OK) {
                    return error{error_kind::host_key,
                                 "the TLS certificate of the S3 endpoint " + ep.text + " cannot be verified (" +
                                     X509_verify_cert_error_string(verify) +
                                     "); trust its CA with RESTIC_S3_CACERT (a PEM file) or skip the check with "
                                     "RESTIC_S3_INSECURE_TLS=yes"};
                }
                return error{error_kind::unreachable, "TLS handshake with the S3 endpoint " + ep.text +
                                                          " failed: " + ec.message() +
                                                          " (if it speaks plain HTTP, write http:// in "
                                                          "RESTIC_S3_ENDPOINT)"};
            }
        }
        connected = true;
        return ports::ok();
    }

    // Sends req and reads the answer, over the kept connection when there is
    // one (again on a new connection when the kept one turns out closed).
    ports::result<response> exchange(const call &c, http::request<http::empty_body> &req, std::size_t body_limit) {
        const bool head = req.method() == http::verb::head;
        for (int attempt = 0;; ++attempt) {
            const bool reused = connected;
            if (!connected) {
                auto st = connect(c);
                if (!st) return st.err();
            }
            bool done = false;
            error_code ec;
            auto on_write = [&](const error_code &e, std::size_t) {
                ec = e;
                done = true;
            };
            if (tls) {
                http::async_write(*tls, req, on_write);
            } else {
                http::async_write(*plain, req, on_write);
            }
            auto end = wait(done, c);
            if (end == outcome::stopped) return disconnect(), cancelled();
            if (end == outcome::timed_out) return disconnect(), timed_out("did not take the request");
            if (ec) {
                disconnect();
                if (reused && attempt == 0) continue;
                return error{error_kind::unreachable,
                             "the connection to the S3 endpoint " + ep.text + " was lost: " + ec.message()};
            }

            http::response_parser<http::string_body> parser;
            parser.header_limit(64 * 1024);
            parser.body_limit(body_limit);
            if (head) parser.skip(true);
            done = false;
            auto on_read = [&](const error_code &e, std::size_t) {
                ec = e;
                done = true;
            };
            if (tls) {
                http::async_read(*tls, buffer, parser, on_read);
            } else {
                http::async_read(*plain, buffer, parser, on_read);
            }
            end = wait(done, c);
            if (end == outcome::stopped) return disconnect(), cancelled();
            if (end == outcome::timed_out) return disconnect(), timed_out("did not answer");
            if (ec == http::error::body_limit) {
                disconnect();
                return error{error_kind::io, "the S3 endpoint " + ep.text + " sent more than the " +
                                                 std::to_string(body_limit) + " bytes asked for"};
            }
            if (ec) {
                disconnect();
                // A kept connection the server closed meanwhile: once more on a new one.
                if (reused && attempt == 0 && !parser.got_some()) continue;
                return error{error_kind::unreachable,
                             "the connection to the S3 endpoint " + ep.text + " was lost: " + ec.message()};
            }
            response r = parser.release();
            if (!r.keep_alive()) disconnect();
            return r;
        }
    }

    http::request<http::empty_body> build(http::verb method, const std::string &key, query_list query,
                                          const std::string &range) const {
        sigv4::request s;
        s.method = std::string(http::to_string(method));
        s.canonical_uri = path_style
                              ? "/" + sigv4::uri_encode(target.bucket, false) + "/" + sigv4::uri_encode(key, true)
                              : "/" + sigv4::uri_encode(key, true);
        s.query = std::move(query);
        const std::string date = sigv4::amz_date(std::chrono::system_clock::now());
        s.headers = {{"host", host_field()},
                     {"x-amz-content-sha256", std::string(sigv4::empty_payload_hash)},
                     {"x-amz-date", date}};
        if (!range.empty()) s.headers.emplace_back("range", range);
        const std::string query_text = sigv4::canonical_query(s);
        http::request<http::empty_body> req{method, s.canonical_uri + (query_text.empty() ? "" : "?" + query_text), 11};
        for (const auto &[name, value] : s.headers) req.set(name, value);
        req.set(http::field::user_agent, "one_ds_restic");
        req.set(http::field::authorization,
                sigv4::authorization(target.access_key_id, target.secret_access_key, target.region, date, s));
        req.prepare_payload();
        return req;
    }

    // The server's own words, without anything of the keys.
    std::string server_text(const std::string &text) const {
        std::string out = text.substr(0, 300);
        for (const std::string *secret : {&target.access_key_id, &target.secret_access_key}) {
            if (secret->empty()) continue;
            for (auto pos = out.find(*secret); pos != std::string::npos; pos = out.find(*secret)) {
                out.replace(pos, secret->size(), "<redacted>");
            }
        }
        for (char &ch : out) {
            if (static_cast<unsigned char>(ch) < 0x20) ch = ' ';
        }
        return out;
    }

    // The error an S3 error answer means, for an admin. what: "object '7/config'".
    error failure(const response &r, const std::string &what) const {
        const std::string code = xml_field(r.body(), "Code");
        const std::string message = server_text(xml_field(r.body(), "Message"));
        const std::string bucket = "S3 bucket '" + target.bucket + "'";
        const unsigned status = r.result_int();
        if (code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "InvalidToken" ||
            (code == "AuthorizationHeaderMalformed" && xml_field(r.body(), "Region").empty())) {
            return error{error_kind::permission, "the S3 endpoint " + ep.text +
                                                     " refused the keys of RESTIC_S3_ACCESS_KEY_ID / "
                                                     "RESTIC_S3_SECRET_ACCESS_KEY (" +
                                                     code + ")"};
        }
        if (code == "RequestTimeTooSkewed") {
            return error{error_kind::permission, "the S3 endpoint " + ep.text +
                                                     " refused the request: this host's clock differs too much "
                                                     "from the server's (RequestTimeTooSkewed)"};
        }
        if (code == "NoSuchBucket" || (status == 404 && code.empty() && what == "the bucket")) {
            return error{error_kind::not_found, bucket + " does not exist at " + ep.text};
        }
        // AWS redirects (301 PermanentRedirect) or refuses the signature's
        // scope (400 AuthorizationHeaderMalformed) for a bucket of another
        // region, naming it; other answers may carry the header (RGW names
        // its zone group) without meaning that.
        std::string region;
        if (status == 301 || code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed") {
            region = header(r, "x-amz-bucket-region");
            if (region.empty()) region = server_text(xml_field(r.body(), "Region"));
        }
        if (!region.empty() && region != target.region) {
            return error{error_kind::invalid, bucket + " at " + ep.text + " is in region '" + region +
                                                  "', not in RESTIC_S3_REGION '" + target.region + "'"};
        }
        if (status == 403) {
            return error{error_kind::permission, "the S3 endpoint " + ep.text +
                                                     " denied the keys of "
                                                     "RESTIC_S3_ACCESS_KEY_ID access to " +
                                                     what + " in " + bucket + " (" +
                                                     (code.empty() ? "403 Forbidden" : code) + ")"};
        }
        std::string text = "the S3 endpoint " + ep.text + " answered " + std::to_string(status) + " " +
                           std::string(r.reason()) + " for " + what + " in " + bucket;
        if (!code.empty()) text += " (" + code + (message.empty() ? "" : ": " + message) + ")";
        return error{error_kind::io, text};
    }

    // The object key of a plugin path.
    ports::result<std::string> key_of(const std::string &path) const {
        std::string p = path;
        while (p.size() > 1 && p.back() == '/') p.pop_back();
        std::string key;
        if (root.empty()) {
            key = p;
        } else if (p == root) {
            key.clear();
        } else if (p.size() > root.size() && p.compare(0, root.size(), root) == 0 && p[root.size()] == '/') {
            key = p.substr(root.size() + 1);
        } else {
            return error{error_kind::invalid,
                         "the path '" + path + "' is outside '" + root + "', the root of " + description};
        }
        while (!key.empty() && key.front() == '/') key.erase(0, 1);
        if (key == "/") key.clear();
        // "a/../b" would name another key than a file system would.
        for (std::size_t start = 0; start <= key.size();) {
            auto slash = key.find('/', start);
            if (slash == std::string::npos) slash = key.size();
            const std::string part = key.substr(start, slash - start);
            if (part == "." || part == ".." || (part.empty() && slash < key.size())) {
                return error{error_kind::invalid, "the path '" + path + "' has an empty, '.' or '..' component"};
            }
            start = slash + 1;
        }
        return key;
    }

    // Nothing throws across the port: what Asio, Beast or an allocation
    // throws ends here as an io error.
    template <typename T, typename Body>
    ports::result<T> guarded(Body &&body) {
        try {
            return body();
        } catch (const std::exception &e) {
            disconnect();
            return error{error_kind::io, "S3 request to " + ep.text + " failed: " + e.what()};
        }
    }

    call start(const std::stop_token &stop) const { return call{stop, clock_type::now() + timeout}; }

    // HEAD of the bucket; on an error answer (which has no body), a GET
    // listing at most one key tells the S3 error code.
    ports::result<response> head_bucket(const call &c) {
        auto req = build(http::verb::head, "", {}, "");
        auto r = exchange(c, req, 0);
        if (!r) return r.err();
        if (r->result_int() / 100 == 2) return r;
        auto listed = list(c, "", 1);
        if (!listed) return listed.err();
        if (listed->result_int() / 100 != 2) return failure(*listed, "the bucket");
        return failure(*r, "the bucket");
    }

    ports::result<response> list(const call &c, const std::string &prefix, int max_keys) {
        query_list query{{"list-type", "2"}, {"max-keys", std::to_string(max_keys)}};
        if (!prefix.empty()) query.emplace_back("prefix", prefix);
        auto req = build(http::verb::get, "", std::move(query), "");
        return exchange(c, req, 1024 * 1024);
    }

    // Whether any key starts with prefix + "/": a directory on a file system.
    ports::result<bool> is_directory(const call &c, const std::string &key) {
        auto r = list(c, key + "/", 1);
        if (!r) return r.err();
        if (r->result_int() / 100 != 2) return failure(*r, "the keys under '" + key + "/'");
        const auto count = to_u64(xml_field(r->body(), "KeyCount"));
        if (count) return *count > 0;
        return r->body().find("<Contents>") != std::string::npos ||
               r->body().find("<CommonPrefixes>") != std::string::npos;
    }

    // A GET of the first bytes of key: the answer, nullopt when the key is absent.
    ports::result<std::optional<response>> get_start(const call &c, const std::string &key, std::size_t bytes) {
        auto req = build(http::verb::get, key, {}, "bytes=0-" + std::to_string(bytes - 1));
        auto r = exchange(c, req, bytes + 64 * 1024);
        if (!r) return r.err();
        const unsigned status = r->result_int();
        if (status == 200 || status == 206 || status == 416) return std::optional<response>(std::move(*r));
        if (status == 404 && xml_field(r->body(), "Code") != "NoSuchBucket") return std::optional<response>();
        return failure(*r, "the object '" + key + "'");
    }
};

s3_store::s3_store(std::unique_ptr<impl> state) : impl_(std::move(state)) {}
s3_store::~s3_store() = default;

ports::result<std::unique_ptr<s3_store>> s3_store::create(s3_target t, std::chrono::milliseconds timeout) {
    try {
        auto state = std::make_unique<impl>();
        auto ep = parse_endpoint(t.endpoint);
        if (!ep) return ep.err();
        state->ep = std::move(*ep);
        if (t.bucket.empty()) return error{error_kind::invalid, "the S3 bucket name is empty"};
        if (t.bucket.find_first_of("/ \t\r\n") != std::string::npos) {
            return error{error_kind::invalid, "the S3 bucket name '" + t.bucket + "' has a '/' or a blank"};
        }
        if (t.region.empty()) t.region = "us-east-1";
        state->path_style = use_path_style(state->ep, t.bucket, t.path_style);
        state->root = t.root;
        while (state->root.size() > 1 && state->root.back() == '/') state->root.pop_back();
        if (state->root == "/") state->root.clear();
        state->timeout = timeout;
        state->description = "s3:" + state->ep.text + "/" + t.bucket;

        auto &ssl = state->ssl;
        ssl.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
        if (!t.ca_file.empty()) {
            auto count = count_certificates(t.ca_file);
            if (!count) return count.err();
            error_code ec;
            ssl.load_verify_file(t.ca_file, ec);
            if (ec) {
                return error{error_kind::invalid,
                             "RESTIC_S3_CACERT '" + t.ca_file + "' cannot be loaded: " + ec.message()};
            }
        } else {
            error_code ec;
            ssl.set_default_verify_paths(ec);
        }
        ssl.set_verify_mode(t.insecure_tls ? asio::ssl::verify_none : asio::ssl::verify_peer);
        state->target = std::move(t);
        return std::unique_ptr<s3_store>(new s3_store(std::move(state)));
    } catch (const std::exception &e) {
        return error{error_kind::io, std::string("cannot set up the S3 client: ") + e.what()};
    }
}

ports::result<ports::file_info> s3_store::stat(const std::string &path, const std::stop_token &stop) {
    const std::lock_guard lock(mutex_);
    return impl_->guarded<ports::file_info>([&]() -> ports::result<ports::file_info> {
        auto key = impl_->key_of(path);
        if (!key) return key.err();
        if (stop.stop_requested()) return impl_->cancelled();
        const call c = impl_->start(stop);
        ports::file_info info;
        if (key->empty()) {
            auto r = impl_->head_bucket(c);
            if (!r) return r.err();
            info.exists = true;
            info.is_directory = true;
            return info;
        }
        auto r = impl_->get_start(c, *key, 1);
        if (!r) return r.err();
        if (!r->has_value()) {
            auto dir = impl_->is_directory(c, *key);
            if (!dir) return dir.err();
            info.exists = *dir;
            info.is_directory = *dir;
            return info;
        }
        const response &answer = **r;
        info.exists = true;
        if (answer.result_int() == 416) return info;  // an empty object has no byte 0
        if (answer.result_int() == 206) {
            const auto total = range_total(answer);
            if (!total) {
                return error{error_kind::io, "the S3 endpoint " + impl_->ep.text +
                                                 " answered a ranged GET without a Content-Range total"};
            }
            info.size = *total;
        } else {
            info.size = answer.body().size();
        }
        return info;
    });
}

ports::status s3_store::make_directories(const std::string &path, const std::stop_token &stop) {
    // S3 has no directories: a key's "directory" exists once an object is under it.
    auto key = impl_->key_of(path);
    if (!key) return key.err();
    if (stop.stop_requested()) return impl_->cancelled();
    return ports::ok();
}

ports::result<ports::capacity_info> s3_store::capacity(const std::string &path, const std::stop_token &stop) {
    (void)stop;
    return error{error_kind::unsupported, "S3 has no capacity to report for " + path + " on " + describe()};
}

ports::result<std::optional<std::string>> s3_store::read_file(const std::string &path, std::size_t max,
                                                              const std::stop_token &stop) {
    const std::lock_guard lock(mutex_);
    return impl_->guarded<std::optional<std::string>>([&]() -> ports::result<std::optional<std::string>> {
        auto key = impl_->key_of(path);
        if (!key) return key.err();
        if (key->empty()) return error{error_kind::invalid, "cannot read the bucket root of " + describe()};
        if (stop.stop_requested()) return impl_->cancelled();
        const call c = impl_->start(stop);
        auto r = impl_->get_start(c, *key, std::max<std::size_t>(max, 1));
        if (!r) return r.err();
        if (!r->has_value()) return std::optional<std::string>();
        response &answer = **r;
        if (answer.result_int() == 416) return std::optional<std::string>(std::string());
        std::string body = std::move(answer.body());
        if (body.size() > max) body.resize(max);
        return std::optional<std::string>(std::move(body));
    });
}

// ListObjectsV2 with delimiter '/' under key + "/", page by page
// (continuation-token): objects are files with their size, common prefixes
// directories, LastModified their mtime. Nothing under the prefix: nullopt,
// as an absent directory.
ports::result<std::optional<std::vector<ports::dir_entry>>> s3_store::list_directory(const std::string &path,
                                                                                     const std::stop_token &stop) {
    using listing = std::optional<std::vector<ports::dir_entry>>;
    const std::lock_guard lock(mutex_);
    return impl_->guarded<listing>([&]() -> ports::result<listing> {
        auto key = impl_->key_of(path);
        if (!key) return key.err();
        const std::string prefix = key->empty() ? std::string() : *key + "/";
        std::vector<ports::dir_entry> out;
        std::string token;
        for (int page = 0; page < 100000; ++page) {
            if (stop.stop_requested()) return impl_->cancelled();
            const call c = impl_->start(stop);
            query_list query{{"list-type", "2"}, {"delimiter", "/"}, {"max-keys", "1000"}};
            if (!prefix.empty()) query.emplace_back("prefix", prefix);
            if (!token.empty()) query.emplace_back("continuation-token", token);
            auto req = impl_->build(http::verb::get, "", std::move(query), "");
            auto r = impl_->exchange(c, req, 16 * 1024 * 1024);
            if (!r) return r.err();
            if (r->result_int() / 100 != 2) return impl_->failure(*r, "the keys under '" + prefix + "'");
            const std::string &body = r->body();
            for (const auto &block : xml_blocks(body, "Contents")) {
                const std::string name = xml_unescape(xml_field(block, "Key"));
                if (name.size() <= prefix.size() || !name.starts_with(prefix)) continue;
                ports::dir_entry e;
                e.name = name.substr(prefix.size());
                e.size = to_u64(xml_field(block, "Size")).value_or(0);
                e.mtime = iso8601_seconds(xml_field(block, "LastModified"));
                out.push_back(std::move(e));
            }
            for (const auto &block : xml_blocks(body, "CommonPrefixes")) {
                std::string name = xml_unescape(xml_field(block, "Prefix"));
                if (name.size() <= prefix.size() || !name.starts_with(prefix)) continue;
                name = name.substr(prefix.size());
                while (!name.empty() && name.back() == '/') name.pop_back();
                if (name.empty()) continue;
                ports::dir_entry e;
                e.name = std::move(name);
                e.is_directory = true;
                out.push_back(std::move(e));
            }
            token = xml_unescape(xml_field(body, "NextContinuationToken"));
            if (xml_field(body, "IsTruncated") != "true" || token.empty()) break;
        }
        if (out.empty() && !prefix.empty()) return listing();
        return listing(std::move(out));
    });
}

std::string s3_store::describe() const { return impl_->description; }

ports::status s3_store::check_bucket(const std::stop_token &stop) {
    const std::lock_guard lock(mutex_);
    return impl_->guarded<ports::none>([&]() -> ports::result<ports::none> {
        if (stop.stop_requested()) return impl_->cancelled();
        auto r = impl_->head_bucket(impl_->start(stop));
        if (!r) return r.err();
        return ports::ok();
    });
}

ports::result<bucket_usage> s3_store::usage(const std::stop_token &stop) {
    const std::lock_guard lock(mutex_);
    return impl_->guarded<bucket_usage>([&]() -> ports::result<bucket_usage> {
        if (stop.stop_requested()) return impl_->cancelled();
        auto r = impl_->head_bucket(impl_->start(stop));
        if (!r) return r.err();
        bucket_usage u;
        u.bytes = to_u64(header(*r, "X-RGW-Bytes-Used"));
        u.objects = to_u64(header(*r, "X-RGW-Object-Count"));
        return u;
    });
}

ports::result<ports::store_usage> s3_store::usage_summary(const std::stop_token &stop) {
    auto u = usage(stop);
    if (!u) return u.err();
    return ports::store_usage{u->bytes, u->objects};
}

}  // namespace oneds::adapters::s3
