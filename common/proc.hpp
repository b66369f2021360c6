// Reading the process table of this machine from /proc, for the few places
// that must find processes: the host's last-resort kill at FINALIZE, the
// front-end part of backup_cancel, and tests that look for their own children.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace oneds::common {

// A small /proc file (cmdline, stat) read with read(2); "" when it cannot be
// read. (A file of a process that exits while it is read fails with ESRCH,
// which std::ifstream in libstdc++ turns into an exception.)
std::string read_proc_file(const std::string &path);

// The arguments of process pid (its /proc/<pid>/cmdline split at NUL bytes);
// empty when the process is gone or is a kernel thread.
std::vector<std::string> process_arguments(pid_t pid);

// The pids of root's descendants (children, their children, ...), found by
// the parent pids in /proc/<pid>/stat. A snapshot: processes may come and go.
std::vector<pid_t> descendant_pids(pid_t root);

// Every pid in /proc.
std::vector<pid_t> all_pids();

// The parent pid of pid from /proc/<pid>/stat; -1 when it cannot be read.
pid_t parent_pid(pid_t pid);

// Sends sig to each of root's descendants; returns the pids signalled. Each
// is held by a pidfd and its parent checked again after that, so that a pid
// reused since the snapshot is never hit.
std::vector<pid_t> signal_descendants(pid_t root, int sig);

}  // namespace oneds::common
