// A BACKUP image as oned describes it (docs/stock-driver.md#reading-a-backup-image),
// the restic:// URL grammar (docs/stock-driver.md#the-restic-url-grammar), and
// what restic says about the snapshots of an image
// (docs/stock-driver.md#snapshot-discovery).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pugi {
class xml_document;
}

namespace oneds::restic {

struct increment {
    int id = 0;
    std::string snapshot;  // 8-char restic short id (image SOURCE)
    bool operator==(const increment &) const = default;
};

struct backup_image {
    std::vector<increment> chain;     // BACKUP_INCREMENTS in XML order, or {0: SOURCE}
    std::string vm_id;                // VMS/ID
    std::string bj_id;                // TEMPLATE/BACKUP_JOB_ID or BACKUP_JOB_ID
    std::string format;               // FORMAT
    std::string path;                 // PATH (a restic:// URL for restored images)
    std::optional<int> keep_last;     // /DS_DRIVER_ACTION_DATA/EXTRA_DATA/KEEP_LAST
    std::optional<int> increment_id;  // /DS_DRIVER_ACTION_DATA/TEMPLATE/INCREMENT_ID

    // job_<bj>, else the VM id, else the VM id in PATH (".../<vm>/backup/<file>").
    // Empty when none of them is known.
    std::string repo_id() const;
    std::string last() const { return chain.empty() ? std::string() : chain.back().snapshot; }
    // The SOURCE of INCREMENT_ID, or "" when absent or unknown.
    std::string selected() const;
    // The chain sorted by increment id (oned's order, not the XML's).
    std::vector<increment> ordered() const;
    // Entries with id <= n (all when n is empty or -1), in id order.
    std::vector<increment> up_to(std::optional<int> n) const;
};

// Throws std::runtime_error naming what is missing or malformed.
backup_image parse_backup_image(const pugi::xml_document &doc);

// "0:a47997ab,1:6ca565cd"
std::string chain_text(const std::vector<increment> &chain);
// oned's chain_keep_last: the last keep entries, the first of them now pointing
// at new_snapshot.
std::string chain_keep_last(const std::vector<increment> &ordered_chain, int keep, const std::string &new_snapshot);

// restic[+rbd]://<ds_id>/<bj_id or empty>/<inc>:<snap>[,<inc>:<snap>...]<absolute file path>
struct restic_url {
    bool rbd = false;
    std::string ds_id;
    std::string bj_id;
    std::vector<increment> chain;
    std::string path;        // absolute, inside the snapshot
    std::string disk_index;  // 2nd dot-token of the file name: "0" for disk.0.3, "tpm" for disk.tpm.0
    std::string vm_id;       // from ".../<vm>/backup/<file>"

    std::string repo_id() const { return bj_id.empty() ? vm_id : "job_" + bj_id; }
    std::string str() const;
};

// Throws std::runtime_error with a message naming the URL part that is wrong.
restic_url parse_restic_url(const std::string &url);

// "restic[+rbd]://<ds>/<bj>/<chain>" (the part before the path).
std::string restic_url_base(bool rbd, const std::string &ds_id, const std::string &bj_id,
                            const std::vector<increment> &chain);

// What `restic snapshots --json` tells about one snapshot.
struct snapshot_info {
    std::string id;        // full id
    std::string short_id;  // first 8 characters
    std::string time;      // RFC 3339 as restic wrote it
    std::vector<std::string> paths;
    std::vector<std::string> tags;
    std::vector<std::string> disk_paths() const;   // basename disk.<n>.* (not disk.tpm.0)
    std::vector<std::string> other_paths() const;  // the rest (vm.xml, disk.tpm.0)
};

// Parses the JSON array; throws std::runtime_error on malformed output.
std::vector<snapshot_info> parse_snapshots_json(const std::string &json);

// The 2nd dot-token of a file's base name ("disk.0.3" -> "0"); "" when none.
std::string disk_index_of(const std::string &path);
std::string base_name(const std::string &path);
std::string dir_name(const std::string &path);
// ".../<vm>/backup/<file>" -> "<vm>" (digits), else "".
std::string vm_of_backup_path(const std::string &path);
// The digits after the first "disk." that has any in a file name
// ("disk.2.rbd2" -> "2"), else "". Both by hand, never std::regex (its
// recursion overflows the stack on long input: tests/fuzz).
std::string disk_id_of(const std::string &file_name);

}  // namespace oneds::restic
