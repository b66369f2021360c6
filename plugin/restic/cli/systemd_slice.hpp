// The systemd slice confinement of the backup's restic, as stock
// (docs/stock-driver.md#confinement, docs/confinement.md): when any of
// RESTIC_MAX_RIOPS, RESTIC_MAX_WIOPS, RESTIC_CPU_QUOTA, RESTIC_MEMORY_MAX_MB
// is set, restic runs as
//
//   systemd-run --user --quiet --pipe --collect --wait --slice=backup.<ds>.slice
//       --unit=oneds-backup.<ds>-<pid>.service [--setenv=NAME=value...] restic ...
//
// after ~/.config/systemd/user/backup.<ds>.slice was rewritten under
// `flock -w 180` of ~/.config/systemd/user/.lock and `systemctl --user
// daemon-reload` ran. All of it happens on the host where restic runs, in the
// same process (the same ssh on a hypervisor): a constant `sh -c` script
// (slice_launcher) that takes every value as a positional parameter and
// execs nothing but systemd-run, systemctl, flock's fd and cat.
//
// How values travel (differences from stock, on purpose):
// - The password never reaches systemd-run's argv, its environment or the
//   unit's properties: systemd-run --pipe hands its stdin to the unit, and
//   restic reads the password from that stdin (it is not a terminal), here
//   as on a hypervisor. Stock pipes an `export` script into a bash in the
//   unit instead.
// - The non-secret environment restic needs (GOMAXPROCS, RESTIC_PROGRESS_FPS,
//   and SSH_AUTH_SOCK for the forwarded agent restic's sftp uses) goes as
//   --setenv=NAME=value: a unit does not inherit the caller's environment,
//   and none of these is a secret.
// - The unit has a name of ours (stock lets systemd-run pick one), so that a
//   cancel can reach restic: SIGINT or SIGTERM to `systemd-run --pipe
//   --wait` ends systemd-run only (it installs no handler outside --pty) and
//   leaves the unit running. The script therefore stays the process the
//   runner signals (it does not exec systemd-run): on SIGINT or SIGTERM it
//   sends SIGINT to the unit's main process (restic) with `systemctl --user
//   kill --kill-who=main`, and waits for systemd-run to end with restic's
//   status. A SIGKILL after the grace ends the script and systemd-run; restic
//   then dies of SIGPIPE at its next progress line, as stdout is gone.
// - Before anything starts, the script checks that the user manager has the
//   controllers the limits need (cgroup.controllers of user@<uid>.service,
//   when readable), and daemon-reload tells whether the manager is
//   reachable; either failure is reported on stdout as one line
//   "ONEDS_SLICE_ERROR=<kind>:<user>:<detail>" and restic is not started.
#pragma once

#include "plugin/restic/model/attributes.hpp"

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace oneds::restic {

// Where the systemd tools are on the host where restic runs (plugin
// settings systemd_run, systemctl, systemd_unit_dir, systemd_user_cgroup).
struct systemd_tools {
    std::string run = "systemd-run";
    std::string ctl = "systemctl";
    std::string unit_dir;     // "" = $HOME/.config/systemd/user on that host
    std::string user_cgroup;  // "" = /sys/fs/cgroup/user.slice/user-<uid>.slice/user@<uid>.service there
};

// "backup.<ds_id>.slice".
std::string slice_name(const datastore_attributes &a);

// The slice file exactly as stock writes it (`echo` of a here-document, so
// it ends with an empty line); unset limits are empty assignments:
//   [Slice]
//   CPUQuota=<q>%
//   MemoryMax=<m>M
//   IOReadIOPSMax=<io_path> <riops>
//   IOWriteIOPSMax=<io_path> <wiops>
// io_path is the VM's backup folder (cleaned). Throws attribute_error for a
// folder that cannot be one word of a unit file while an IOPS limit is set.
std::string slice_file_content(const datastore_attributes &a, const std::string &io_path);

// The controllers the set limits need, in the user manager's cgroup:
// "cpu" (CPUQuota), "memory" (MemoryMax), "io" (either IOPS limit), blank-separated.
std::string needed_controllers(const datastore_attributes &a);

// The words restic's command line (program first) is prefixed with: the
// launcher script and its parameters, then the systemd-run options that
// vary (--setenv=NAME=value for each of env, which must hold no secret).
std::vector<std::string> slice_launcher(const datastore_attributes &a, const systemd_tools &tools,
                                        const std::string &io_path, const std::map<std::string, std::string> &env);

// A failure the launcher reported before restic started.
struct slice_failure {
    std::string kind;    // manager (daemon-reload failed), controllers, lock, write
    std::string user;    // whose user manager
    std::string detail;  // systemctl's words, the missing controllers, the path
};

// Reads a launcher line: the failure, or nullopt for any other line.
std::optional<slice_failure> parse_slice_line(std::string_view line);

// The whole error: which attributes are set, what is wrong with whose user
// manager on which host, and the fix (lingering, delegation).
std::string slice_failure_message(const slice_failure &f, const datastore_attributes &a, const std::string &host);

}  // namespace oneds::restic
