#define BOOST_TEST_MODULE s3_store_test
#include <boost/test/unit_test.hpp>

#include "adapters/s3/s3_store.hpp"
#include "common/child.hpp"
#include "tests/support/ceph_fixture.hpp"
#include "tests/support/files.hpp"
#include "tests/support/ports.hpp"
#include "tests/support/run_capture.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using oneds::adapters::s3::s3_store;
using oneds::adapters::s3::s3_target;
using oneds::ports::error_kind;
using oneds::test::ceph_fixture;
using clock_type = std::chrono::steady_clock;

namespace {

// The plugin path that maps to the bucket's root in these tests.
const std::string root = "/var/lib/one/datastores/100";

// The error's message, or "" (Boost.Test evaluates a message even when the check holds).
template <typename R>
std::string message_of(const R &r) {
    return r.has_value() ? std::string() : r.err().message;
}

using result = oneds::test::captured;

const fs::path &scratch() {
    static const oneds::test::scoped_temp_dir dir("oneds-s3-test-");
    return dir.path();
}

// argv with env added; input (which may hold keys) on stdin, never in argv.
result run(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env,
           const std::string &input = {}) {
    return oneds::test::run_captured(argv, env, scratch(), input);
}

std::map<std::string, std::string> restic_env() {
    auto &ceph = ceph_fixture::shared();
    return {{"AWS_ACCESS_KEY_ID", ceph.access_key()},
            {"AWS_SECRET_ACCESS_KEY", ceph.secret_key()},
            {"RESTIC_PASSWORD", "s3-store-test"},
            {"RESTIC_CACHE_DIR", (scratch() / "restic-cache").string()}};
}

// A bucket name of its own for each test.
std::string new_bucket(const std::string &what) {
    static int serial = 0;
    return "oneds-" + what + "-" + std::to_string(::getpid()) + "-" + std::to_string(++serial);
}

// restic init of s3:<endpoint>/<bucket>/<repo> (restic creates the bucket).
void restic_init(const std::string &bucket, const std::string &repo) {
    const auto r =
        run({"restic", "-r", "s3:" + ceph_fixture::shared().s3_endpoint() + "/" + bucket + "/" + repo, "init"},
            restic_env());
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
}

// curl, an independent S3 client, signing with the fixture's keys (given on
// stdin as a config file, not in argv).
result curl(const std::vector<std::string> &args) {
    auto &ceph = ceph_fixture::shared();
    std::vector<std::string> argv{"curl",
                                  "-sS",
                                  "--fail",
                                  "-K",
                                  "-",
                                  "--aws-sigv4",
                                  "aws:amz:us-east-1:s3",
                                  "-H",
                                  "x-amz-content-sha256: UNSIGNED-PAYLOAD"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {}, "user = \"" + ceph.access_key() + ":" + ceph.secret_key() + "\"\n");
}

std::string object_url(const std::string &bucket, const std::string &encoded_key) {
    return ceph_fixture::shared().s3_endpoint() + "/" + bucket + "/" + encoded_key;
}

s3_target target_for(const std::string &bucket) {
    auto &ceph = ceph_fixture::shared();
    s3_target t;
    t.endpoint = ceph.s3_endpoint();
    t.bucket = bucket;
    t.access_key_id = ceph.access_key();
    t.secret_access_key = ceph.secret_key();
    t.root = root;
    return t;
}

std::unique_ptr<s3_store> store_for(const s3_target &t, std::chrono::milliseconds timeout = 20s) {
    auto s = s3_store::create(t, timeout);
    BOOST_TEST_REQUIRE(s.has_value(), message_of(s));
    return std::move(*s);
}

bool has(const std::string &text, const std::string &what) { return text.find(what) != std::string::npos; }

// A loopback port nothing listens on (free a moment ago, see pick_free_port).
unsigned short closed_port() { return oneds::test::pick_free_port(); }

// A listening socket whose connections the kernel accepts and nobody answers.
struct silent_server {
    int fd = -1;
    unsigned short port = 0;
    silent_server() {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
            throw std::runtime_error("silent_server: cannot listen");
        }
        socklen_t size = sizeof addr;
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &size);
        port = ntohs(addr.sin_port);
    }
    ~silent_server() { ::close(fd); }
    silent_server(const silent_server &) = delete;
    silent_server &operator=(const silent_server &) = delete;
};

}  // namespace

BOOST_AUTO_TEST_CASE(probes_a_repository_restic_made) {
    const std::string bucket = new_bucket("probe");
    restic_init(bucket, "7");
    const auto fetched = curl({"-o", (scratch() / "config.curl").string(), object_url(bucket, "7/config")});
    BOOST_TEST_REQUIRE(fetched.status == 0, fetched.err);
    const std::string config = oneds::test::read_file(scratch() / "config.curl");
    BOOST_TEST_REQUIRE(config.size() > 32u);

    auto store = store_for(target_for(bucket));
    BOOST_TEST(store->describe() == "s3:" + ceph_fixture::shared().s3_endpoint() + "/" + bucket);
    std::stop_source source;
    const auto stop = source.get_token();

    auto info = store->stat(root + "/7/config", stop);
    BOOST_TEST_REQUIRE(info.has_value(), message_of(info));
    BOOST_TEST(info->exists);
    BOOST_TEST(!info->is_directory);
    BOOST_TEST(info->size == config.size());

    info = store->stat(root + "/8/config", stop);
    BOOST_TEST_REQUIRE(info.has_value(), message_of(info));
    BOOST_TEST(!info->exists);

    // Key prefixes with objects under them read as directories.
    for (const std::string &dir : {root + "/7", root + "/7/", root + "/7/keys", root}) {
        info = store->stat(dir, stop);
        BOOST_TEST_REQUIRE(info.has_value(), message_of(info));
        BOOST_TEST(info->exists, dir);
        BOOST_TEST(info->is_directory, dir);
    }

    auto bytes = store->read_file(root + "/7/config", 1 << 20, stop);
    BOOST_TEST_REQUIRE(bytes.has_value(), message_of(bytes));
    BOOST_TEST_REQUIRE(bytes->has_value());
    BOOST_TEST((**bytes == config));
    bytes = store->read_file(root + "/7/config", 10, stop);
    BOOST_TEST_REQUIRE(bytes.has_value(), message_of(bytes));
    BOOST_TEST_REQUIRE(bytes->has_value());
    BOOST_TEST((**bytes == config.substr(0, 10)));
    bytes = store->read_file(root + "/8/config", 100, stop);
    BOOST_TEST_REQUIRE(bytes.has_value(), message_of(bytes));
    BOOST_TEST(!bytes->has_value());

    // Calls from several threads share the store (serialised on its connection).
    std::atomic<int> good{0};
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < 4; ++t) {
            threads.emplace_back([&] {
                for (int i = 0; i < 5; ++i) {
                    const auto same = store->stat(root + "/7/config", stop);
                    if (same.has_value() && same->exists && same->size == config.size()) ++good;
                }
            });
        }
    }
    BOOST_TEST(good.load() == 20);

    BOOST_TEST(store->check_bucket(stop).has_value());
    BOOST_TEST(store->make_directories(root + "/9", stop).has_value());
    BOOST_TEST((store->capacity(root, stop).err().kind == error_kind::unsupported));

    // The root "/" maps the plugin path "/7/config" to the key "7/config".
    auto t = target_for(bucket);
    t.root = "/";
    info = store_for(t)->stat("/7/config", stop);
    BOOST_TEST_REQUIRE(info.has_value(), message_of(info));
    BOOST_TEST(info->size == config.size());
}

BOOST_AUTO_TEST_CASE(empty_objects_and_keys_that_need_encoding) {
    const std::string bucket = new_bucket("keys");
    restic_init(bucket, "7");  // creates the bucket
    const fs::path empty = scratch() / "empty";
    std::ofstream(empty).close();
    const fs::path hello = scratch() / "hello";
    std::ofstream(hello) << "hello, S3";
    auto put = curl({"-T", empty.string(), object_url(bucket, "7/empty")});
    BOOST_TEST_REQUIRE(put.status == 0, put.err);
    put = curl({"-T", hello.string(), object_url(bucket, "odd%20key%2Bplus/%C3%A9t%C3%A9%3D%26~")});
    BOOST_TEST_REQUIRE(put.status == 0, put.err);

    auto store = store_for(target_for(bucket));
    std::stop_source source;
    auto info = store->stat(root + "/7/empty", source.get_token());
    BOOST_TEST_REQUIRE(info.has_value(), message_of(info));
    BOOST_TEST(info->exists);
    BOOST_TEST(info->size == 0u);
    auto bytes = store->read_file(root + "/7/empty", 100, source.get_token());
    BOOST_TEST_REQUIRE(bytes.has_value(), message_of(bytes));
    BOOST_TEST_REQUIRE(bytes->has_value());
    BOOST_TEST((*bytes)->empty());

    const std::string odd = root + "/odd key+plus/\xc3\xa9t\xc3\xa9=&~";
    info = store->stat(odd, source.get_token());
    BOOST_TEST_REQUIRE(info.has_value(), message_of(info));
    BOOST_TEST(info->exists);
    BOOST_TEST(info->size == 9u);
    bytes = store->read_file(odd, 100, source.get_token());
    BOOST_TEST_REQUIRE(bytes.has_value(), message_of(bytes));
    BOOST_TEST_REQUIRE(bytes->has_value());
    BOOST_TEST((**bytes == "hello, S3"));
    info = store->stat(root + "/odd key+plus", source.get_token());
    BOOST_TEST_REQUIRE(info.has_value(), message_of(info));
    BOOST_TEST(info->is_directory);
}

BOOST_AUTO_TEST_CASE(usage_comes_from_the_gateway_and_grows_after_a_backup) {
    const std::string bucket = new_bucket("usage");
    restic_init(bucket, "7");
    auto store = store_for(target_for(bucket));
    std::stop_source source;
    const auto before = store->usage(source.get_token());
    BOOST_TEST_REQUIRE(before.has_value(), message_of(before));
    BOOST_TEST_REQUIRE(before->bytes.has_value());
    BOOST_TEST_REQUIRE(before->objects.has_value());
    BOOST_TEST(*before->objects >= 2u);  // config and a key at least
    BOOST_TEST(*before->bytes > 0u);

    // Incompressible data, so the repository grows by about its size.
    const fs::path data = scratch() / "usage-data";
    fs::create_directories(data);
    {
        std::mt19937_64 random(42);
        std::ofstream out(data / "random.bin", std::ios::binary);
        for (int i = 0; i < (1 << 18); ++i) {
            const std::uint64_t word = random();
            out.write(reinterpret_cast<const char *>(&word), sizeof word);
        }
    }
    const auto backup = run(
        {"restic", "-r", "s3:" + ceph_fixture::shared().s3_endpoint() + "/" + bucket + "/7", "backup", data.string()},
        restic_env());
    BOOST_TEST_REQUIRE(backup.status == 0, backup.err);

    const auto after = store->usage(source.get_token());
    BOOST_TEST_REQUIRE(after.has_value(), message_of(after));
    BOOST_TEST_REQUIRE(after->bytes.has_value());
    BOOST_TEST_REQUIRE(after->objects.has_value());
    BOOST_TEST(*after->objects > *before->objects);
    BOOST_TEST(*after->bytes >= *before->bytes + (2u << 20) - (64u << 10));
}

BOOST_AUTO_TEST_CASE(list_directory_gives_objects_and_common_prefixes) {
    const std::string bucket = new_bucket("list");
    restic_init(bucket, "7");
    restic_init(bucket, "job_3");
    auto store = store_for(target_for(bucket));
    std::stop_source source;
    const auto stop = source.get_token();

    auto top = store->list_directory(root, stop);
    BOOST_TEST_REQUIRE(top.has_value(), message_of(top));
    std::map<std::string, bool> dirs;
    BOOST_TEST_REQUIRE(top->has_value());
    for (const auto &e : **top) dirs[e.name] = e.is_directory;
    BOOST_TEST(dirs.size() == 2u);
    BOOST_TEST(dirs["7"]);
    BOOST_TEST(dirs["job_3"]);

    auto repo = store->list_directory(root + "/7", stop);
    BOOST_TEST_REQUIRE(repo.has_value(), message_of(repo));
    BOOST_TEST_REQUIRE(repo->has_value());
    bool config = false, keys = false;
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    for (const auto &e : **repo) {
        if (e.name == "config") {
            config = !e.is_directory && e.size > 32u;
            // LastModified, as the storage's own clock says: just now.
            BOOST_TEST((e.mtime > now - 600 && e.mtime < now + 600), "config's mtime " << e.mtime);
        }
        if (e.name == "keys") keys = e.is_directory;
    }
    BOOST_TEST(config);
    BOOST_TEST(keys);

    auto key_files = store->list_directory(root + "/7/keys", stop);
    BOOST_TEST_REQUIRE(key_files.has_value(), message_of(key_files));
    BOOST_TEST_REQUIRE(key_files->has_value());
    BOOST_TEST_REQUIRE((*key_files)->size() == 1u);
    BOOST_TEST((*key_files)->front().name.size() == 64u);
    BOOST_TEST(!(*key_files)->front().is_directory);
    BOOST_TEST((*key_files)->front().size > 0u);

    // No keys under a prefix: as an absent directory.
    auto locks = store->list_directory(root + "/7/locks", stop);
    BOOST_TEST_REQUIRE(locks.has_value(), message_of(locks));
    BOOST_TEST(!locks->has_value());
}

BOOST_AUTO_TEST_CASE(refused_keys_are_a_permission_error_that_names_the_attributes_not_the_keys) {
    const std::string bucket = new_bucket("keys");
    restic_init(bucket, "7");
    auto &ceph = ceph_fixture::shared();
    std::stop_source source;

    auto wrong_secret = target_for(bucket);
    wrong_secret.secret_access_key.back() = wrong_secret.secret_access_key.back() == 'x' ? 'y' : 'x';
    auto wrong_id = target_for(bucket);
    wrong_id.access_key_id = "AKIDNOSUCHUSER000000";
    for (const auto &[t, code] :
         {std::pair{wrong_secret, "SignatureDoesNotMatch"}, std::pair{wrong_id, "InvalidAccessKeyId"}}) {
        auto store = store_for(t);
        const auto info = store->stat(root + "/7/config", source.get_token());
        BOOST_TEST_REQUIRE(!info.has_value());
        BOOST_TEST((info.err().kind == error_kind::permission), info.err().message);
        BOOST_TEST_MESSAGE("error: " << info.err().message);
        const std::string &m = info.err().message;
        BOOST_TEST(has(m, "RESTIC_S3_ACCESS_KEY_ID / RESTIC_S3_SECRET_ACCESS_KEY"), m);
        BOOST_TEST(has(m, code), m);
        BOOST_TEST(has(m, ceph.s3_endpoint()), m);
        for (const std::string &secret : {ceph.access_key(), ceph.secret_key(), t.secret_access_key}) {
            BOOST_TEST(!has(m, secret));
        }
        // Also where the first answer (a HEAD's) has no body to tell the code.
        const auto bucket_check = store->check_bucket(source.get_token());
        BOOST_TEST_REQUIRE(!bucket_check.has_value());
        BOOST_TEST((bucket_check.err().kind == error_kind::permission), bucket_check.err().message);
        BOOST_TEST_MESSAGE("error: " << bucket_check.err().message);
        BOOST_TEST(has(bucket_check.err().message, code), bucket_check.err().message);
        BOOST_TEST((store->usage(source.get_token()).err().kind == error_kind::permission));
        BOOST_TEST((store->read_file(root + "/7/config", 10, source.get_token()).err().kind == error_kind::permission));
    }
}

BOOST_AUTO_TEST_CASE(a_missing_bucket_is_not_found_and_named) {
    const std::string bucket = new_bucket("absent");
    auto store = store_for(target_for(bucket));
    std::stop_source source;
    const std::string expected = "S3 bucket '" + bucket + "' does not exist at " + ceph_fixture::shared().s3_endpoint();
    const auto info = store->stat(root + "/7/config", source.get_token());
    BOOST_TEST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::not_found), info.err().message);
    BOOST_TEST_MESSAGE("error: " << info.err().message);
    BOOST_TEST(info.err().message == expected);
    const auto check = store->check_bucket(source.get_token());
    BOOST_TEST_REQUIRE(!check.has_value());
    BOOST_TEST((check.err().kind == error_kind::not_found));
    BOOST_TEST(check.err().message == expected);
    BOOST_TEST((store->usage(source.get_token()).err().kind == error_kind::not_found));
    BOOST_TEST((store->read_file(root + "/7/config", 10, source.get_token()).err().kind == error_kind::not_found));
}

BOOST_AUTO_TEST_CASE(an_unreachable_endpoint_fails_at_once_with_the_reason) {
    auto t = target_for("bucket");
    t.endpoint = "http://127.0.0.1:" + std::to_string(closed_port());
    auto store = store_for(t);
    std::stop_source source;
    const auto started = clock_type::now();
    const auto info = store->stat(root + "/7/config", source.get_token());
    BOOST_TEST((clock_type::now() - started < 2s));
    BOOST_TEST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::unreachable), info.err().message);
    BOOST_TEST_MESSAGE("error: " << info.err().message);
    BOOST_TEST(has(info.err().message, "Connection refused"), info.err().message);
    BOOST_TEST(has(info.err().message, t.endpoint), info.err().message);
    BOOST_TEST((store->check_bucket(source.get_token()).err().kind == error_kind::unreachable));

    t.endpoint = "http://no-such-host.invalid:7480";
    const auto unresolved = store_for(t, 5s)->stat(root + "/7/config", source.get_token());
    BOOST_TEST_REQUIRE(!unresolved.has_value());
    BOOST_TEST((unresolved.err().kind == error_kind::unreachable), unresolved.err().message);
    BOOST_TEST_MESSAGE("error: " << unresolved.err().message);
    BOOST_TEST(has(unresolved.err().message, "no-such-host.invalid"), unresolved.err().message);
}

BOOST_AUTO_TEST_CASE(a_stop_ends_a_call_to_an_endpoint_that_never_answers) {
    silent_server silent;
    auto t = target_for("bucket");
    t.endpoint = "http://127.0.0.1:" + std::to_string(silent.port);
    auto store = store_for(t, 60s);
    std::stop_source source;
    const auto started = clock_type::now();
    std::jthread stopper([&] {
        std::this_thread::sleep_for(300ms);
        source.request_stop();
    });
    const auto info = store->stat(root + "/7/config", source.get_token());
    const auto took = clock_type::now() - started;
    // About 300 ms meant (the stop is looked at every 50 ms); a stop left
    // unheard runs into the store's 60 s timeout. The bound sits between.
    BOOST_TEST((took >= 300ms), std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    BOOST_TEST((took < 5s), std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    BOOST_TEST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::cancelled), info.err().message);
    BOOST_TEST_MESSAGE("error: " << info.err().message);

    // The timeout ends it too, as unreachable.
    auto quick = store_for(t, 500ms);
    std::stop_source never;
    const auto started2 = clock_type::now();
    const auto usage = quick->usage(never.get_token());
    const auto took2 = clock_type::now() - started2;
    // About 500 ms meant; without the timeout the call waits on the silent
    // server for good. The bound sits between, for a slow machine.
    BOOST_TEST((took2 < 5s), std::chrono::duration_cast<std::chrono::milliseconds>(took2).count() << " ms");
    BOOST_TEST_REQUIRE(!usage.has_value());
    BOOST_TEST((usage.err().kind == error_kind::unreachable), usage.err().message);
    BOOST_TEST_MESSAGE("error: " << usage.err().message);
    BOOST_TEST(has(usage.err().message, "did not answer within"), usage.err().message);
}

// TLS against a real TLS server (openssl s_server with a self-signed
// certificate for 127.0.0.1; its -www page stands in for an object).
BOOST_AUTO_TEST_CASE(tls_verification_failures_name_the_attributes_that_fix_them) {
    const fs::path dir = scratch() / "tls";
    fs::create_directories(dir);
    const std::string cert = (dir / "cert.pem").string();
    const std::string key = (dir / "key.pem").string();
    const auto made = run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                           "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
                          {});
    BOOST_TEST_REQUIRE(made.status == 0, made.err);

    const unsigned short port = closed_port();
    oneds::common::child_spec spec;
    spec.argv = {"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert", cert, "-key",
                 key,       "-www",     "-quiet"};
    spec.in = oneds::common::child_stream::null();
    spec.out = oneds::common::child_stream::null();
    spec.err = oneds::common::child_stream::file((dir / "s_server.err").string(), O_WRONLY | O_CREAT | O_TRUNC);
    auto server = oneds::common::spawn(spec);
    struct stopper {
        oneds::common::child &c;
        ~stopper() { c.kill(); }
    } stop_server{server};
    bool listening = false;
    for (int i = 0; i < 100 && !listening; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(port);
        listening = ::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0;
        ::close(fd);
        if (!listening) std::this_thread::sleep_for(50ms);
    }
    BOOST_TEST_REQUIRE(listening, oneds::test::read_file(dir / "s_server.err"));

    std::stop_source source;
    auto t = target_for("bucket");
    t.endpoint = "https://127.0.0.1:" + std::to_string(port);
    // The system's CAs do not know the certificate.
    auto info = store_for(t, 10s)->stat(root + "/7/config", source.get_token());
    BOOST_TEST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::host_key), info.err().message);
    BOOST_TEST_MESSAGE("error: " << info.err().message);
    BOOST_TEST(has(info.err().message, "RESTIC_S3_CACERT"), info.err().message);
    BOOST_TEST(has(info.err().message, "RESTIC_S3_INSECURE_TLS"), info.err().message);
    BOOST_TEST(has(info.err().message, "self"), info.err().message);  // OpenSSL's reason: self-signed

    // Trusted through RESTIC_S3_CACERT, or not checked: the request goes through.
    t.ca_file = cert;
    info = store_for(t, 10s)->stat(root + "/7/config", source.get_token());
    BOOST_TEST_REQUIRE(info.has_value(), message_of(info));
    BOOST_TEST(info->exists);
    auto insecure = target_for("bucket");
    insecure.endpoint = t.endpoint;
    insecure.insecure_tls = true;
    info = store_for(insecure, 10s)->stat(root + "/7/config", source.get_token());
    BOOST_TEST_REQUIRE(info.has_value(), message_of(info));

    // A trusted certificate for another name than the endpoint's is refused.
    t.endpoint = "https://localhost:" + std::to_string(port);
    info = store_for(t, 10s)->stat(root + "/7/config", source.get_token());
    BOOST_TEST_REQUIRE(!info.has_value());
    BOOST_TEST((info.err().kind == error_kind::host_key), info.err().message);
    BOOST_TEST_MESSAGE("error: " << info.err().message);
    BOOST_TEST(has(info.err().message, "mismatch"), info.err().message);
    BOOST_TEST(has(info.err().message, "RESTIC_S3_ENDPOINT"), info.err().message);
}
