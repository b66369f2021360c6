// The files a backup takes from the VM's backup folder, named as the stock
// script names them (docs/stock-driver.md#backup): every <dir>/disk.* entry,
// then <dir>/vm.xml, which must exist too. Nothing is backed up otherwise.
//
// On this machine the folder is listed here (names in byte order). On a
// hypervisor the listing costs no round trip of its own: restic starts under
// a constant `sh -c` script (remote_lister) that globs the folder, writes
// each name to stdout as "ONEDS_DISK=<path>" (or "ONEDS_MISSING=<what>" and
// exits 1 without starting restic) and then execs restic with the names
// appended, in the shell's glob order, as the stock script's glob does. exec
// keeps the pid, so a cancel still signals restic itself. The script is a
// constant: the folder and restic's command line reach it as positional
// parameters, quoted with everything else by the ssh adapter's one quoting
// function, so the shell never parses any of them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace oneds::restic {

struct backup_files {
    std::vector<std::string> disks;  // <dir>/disk.*, in order
    std::string missing;             // "" or what is missing: "<dir>/disk.*", "<dir>/vm.xml"
    std::string error;               // "" or why the folder could not be listed
};

// The folder's files on this machine.
backup_files list_backup_folder(const std::string &dir);

// The words restic's command line is prefixed with on a hypervisor; the
// script appends the disks and <dir>/vm.xml to it.
std::vector<std::string> remote_lister(const std::string &dir);

// Reads the script's report from restic's stdout: true (and the line is
// taken) for a line of the report, false for restic's own output. A rerun
// of the same command (a lock retry, the run after creating the repository)
// repeats the report: the first listing is kept, a "missing" of any run
// counts.
class lister_report {
public:
    bool take(std::string_view line);
    const backup_files &files() const noexcept { return files_; }

private:
    backup_files files_;
    bool done_ = false;  // the first listing is complete
};

}  // namespace oneds::restic
