#define BOOST_TEST_MODULE s3_unit_test
#include <boost/test/unit_test.hpp>

#include "adapters/s3/endpoint.hpp"
#include "adapters/s3/s3_store.hpp"
#include "adapters/s3/sigv4.hpp"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stop_token>
#include <string>

namespace fs = std::filesystem;
namespace sigv4 = oneds::adapters::s3::sigv4;
using oneds::adapters::s3::parse_endpoint;
using oneds::adapters::s3::s3_store;
using oneds::adapters::s3::s3_target;
using oneds::adapters::s3::use_path_style;
using oneds::ports::error_kind;

namespace {

// AWS's documented example of a signed GET Object (Amazon S3 API reference,
// "Authenticating Requests: Using the Authorization Header", example GET
// /test.txt with a Range header).
constexpr const char *example_key_id = "AKIAIOSFODNN7EXAMPLE";
constexpr const char *example_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr const char *example_date = "20130524T000000Z";

sigv4::request get_test_txt() {
    sigv4::request r;
    r.method = "GET";
    r.canonical_uri = "/test.txt";
    r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                 {"Range", "bytes=0-9"},
                 {"x-amz-content-sha256", std::string(sigv4::empty_payload_hash)},
                 {"x-amz-date", example_date}};
    return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(sha256_of_nothing_is_the_empty_payload_hash) {
    BOOST_TEST(sigv4::sha256_hex("") == std::string(sigv4::empty_payload_hash));
    BOOST_TEST(sigv4::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

BOOST_AUTO_TEST_CASE(canonical_request_of_the_aws_example) {
    const std::string expected =
        "GET\n"
        "/test.txt\n"
        "\n"
        "host:examplebucket.s3.amazonaws.com\n"
        "range:bytes=0-9\n"
        "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        "x-amz-date:20130524T000000Z\n"
        "\n"
        "host;range;x-amz-content-sha256;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    BOOST_TEST(sigv4::canonical_request(get_test_txt()) == expected);
    BOOST_TEST(sigv4::signed_headers(get_test_txt()) == "host;range;x-amz-content-sha256;x-amz-date");
    const std::string sts = sigv4::string_to_sign(example_date, "us-east-1", expected);
    BOOST_TEST(sts == "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n" +
                          sigv4::sha256_hex(expected));
}

BOOST_AUTO_TEST_CASE(authorization_of_the_aws_example) {
    BOOST_TEST(sigv4::authorization(example_key_id, example_secret, "us-east-1", example_date, get_test_txt()) ==
               "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
               "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
               "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    // Another region or secret gives another signature.
    BOOST_TEST(sigv4::authorization(example_key_id, example_secret, "eu-west-1", example_date, get_test_txt())
                   .find("f0e8bdb87c96") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(header_values_are_trimmed_and_names_lower_cased) {
    sigv4::request r;
    r.method = "HEAD";
    r.canonical_uri = "/b/";
    r.headers = {{"X-Amz-Date", example_date}, {"HOST", "  h:9000 "}, {"x-Custom", "a   b\tc"}};
    BOOST_TEST(sigv4::canonical_request(r) ==
               "HEAD\n/b/\n\nhost:h:9000\nx-amz-date:20130524T000000Z\nx-custom:a b c\n\n"
               "host;x-amz-date;x-custom\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

BOOST_AUTO_TEST_CASE(query_is_encoded_and_sorted) {
    sigv4::request r;
    r.query = {{"prefix", "7/data x+"}, {"max-keys", "1"}, {"list-type", "2"}, {"location", ""}};
    BOOST_TEST(sigv4::canonical_query(r) == "list-type=2&location=&max-keys=1&prefix=7%2Fdata%20x%2B");
}

BOOST_AUTO_TEST_CASE(uri_encoding_keeps_unreserved_characters_only) {
    BOOST_TEST(sigv4::uri_encode("7/data/ab cd~_-.", true) == "7/data/ab%20cd~_-.");
    BOOST_TEST(sigv4::uri_encode("7/x", false) == "7%2Fx");
    BOOST_TEST(sigv4::uri_encode("\xc3\xa9*", true) == "%C3%A9%2A");
}

BOOST_AUTO_TEST_CASE(amz_date_is_utc_basic_format) {
    BOOST_TEST(sigv4::amz_date(std::chrono::system_clock::time_point(std::chrono::seconds(1369353600))) ==
               "20130524T000000Z");
}

BOOST_AUTO_TEST_CASE(endpoints_that_parse) {
    auto e = parse_endpoint("s3.amazonaws.com");
    BOOST_TEST_REQUIRE(e.has_value());
    BOOST_TEST(e->tls);
    BOOST_TEST(e->host == "s3.amazonaws.com");
    BOOST_TEST(e->port == 443);
    BOOST_TEST(!e->explicit_port);
    BOOST_TEST(!e->ip_literal);

    e = parse_endpoint("s3:http://127.0.0.1:7480/");
    BOOST_TEST_REQUIRE(e.has_value());
    BOOST_TEST(!e->tls);
    BOOST_TEST(e->host == "127.0.0.1");
    BOOST_TEST(e->port == 7480);
    BOOST_TEST(e->ip_literal);
    BOOST_TEST(e->text == "http://127.0.0.1:7480");
    BOOST_TEST(host_header(*e) == "127.0.0.1:7480");

    e = parse_endpoint("HTTPS://minio.example.org:9000");
    BOOST_TEST_REQUIRE(e.has_value());
    BOOST_TEST(e->tls);
    BOOST_TEST(e->port == 9000);
    BOOST_TEST(host_header(*e) == "minio.example.org:9000");

    e = parse_endpoint("http://[::1]:8080");
    BOOST_TEST_REQUIRE(e.has_value());
    BOOST_TEST(e->host == "::1");
    BOOST_TEST(e->ip_literal);
    BOOST_TEST(host_header(*e) == "[::1]:8080");

    e = parse_endpoint("http://rgw.local:80");
    BOOST_TEST_REQUIRE(e.has_value());
    BOOST_TEST(host_header(*e) == "rgw.local");  // the default port is not written
}

BOOST_AUTO_TEST_CASE(endpoints_that_do_not_parse_name_the_attribute) {
    for (const char *bad : {"", "s3:", "ftp://host", "http://host/path", "host:0", "host:65536", "host:x", "http://",
                            "[::1", "[zz::]:1", "::1", "ho st", "http://user:pw@host"}) {
        const auto e = parse_endpoint(bad);
        BOOST_TEST_REQUIRE(!e.has_value(), bad);
        BOOST_TEST((e.err().kind == error_kind::invalid), bad);
        BOOST_TEST(e.err().message.find("RESTIC_S3_ENDPOINT") != std::string::npos, e.err().message);
    }
    // User information is not echoed (it may be a password).
    BOOST_TEST(parse_endpoint("http://user:pw@host").err().message.find("pw") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(path_style_where_virtual_host_style_cannot_work) {
    const auto aws = *parse_endpoint("s3.amazonaws.com");
    BOOST_TEST(!use_path_style(aws, "my-bucket", false));
    BOOST_TEST(use_path_style(aws, "my-bucket", true));   // forced
    BOOST_TEST(use_path_style(aws, "my.bucket", false));  // TLS wildcard covers one label
    BOOST_TEST(use_path_style(aws, "My_Bucket", false));  // not a DNS name
    BOOST_TEST(!use_path_style(*parse_endpoint("s3.eu-west-1.amazonaws.com"), "b12", false));
    BOOST_TEST(use_path_style(*parse_endpoint("s3.amazonaws.com:443"), "my-bucket", false));  // a port
    BOOST_TEST(use_path_style(*parse_endpoint("http://127.0.0.1:7480"), "my-bucket", false));
    BOOST_TEST(use_path_style(*parse_endpoint("minio.example.org"), "my-bucket", false));  // not AWS
}

namespace {
s3_target target_with(const std::string &endpoint) {
    s3_target t;
    t.endpoint = endpoint;
    t.bucket = "bucket";
    t.access_key_id = "AKIDUNITTEST";
    t.secret_access_key = "unit-test-secret";
    t.root = "/var/lib/one/datastores/100";
    return t;
}
}  // namespace

BOOST_AUTO_TEST_CASE(create_checks_the_ca_file) {
    auto t = target_with("https://127.0.0.1:1");
    t.ca_file = (fs::temp_directory_path() / "oneds-s3-unit-no-such-ca.pem").string();
    auto s = s3_store::create(t);
    BOOST_TEST_REQUIRE(!s.has_value());
    BOOST_TEST((s.err().kind == error_kind::invalid));
    BOOST_TEST(s.err().message.find("RESTIC_S3_CACERT") != std::string::npos, s.err().message);

    std::string pattern = (fs::temp_directory_path() / "oneds-s3-unit-XXXXXX").string();
    const int fd = ::mkstemp(pattern.data());
    BOOST_TEST_REQUIRE(fd >= 0);
    ::close(fd);
    std::ofstream(pattern) << "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
    t.ca_file = pattern;
    s = s3_store::create(t);
    fs::remove(pattern);
    BOOST_TEST_REQUIRE(!s.has_value());
    BOOST_TEST((s.err().kind == error_kind::invalid));
    BOOST_TEST(s.err().message.find("RESTIC_S3_CACERT") != std::string::npos, s.err().message);
}

BOOST_AUTO_TEST_CASE(create_checks_the_endpoint_and_bucket) {
    auto s = s3_store::create(target_with("http://host/extra"));
    BOOST_TEST_REQUIRE(!s.has_value());
    BOOST_TEST(s.err().message.find("RESTIC_S3_ENDPOINT") != std::string::npos, s.err().message);
    auto t = target_with("host");
    t.bucket.clear();
    BOOST_TEST((s3_store::create(t).err().kind == error_kind::invalid));
}

BOOST_AUTO_TEST_CASE(paths_outside_the_root_are_invalid_without_a_request) {
    // A closed port: any request would fail as unreachable, not invalid.
    auto s = s3_store::create(target_with("http://127.0.0.1:1"));
    BOOST_TEST_REQUIRE(s.has_value());
    auto &store = **s;
    BOOST_TEST(store.describe() == "s3:http://127.0.0.1:1/bucket");
    std::stop_source source;
    for (const char *path : {"/var/lib/one/datastores/1000/7/config", "/tmp/7/config", "relative",
                             "/var/lib/one/datastores/100/7/../8/config"}) {
        const auto r = store.stat(path, source.get_token());
        BOOST_TEST_REQUIRE(!r.has_value(), path);
        BOOST_TEST((r.err().kind == error_kind::invalid), path << ": " << r.err().message);
    }
    BOOST_TEST(store.make_directories("/var/lib/one/datastores/100/7", source.get_token()).has_value());
    BOOST_TEST(
        (store.capacity("/var/lib/one/datastores/100", source.get_token()).err().kind == error_kind::unsupported));
    source.request_stop();
    BOOST_TEST(
        (store.stat("/var/lib/one/datastores/100/7/config", source.get_token()).err().kind == error_kind::cancelled));
}

BOOST_AUTO_TEST_CASE(authorization_of_the_aws_list_example) {
    // AWS's documented GET Bucket (list objects) example: a query string.
    sigv4::request r;
    r.method = "GET";
    r.canonical_uri = "/";
    r.query = {{"prefix", "J"}, {"max-keys", "2"}};
    r.headers = {{"host", "examplebucket.s3.amazonaws.com"},
                 {"x-amz-content-sha256", std::string(sigv4::empty_payload_hash)},
                 {"x-amz-date", example_date}};
    BOOST_TEST(sigv4::authorization(example_key_id, example_secret, "us-east-1", example_date, r) ==
               "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
               "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
               "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

namespace {

// A loopback HTTP server answering every request like RGW's HEAD bucket,
// counting connections; close_after_answer: it closes each connection after
// one answer without saying so (as a server whose keep-alive idle time ran
// out), so the client's kept connection is dead when it comes back.
class answering_server {
public:
    explicit answering_server(bool close_after_answer) : close_(close_after_answer) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || ::listen(fd_, 8) != 0) {
            throw std::runtime_error("answering_server: cannot listen");
        }
        socklen_t size = sizeof addr;
        ::getsockname(fd_, reinterpret_cast<sockaddr *>(&addr), &size);
        port_ = ntohs(addr.sin_port);
        thread_ = std::jthread([this](std::stop_token stop) { serve(stop); });
    }
    ~answering_server() {
        thread_.request_stop();
        ::shutdown(fd_, SHUT_RDWR);
        thread_.join();
        ::close(fd_);
    }
    answering_server(const answering_server &) = delete;
    answering_server &operator=(const answering_server &) = delete;
    unsigned short port() const { return port_; }
    int connections() const { return connections_.load(); }
    // Waits until the server has closed n connections (up to 10 s).
    bool wait_for_closes(int n) const {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (closes_.load() < n) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return true;
    }

private:
    void serve(const std::stop_token &stop) {
        while (!stop.stop_requested()) {
            const int conn = ::accept(fd_, nullptr, nullptr);
            if (conn < 0) return;
            ++connections_;
            std::string in;
            char buf[4096];
            for (;;) {
                const auto n = ::read(conn, buf, sizeof buf);
                if (n <= 0) break;
                in.append(buf, static_cast<std::size_t>(n));
                while (in.find("\r\n\r\n") != std::string::npos) {
                    in.erase(0, in.find("\r\n\r\n") + 4);
                    const std::string answer =
                        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-RGW-Bytes-Used: 1234\r\n"
                        "X-RGW-Object-Count: 5\r\n\r\n";
                    (void)::write(conn, answer.data(), answer.size());
                    if (close_) break;
                }
                if (close_) break;
            }
            ::close(conn);
            ++closes_;
        }
    }

    bool close_;
    int fd_ = -1;
    unsigned short port_ = 0;
    std::atomic<int> connections_{0};
    std::atomic<int> closes_{0};
    std::jthread thread_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(one_connection_is_kept_and_a_dead_one_replaced) {
    std::stop_source source;
    {
        answering_server server(false);
        auto s = s3_store::create(target_with("http://127.0.0.1:" + std::to_string(server.port())));
        BOOST_TEST_REQUIRE(s.has_value());
        for (int i = 0; i < 3; ++i) {
            const auto u = (*s)->usage(source.get_token());
            BOOST_TEST_REQUIRE(u.has_value(), (u.has_value() ? "" : u.err().message));
            BOOST_TEST((u->bytes == 1234u));
            BOOST_TEST((u->objects == 5u));
        }
        BOOST_TEST(server.connections() == 1);
    }
    {
        answering_server server(true);
        auto s = s3_store::create(target_with("http://127.0.0.1:" + std::to_string(server.port())));
        BOOST_TEST_REQUIRE(s.has_value());
        for (int i = 0; i < 3; ++i) {
            const auto c = (*s)->check_bucket(source.get_token());
            BOOST_TEST(c.has_value(), (c.has_value() ? "" : c.err().message));
            // The server's close is out before the next call.
            BOOST_TEST_REQUIRE(server.wait_for_closes(i + 1));
        }
        BOOST_TEST(server.connections() == 3);
    }
}

// ---------------------------------------------------------------------------
// A name lookup that hangs: getaddrinfo is replaced for this program (the
// executable's definition wins over libc's), and for one name sleeps 3 s.
// A stop must end the call at once and the store's destruction must not wait
// for the lookup either (Asio's resolver would join its lookup thread).

extern "C" int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
    using fn = int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    static const auto real = reinterpret_cast<fn>(::dlsym(RTLD_NEXT, "getaddrinfo"));
    if (node != nullptr && std::string(node) == "slow-lookup.invalid") {
        std::this_thread::sleep_for(std::chrono::seconds(3));
        return EAI_NONAME;
    }
    return real(node, service, hints, res);
}

BOOST_AUTO_TEST_CASE(a_stop_during_a_slow_name_lookup_ends_the_call_and_the_store_at_once) {
    s3_target t;
    t.endpoint = "http://slow-lookup.invalid:8080";
    t.bucket = "bucket";
    t.access_key_id = "AKIDEXAMPLE";
    t.secret_access_key = "secret";
    t.root = "/r";
    auto made = s3_store::create(t, std::chrono::seconds(20));
    BOOST_TEST_REQUIRE(made.has_value());
    auto store = std::move(made.value());
    std::stop_source stop;
    const auto start = std::chrono::steady_clock::now();
    std::jthread stopper([&stop] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        stop.request_stop();
    });
    const auto r = store->stat("/r/7/config", stop.get_token());
    const auto call_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST((r.err().kind == error_kind::cancelled), r.err().message);
    store.reset();
    const auto total_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    // About 200 ms meant; waiting for the lookup shows its 3 s. The bounds sit
    // between, for a slow machine.
    BOOST_TEST(call_ms < 2500, "the call waited for the lookup: " << call_ms << " ms");
    BOOST_TEST(total_ms < 2500, "destroying the store waited for the lookup: " << total_ms << " ms");
}
