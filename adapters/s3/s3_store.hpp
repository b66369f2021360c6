// ports::repo_store over S3 (AWS Signature V4 over HTTP/1.1 or HTTPS with
// Boost.Beast and OpenSSL): what the plugin does without restic on a
// repository of RESTIC_BACKEND=S3, i.e. probe `<repo>/config` and report the
// bucket for MONITOR. See docs/s3.md.
//
// Paths: target.root maps to the bucket's root, so stat(root + "/7/config")
// is the object "7/config"; a path outside root is error_kind::invalid.
//
// stat() and read_file() send a ranged GET (not a HEAD: a HEAD's error has no
// body, so it cannot tell a missing bucket from a missing key, nor refused
// keys from a refused object). An absent key is exists=false / nullopt, after
// one more request that lists the key's "directory" (a key prefix with
// objects under it is reported as a directory, as on a file system).
// make_directories() succeeds without a request; capacity() is unsupported.
//
// Errors (messages name the endpoint and bucket, never a key or a signature):
//   invalid      bad RESTIC_S3_ENDPOINT / RESTIC_S3_CACERT, a path outside root,
//                a bucket in another region than RESTIC_S3_REGION
//   not_found    the bucket does not exist
//   permission   keys refused (InvalidAccessKeyId, SignatureDoesNotMatch, ...),
//                or access denied
//   host_key     the TLS certificate cannot be verified (the fix is
//                RESTIC_S3_CACERT or RESTIC_S3_INSECURE_TLS)
//   unreachable  name not resolved, connection refused, lost, or the timeout
//   cancelled    the stop token stopped the call
//   io           any other answer
//
// One keep-alive connection per store, reused across calls; calls from
// several threads are serialised. Each call ends by its timeout and at most
// about 50 ms after a stop is requested.
#pragma once

#include "plugin/ports/repo_store.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace oneds::adapters::s3 {

struct s3_target {
    // As RESTIC_S3_ENDPOINT: "host[:port]" (https) or "http(s)://host[:port]";
    // trailing '/' and a leading "s3:" ignored.
    std::string endpoint;
    std::string bucket;
    std::string region = "us-east-1";
    std::string access_key_id;      // secret: never in a message or log
    std::string secret_access_key;  // secret: never in a message or log
    // RESTIC_S3_FORCE_PATH_STYLE; path style is chosen anyway where virtual-host
    // style cannot work (an IP literal, a port, a host that is not AWS's).
    bool path_style = false;
    std::string ca_file;        // PEM bundle trusted instead of the system's; empty: the system's
    bool insecure_tls = false;  // skip certificate verification
    std::string root;           // the plugin path that maps to the bucket's root
};

struct bucket_usage {
    std::optional<std::uint64_t> bytes;
    std::optional<std::uint64_t> objects;
};

class s3_store final : public ports::repo_store {
public:
    // Checks the target (endpoint syntax, bucket name, CA file readable and
    // holding a certificate: error kind invalid naming RESTIC_S3_ENDPOINT /
    // RESTIC_S3_CACERT); no network.
    static ports::result<std::unique_ptr<s3_store>> create(
        s3_target t, std::chrono::milliseconds timeout = std::chrono::seconds(20));
    ~s3_store() override;
    s3_store(const s3_store &) = delete;
    s3_store &operator=(const s3_store &) = delete;

    ports::result<ports::file_info> stat(const std::string &path, const std::stop_token &stop) override;
    ports::status make_directories(const std::string &path, const std::stop_token &stop) override;
    ports::result<ports::capacity_info> capacity(const std::string &path, const std::stop_token &stop) override;
    ports::result<std::optional<std::string>> read_file(const std::string &path, std::size_t max,
                                                        const std::stop_token &stop) override;
    // ListObjectsV2, delimiter '/': the objects (files, with their size) and
    // common prefixes (directories) under path + "/"; not_found when none.
    ports::result<std::optional<std::vector<ports::dir_entry>>> list_directory(const std::string &path,
                                                                               const std::stop_token &stop) override;
    // "s3:<endpoint>/<bucket>"
    std::string describe() const override;

    // HEAD of the bucket: ok / not_found / permission / unreachable / io.
    ports::status check_bucket(const std::stop_token &stop);
    // The bucket's usage where the gateway tells it in one request: Ceph RGW
    // answers HEAD bucket with X-RGW-Bytes-Used and X-RGW-Object-Count. Other
    // servers: both empty (a whole bucket is never listed).
    ports::result<bucket_usage> usage(const std::stop_token &stop);
    // The port's name for usage() (MONITOR).
    ports::result<ports::store_usage> usage_summary(const std::stop_token &stop) override;

private:
    struct impl;
    explicit s3_store(std::unique_ptr<impl> state);
    std::unique_ptr<impl> impl_;
    std::mutex mutex_;
};

}  // namespace oneds::adapters::s3
