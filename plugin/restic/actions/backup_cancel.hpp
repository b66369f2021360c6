// The matching rules of backup_cancel (backup_cancel.cpp), exposed for tests.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace oneds::restic {

// True when argv is a backup-side process of the backup that <host_dir>
// (<host>:<vm_dir>) and deploy_id name: some argument is a program called
// backup, backup_live, prebackup or prebackup_live (any folder), the argument
// after it is exactly host_dir and the third after it exactly deploy_id.
bool is_backup_process_of(const std::vector<std::string> &argv, const std::string &host_dir,
                          const std::string &deploy_id);

// The pids of "/proc/<pid>/cmdline" lines (what `grep -l` prints).
std::vector<std::string> pids_from_grep_listing(std::string_view listing);

}  // namespace oneds::restic
