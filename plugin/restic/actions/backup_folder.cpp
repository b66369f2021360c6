#include "plugin/restic/actions/backup_folder.hpp"

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace oneds::restic {
namespace {

constexpr std::string_view disk_marker = "ONEDS_DISK=";
constexpr std::string_view missing_marker = "ONEDS_MISSING=";

// $1 is the folder, the rest is restic's command line. A glob that matches
// nothing stays the pattern itself, which then does not exist. printf, not
// echo: dash's echo would read backslashes in a name. No single quote, so
// the quoted remote line stays readable.
constexpr const char *lister_script =
    "d=$1; shift; "
    "for f in \"$d\"/disk.*; do [ -e \"$f\" ] || { printf \"ONEDS_MISSING=%s/disk.*\\n\" \"$d\"; exit 1; }; break; "
    "done; "
    "[ -e \"$d/vm.xml\" ] || { printf \"ONEDS_MISSING=%s/vm.xml\\n\" \"$d\"; exit 1; }; "
    "printf \"ONEDS_DISK=%s\\n\" \"$d\"/disk.*; "
    "exec \"$@\" \"$d\"/disk.* \"$d/vm.xml\"";

}  // namespace

backup_files list_backup_folder(const std::string &dir) {
    namespace fs = std::filesystem;
    backup_files out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.starts_with("disk.")) out.disks.push_back(dir + "/" + name);
    }
    // A folder that is not there names no disk, as the shell's glob would.
    if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory) {
        out.error = "cannot list " + dir + ": " + ec.message();
        out.disks.clear();
        return out;
    }
    std::sort(out.disks.begin(), out.disks.end());
    if (out.disks.empty())
        out.missing = dir + "/disk.*";
    else if (!fs::exists(dir + "/vm.xml", ec)) {
        if (ec && ec != std::errc::no_such_file_or_directory)
            out.error = "cannot look at " + dir + "/vm.xml: " + ec.message();
        else
            out.missing = dir + "/vm.xml";
    }
    return out;
}

std::vector<std::string> remote_lister(const std::string &dir) {
    // "oneds-backup" is the script's $0, the name its shell errors carry.
    return {"sh", "-c", lister_script, "oneds-backup", dir};
}

bool lister_report::take(std::string_view line) {
    if (line.starts_with(disk_marker)) {
        std::string path(line.substr(disk_marker.size()));
        // Names are unique within one listing: a name seen before starts
        // the report of a rerun.
        if (std::find(files_.disks.begin(), files_.disks.end(), path) != files_.disks.end()) done_ = true;
        if (!done_) files_.disks.push_back(std::move(path));
        return true;
    }
    if (line.starts_with(missing_marker)) {
        // Whichever run said it: that run did not start restic.
        files_.missing = std::string(line.substr(missing_marker.size()));
        return true;
    }
    if (!files_.disks.empty()) done_ = true;
    return false;
}

}  // namespace oneds::restic
