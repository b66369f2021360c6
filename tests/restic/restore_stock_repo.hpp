// Repositories written THE WAY THE STOCK DRIVER WRITES THEM, with the real
// restic and qemu-img and without our backup action, so that the restore-side
// actions (rm, stat, ls, increment_flatten, restore, the restic:// downloader)
// are tested against what existing OpenNebula installations hold
// (docs/stock-driver.md#repository-layout-and-ids, #the-backup-folder, #backup):
//
// * one repository per VM (<BASE_PATH>/<vm>) or per backup job
//   (<BASE_PATH>/job_<bj>);
// * increment k is one `restic backup --force --tag=one-<vm>` of the files
//   <backup_dir>/disk.<id>.<k> (+ disk.tpm.0) and <backup_dir>/vm.xml at their
//   absolute paths, the folder holding only that increment's files (prebackup
//   makes it, postbackup removes it);
// * increment 0 is a full qcow2; increment k > 0 is a qcow2 overlay made with
//   `qemu-img create -f qcow2 -F qcow2 -b disk.<id>.<k-1>`, written with
//   qemu-io, then detached with `qemu-img rebase -u -b ""`;
// * vm.xml is base64 in 60-column lines.
//
// Each increment writes its own blocks AND overwrites one block shared by all
// increments (at 64 KiB), so a chain rebuilt in the wrong order gives a
// different image. Snapshots are dated one day apart (--time), as backups
// taken on different days are; the stock flatten keeps increment times.
//
// What each disk looked like at each increment is kept as a raw image, made
// from the intact chain before detaching, to compare downloads against.
#pragma once

#include "tests/restic/restic_fixture.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace oneds::test::stock {

// Runs argv; throws std::runtime_error naming `what` with the output when it
// does not exit 0. Returns stdout.
std::string must(const std::vector<std::string> &argv, const std::string &what, const std::string &input = {});

struct disk {
    int id = 0;
    std::uint64_t size_mib = 16;  // virtual size; also DISK/SIZE in vm.xml
    std::uint64_t base_mib = 2;   // data in increment 0, from offset 0
    bool random = false;          // random base data (incompressible) instead of a pattern
};

struct increment {
    int id = 0;            // OpenNebula increment id (0: the FULL one)
    std::string short_id;  // 8 chars: what oned stores as SOURCE
    std::string long_id;
    std::string time;                // restic's snapshot time, e.g. 2024-01-03T10:07:00Z
    std::vector<std::string> paths;  // as restic stored them (sorted)
    std::uint64_t size_mb = 0;       // total_bytes_processed / MiB, what backup prints
    std::string tpm;                 // the disk.tpm.0 tarball, empty when none
    std::string vm_xml;              // decoded vm.xml of this snapshot
};

struct snapshot_info {
    std::string id, short_id, time;
    std::vector<std::string> paths, tags;
};

// restic snapshots --json --no-lock of the whole repository (or of ids).
std::vector<snapshot_info> snapshots(const restic_fixture &f, const std::string &repo,
                                     const std::vector<std::string> &ids = {});
// Sum of the sizes of the files under <repo>/data (the pack files).
std::uint64_t pack_bytes(const std::string &repo);
// restic check; "" when it passes, its output otherwise.
std::string check_repository(const restic_fixture &f, const std::string &repo);

// A minimal but realistic VM document for vm.xml (what prebackup encodes):
// NAME, DISKs with DISK_ID/IMAGE_ID/SIZE/TARGET, one NIC with IP and MAC,
// CONTEXT with ETH0_* entries, GRAPHICS with a PORT, OS with a UUID, a
// USER_TEMPLATE with DESCRIPTION, and TPM when tpm is set.
std::string vm_document(int vm, const std::vector<disk> &disks, bool tpm = false,
                        const std::vector<std::pair<int, std::uint64_t>> &size_overrides = {});

class chain {
public:
    // Initialises the repository when it does not exist yet (a job
    // repository is shared by the chains of several VMs).
    chain(const restic_fixture &f, int vm, std::vector<disk> disks, std::optional<int> job = std::nullopt);

    // The vm.xml stored by the following backups (default: vm_document()).
    void set_vm_xml(const std::string &xml) { vm_xml_ = xml; }
    // Whether the following backups carry disk.tpm.0 (a fresh tarball each).
    void set_tpm(bool on) { tpm_ = on; }

    // Takes increment 0 (FULL) on the first call, the next increment after.
    const increment &backup();
    // backup() n times.
    void backup(int n);

    int vm() const { return vm_; }
    std::optional<int> job() const { return job_; }
    std::string repo() const;
    const std::vector<disk> &disks() const { return disks_; }
    const std::vector<increment> &increments() const { return incs_; }
    const increment &at(int k) const { return incs_.at(static_cast<std::size_t>(k)); }
    std::string backup_dir() const { return f_.backup_dir(vm_); }
    // The path of disk d's file of increment k inside the snapshots.
    std::string disk_path(int d, int k) const;
    // The raw image of disk d as it was at increment k.
    std::string expected_image(int d, int k) const;
    // The qcow2 of disk d at increment k with its backing chain intact.
    std::string source_image(int d, int k) const;

    // "0:a,1:b,..." with ids <= up_to (all when up_to < 0).
    std::string chain_text(int up_to = -1) const;
    // restic[+rbd]://100/<bj or empty>/<chain_text(up_to)><path>
    std::string url(const std::string &path, int up_to = -1, const std::string &scheme = "restic") const;
    std::string url(int d, int k) const { return url(disk_path(d, k), k); }

    struct image_options {
        int id = 42;
        bool incremental = true;     // BACKUP_INCREMENTS (INCREMENT mode) or a FULL image of the last snapshot
        std::vector<int> order;      // the XML order of the increments (default: by id)
        std::string format = "raw";  // what backup printed
    };
    // The IMAGE element oned sends for this backup image (image.xsd order;
    // IMAGE/DATASTORE holds the datastore NAME).
    std::string image_xml(const image_options &o) const;
    std::string image_xml() const { return image_xml(image_options{}); }

private:
    const restic_fixture &f_;
    int vm_;
    std::vector<disk> disks_;
    std::optional<int> job_;
    std::string work_, expected_;
    std::string vm_xml_;
    bool tpm_ = false;
    std::vector<increment> incs_;
};

// The IMAGE element of a FULL-mode backup image with SOURCE source.
std::string full_image_xml(int image_id, int vm, const std::string &source, std::optional<int> job = std::nullopt,
                           const std::string &format = "raw");

// The reference restore, done the stock downloader's way (docs/stock-driver.md#downloader) with restic
// and qemu-img directly: dumps disk d's file of every snapshot of `snaps`
// (increment id, snapshot id) into dir, re-links each onto its predecessor
// (`qemu-img rebase -u -F qcow2 -b`) and returns the path of the top file.
// Throws with what went wrong (a snapshot without the disk, a base that
// still has a backing file, ...).
std::string rebuild(const restic_fixture &f, const std::string &repo,
                    const std::vector<std::pair<int, std::string>> &snaps, int d, const std::string &dir);

// "" when the two images have the same content (qemu-img compare), else the
// reason. expected is raw; got is probed (it must be qcow2 when
// require_qcow2, with no backing file when standalone).
std::string compare_images(const std::string &expected_raw, const std::string &got, bool require_qcow2 = true,
                           bool standalone = true);

// qemu-img info --output json of file, parsed fields.
struct image_info {
    std::string format;
    std::string backing;  // "" when none
    std::uint64_t virtual_size = 0, actual_size = 0;
};
image_info info(const std::string &file);

// Every regular file under dir (recursively), "" when none or dir is absent.
std::vector<std::string> files_under(const std::string &dir);

}  // namespace oneds::test::stock
