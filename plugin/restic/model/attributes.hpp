// The datastore template attributes of a restic backup datastore, parsed and
// checked once per request. Names, defaults and parsing follow the stock
// driver (docs/stock-driver.md#datastore-attributes); where we are stricter a bad value
// is an error naming the attribute and what was expected, instead of a
// silent fallback.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pugi {
class xml_node;
}

namespace oneds::restic {

enum class backend_kind { sftp, local, s3 };

// Thrown for a missing or malformed attribute; what() names it.
class attribute_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The stock driver's words for a datastore attribute it cannot use:
// "Wrong restic datastore configuration: <why>".
inline std::string wrong_configuration(std::string_view why) {
    return "Wrong restic datastore configuration: " + std::string(why);
}

struct datastore_attributes {
    std::int64_t ds_id = -1;
    std::string base_path;  // BASE_PATH, default /var/lib/one/datastores/<id>
    backend_kind backend = backend_kind::sftp;
    std::string password;                      // RESTIC_PASSWORD, one pair of surrounding quotes stripped
    std::string sftp_server;                   // RESTIC_SFTP_SERVER (required for SFTP)
    std::string sftp_user = "oneadmin";        // RESTIC_SFTP_USER
    std::optional<std::int64_t> bwlimit;       // RESTIC_BWLIMIT, KiB/s; -1 = unlimited but still passed, as stock
    std::int64_t maxproc = -1;                 // RESTIC_MAXPROC -> GOMAXPROCS when not -1
    std::string compression = "auto";          // RESTIC_COMPRESSION auto|off|max
    std::int64_t connections = 5;              // RESTIC_CONNECTIONS -> -o sftp.connections when not 5
    std::string tmp_dir = "/var/tmp";          // RESTIC_TMP_DIR
    std::optional<std::int64_t> lock_retries;  // RESTIC_LOCK_RETRIES (ours; stock: fixed 60)
    // Confinement of the backup's restic (docs/stock-driver.md#confinement, docs/confinement.md):
    // the systemd slice when any of its four limits is set, else nice -n /
    // ionice -c2 -n; each value off at -1 (or empty) as stock.
    std::int64_t nice = -1;           // RESTIC_NICE, -20..19
    std::int64_t ionice = -1;         // RESTIC_IONICE, 0..7 (best-effort class)
    std::int64_t cpu_quota = -1;      // RESTIC_CPU_QUOTA, percent of one CPU, 1..100000
    std::int64_t memory_max_mb = -1;  // RESTIC_MEMORY_MAX_MB, MiB, 1..2^30
    std::int64_t max_riops = -1;      // RESTIC_MAX_RIOPS, 1..10^9
    std::int64_t max_wiops = -1;      // RESTIC_MAX_WIOPS, 1..10^9
    // The names of the slice attributes that are set, in the order above
    // (RESTIC_MAX_RIOPS, RESTIC_MAX_WIOPS, RESTIC_CPU_QUOTA, RESTIC_MEMORY_MAX_MB).
    std::vector<std::string> slice_limits_set;
    bool slice_confined() const noexcept { return !slice_limits_set.empty(); }

    // RESTIC_BACKEND=S3 (OpenNebula 7.4; docs/s3.md). The two keys are secrets:
    // they reach restic only through its environment (here) or stdin (on a
    // hypervisor), never an argv, a log line or an error text.
    std::string s3_access_key_id;                  // RESTIC_S3_ACCESS_KEY_ID (required for S3)
    std::string s3_secret_access_key;              // RESTIC_S3_SECRET_ACCESS_KEY (required for S3)
    std::string s3_bucket;                         // RESTIC_S3_BUCKET (required for S3)
    std::string s3_region = "us-east-1";           // RESTIC_S3_REGION
    std::string s3_endpoint = "s3.amazonaws.com";  // RESTIC_S3_ENDPOINT, without a trailing '/' or leading "s3:"
    bool s3_path_style = false;                    // RESTIC_S3_FORCE_PATH_STYLE=yes
    std::string s3_cacert;                         // RESTIC_S3_CACERT
    bool s3_insecure_tls = false;                  // RESTIC_S3_INSECURE_TLS=yes
    std::int64_t total_mb = 1048576;               // TOTAL_MB: the capacity MONITOR reports for S3
};

// The words that run argv confined as the attributes ask (nice, then ionice,
// in that order as stock), followed by argv itself.
std::vector<std::string> confined_argv(const datastore_attributes &a, std::vector<std::string> argv);

// Reads the attributes from a DATASTORE element (with its TEMPLATE child).
// Throws attribute_error. Every value that reaches a command line as a word
// of its own is checked by what it is (names.hpp); is_ssh_alias tells whether
// a RESTIC_SFTP_SERVER outside the host name grammar is an alias of the ssh
// client configuration (none given: no such alias is accepted).
datastore_attributes parse_datastore(const pugi::xml_node &datastore,
                                     const std::function<bool(std::string_view)> &is_ssh_alias = {});

// "sftp:<user>@<server>:<path>" (SFTP), "<path>" (LOCAL) or
// "s3:<endpoint>/<bucket>/<repo id>" (S3), as the stock driver;
// "sftp://<user>@[<ipv6>]/<path>" for an IPv6 literal. For S3 the repository
// id is repo_path below BASE_PATH (its last component otherwise).
std::string repository_url(const datastore_attributes &a, const std::string &repo_path);

// For S3: the repository's key prefix in the bucket (repo_path below
// BASE_PATH: "7", "job_3"; "" for BASE_PATH itself).
std::string s3_repo_key(const datastore_attributes &a, const std::string &repo_path);

// Lexically normalised absolute path ("/a//b/./c/" -> "/a/b/c"), as Ruby's cleanpath.
std::string clean_path(const std::string &path);

}  // namespace oneds::restic
