// The plugin's state per datastore on the front end (docs/health.md#the-state-store):
// <state_dir>/<ds_id>/ holds JSON files, each written whole (a temporary file
// in the same directory, then rename) under an exclusive flock of
// <state_dir>/<ds_id>/.lock, so that read-modify-write cycles do not lose an
// update; readers take no lock (a rename never shows half a file).
// Directories are 0700, files 0600.
// Nothing secret is ever stored: ids, times, sizes and one-line results.
//
//   backups.json  written by backup at its end (ours)
//     {"vms": {"<vm id>": {"time": <epoch s of the end>, "duration_s": <float>,
//       "bytes_added": <int>, "result": "ok"|"failed", "message": "<one line,
//       failures only>", "repository": "<7 or job_3>"}}}
//   verify.json   written by the repository verification (read only here)
//     {"repositories": {"<repo id>": {"time": <epoch s>, "subset": "n/N",
//       "result": "ok"|"damaged"|"error", "message": "<one line>",
//       "vm": "<vm id, empty for job repositories>"}}}
//   monitor.json  written after each MONITOR (ours): its figures and the
//     health it found, which the metrics file is made from.
//
// A missing file reads as empty; a file that is not what it should be is an
// error naming it (the caller logs it and carries on).
#pragma once

#include "plugin/ports/result.hpp"

#include <cstdint>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <vector>

namespace oneds::restic::ds_state {

struct backup_record {
    std::int64_t time = 0;  // epoch seconds of the end
    double duration_s = 0;
    std::uint64_t bytes_added = 0;
    bool ok = false;
    std::string message;     // one line, failures only
    std::string repository;  // "7" or "job_3"
    // The end of the VM's last successful backup (this one's time when it
    // succeeded; kept from the previous record when it failed); 0 never.
    std::int64_t last_ok_time = 0;
};

struct verify_record {
    std::int64_t time = 0;
    std::string subset;  // "n/N"
    std::string result;  // "ok", "damaged" or "error"
    std::string message;
    std::string vm;  // empty for job repositories
};

struct monitor_record {
    std::int64_t time = 0;
    bool ok = false;
    std::string error;  // one line, when !ok
    std::uint64_t used_mb = 0, total_mb = 0, free_mb = 0;
    // The health found (docs/health.md): OK, WARNING or ERROR, and why.
    std::string health_state;
    std::string health_reason;
    std::int64_t stale_locks = -1;  // -1: could not be told
    // Repository sizes in bytes, measured through the storage (at most
    // hourly), and when.
    std::map<std::string, std::uint64_t> repository_bytes;
    std::int64_t repository_bytes_time = 0;
};

// The state of one datastore.
class store {
public:
    store(std::string state_dir, std::int64_t ds_id);

    // Sets vm_id's entry of backups.json.
    ports::status record_backup(const std::string &vm_id, const backup_record &r) const;
    ports::result<std::map<std::string, backup_record>> backups() const;
    // Drops these VMs' entries of backups.json (VMs oned no longer has).
    ports::status forget_backups(const std::set<std::string> &vm_ids) const;
    // verify.json, keyed by repository id.
    ports::result<std::map<std::string, verify_record>> verifications() const;
    ports::status record_monitor(const monitor_record &r) const;
    ports::result<std::optional<monitor_record>> last_monitor() const;

    const std::string &dir() const { return dir_; }

private:
    std::string dir_;
};

// mkdir path 0700 unless it exists as a directory.
ports::status make_dir(const std::string &path);

// An exclusive flock of <dir>/.lock held for the object's lifetime: what
// every writer of the datastore's state files holds while it reads and
// replaces one.
class dir_lock {
public:
    explicit dir_lock(const std::string &dir);
    ~dir_lock();
    dir_lock(const dir_lock &) = delete;
    dir_lock &operator=(const dir_lock &) = delete;
    // Why the lock is not held; nullopt when it is.
    const std::optional<ports::error> &problem() const { return problem_; }

private:
    int fd_ = -1;
    std::optional<ports::error> problem_;
};

// The datastore ids that have a directory under state_dir, ascending.
std::vector<std::int64_t> datastores(const std::string &state_dir);

// Parsers of the files' text (for the verification's own reuse and tests).
ports::result<std::map<std::string, backup_record>> parse_backups(const std::string &json);
ports::result<std::map<std::string, verify_record>> parse_verify(const std::string &json);

// Writes text to path whole: a temporary file beside it with mode, then
// rename. The directory must exist.
ports::status write_atomically(const std::string &path, const std::string &text, unsigned mode);

}  // namespace oneds::restic::ds_state
