// What restic prints, decoded: the version line, backup --json status and
// summary lines, lock conflict text, and the classification of an exit.
//
// Classification works for every version from 0.14 to 0.19 without knowing
// which one ran: exit codes 10/11/12 exist only from 0.17 (0.14-0.16 exit 1
// for the same conditions), so the code is used when present and restic's
// stable message text otherwise (docs/restic.md#exit-codes, #locks).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace oneds::restic {

struct restic_version {
    int major = 0, minor = 0, patch = 0;
    bool at_least(int ma, int mi, int pa = 0) const {
        if (major != ma) return major > ma;
        if (minor != mi) return minor > mi;
        return patch >= pa;
    }
    std::string str() const;
};

// "restic 0.14.0 compiled with go1.19.8 on linux/amd64" (and the 0.17+ JSON
// {"version":"0.17.3",...}) -> 0.14.0.
std::optional<restic_version> parse_version(std::string_view text);

struct backup_status {
    double percent_done = 0;  // 0..1; 0 when restic does not know the total
    std::uint64_t bytes_done = 0;
    std::uint64_t total_bytes = 0;
    double seconds_elapsed = 0;
};

struct backup_summary {
    std::string snapshot_id;  // short (0.14) or full (0.15+)
    std::uint64_t total_bytes_processed = 0;
    std::uint64_t data_added = 0;
    std::uint64_t total_files_processed = 0;
};

// One stdout line of `restic backup --json`. Lines that are not JSON (0.14
// prints "created new cache in ..." even with --json) or of another type give
// monostate.
std::variant<std::monostate, backup_status, backup_summary> parse_backup_line(std::string_view line);

struct lock_holder {
    bool exclusive = false;
    std::string pid, host, user, created_at, age;
    // "PID 4711 on node3 by oneadmin, created 2025-01-02 03:04:05 (12m3s ago)";
    // "a holder restic did not name" when the text named none.
    std::string describe() const;
};

std::optional<lock_holder> parse_lock_conflict(std::string_view stderr_text);

// What went wrong, by kind: only `locked` (another restic holds the lock) is
// worth waiting for; a read-only, full or forbidden storage is not, even when
// restic reports it as "unable to create lock in backend".
enum class exit_kind {
    success,
    partial,  // 3: snapshot made, some files unreadable
    repo_missing,
    locked,  // a lock conflict with another restic (live or stale)
    wrong_password,
    already_exists,  // init on an existing repository
    read_only,       // the repository's storage is read-only
    no_space,        // the repository's storage is full
    permission,      // the storage refuses access (file permissions)
    damaged,         // a pack or index file is missing or its content does not match its id
    network,         // the connection to the storage failed or was lost
    killed,          // restic ended by a signal other than SIGINT (its lock may be left)
    interrupted,     // 130, or cancelled by us
    failed,
};

// "read-only storage", "no space left", ...: what a kind means, for messages;
// "" for success, failed and the kinds whose message says it all.
std::string_view exit_kind_text(exit_kind kind);

struct exit_info {
    exit_kind kind = exit_kind::failed;
    std::optional<lock_holder> lock;
    // restic's own words, one line, no progress noise, no Go stack trace, no
    // terminal control sequences; never empty for a failure (when restic said
    // nothing, what is known: "restic was killed by signal 9 (Killed)").
    std::string message;
};

// exit_code as command_result gives it (128 + n for a signal n).
exit_info classify_exit(int exit_code, std::string_view stderr_text);

// restic's error text from its stderr: Fatal lines, JSON error messages and the
// other diagnostic lines, joined into one line and capped in length. Go stack
// traces (0.14 prints one for some backend errors), restic's own retry notes
// and terminal control sequences are left out.
std::string restic_error_text(std::string_view stderr_text);

// A line of restic's own backend retries ("Load(<data/1a2b3c4d5e>, 0, 0)
// returned error, retrying after 1.2s: open ...: no such file or directory")
// whose error retrying cannot cure: a pack or index file missing or not
// matching its id (damaged), a read-only, full or forbidden storage, and
// SFTP's bare "Failure" on a write (OpenSSH's sftp-server sends it for
// EROFS, ENOSPC, EDQUOT and EIO alike). restic 0.14 retries each ten times,
// about 45 s, and a missing pack again for each of its blobs. The kind and
// the error in one line, or nothing for any other line.
struct permanent_failure {
    exit_kind kind;
    std::string message;
};
std::optional<permanent_failure> permanent_retry_failure(std::string_view stderr_line);

}  // namespace oneds::restic
