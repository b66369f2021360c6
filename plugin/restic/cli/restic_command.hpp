// One restic run, described whole, and the one place where it becomes a
// command line (docs/stock-driver.md#restic-command-composition):
//
//   [<launcher>] [<confinement>] <bin> <options> [--limit-upload=K --limit-download=K]
//       [--option=sftp.connections=N] [--option=sftp.command=...] [--compression=MODE]
//       --repo=<repo> <subcommand> <args...>
//
// sftp.connections and compression apply to backup, restore and dump only and
// only when they differ from restic's defaults (5, auto), as stock.
// sftp.command is ours: it carries `-F <ssh_config>` so that restic's ssh uses
// the same client configuration as every other ssh the plugin starts (only for
// an sftp repository reached by restic itself).
//
// <confinement> is, for a confined command (the backup's restic), the
// systemd slice launcher when the datastore sets a slice limit
// (systemd_slice.hpp), else `nice -n N` and/or `ionice -c2 -nM`; the slice
// wins, the two are never combined (as stock).
//
// Where it runs decides how the password travels, here and nowhere else: on
// this machine (site.host "") in the child's own environment
// (RESTIC_PASSWORD, marked secret); on another host on the ssh channel's stdin
// (restic reads it from a stdin that is not a terminal). Never in argv. In a
// systemd slice always on stdin, here too: the unit does not inherit the
// caller's environment, and nothing secret may become a unit property.
#pragma once

#include "plugin/restic/model/attributes.hpp"
#include "plugin/restic/cli/restic_output.hpp"
#include "plugin/restic/cli/systemd_slice.hpp"

#include "plugin/ports/process.hpp"

#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace oneds::restic {

// Where a restic runs and against which repository.
struct repo_site {
    std::string host;        // "" = this machine, else an ssh destination ([user@]host)
    std::string restic_bin;  // the binary on that host
    std::string repo;        // URL or path as restic on that host sees it
    std::string ssh_config;  // for sftp.command (an sftp: repository reached from here), "" = none
    std::string path;        // the repository's path on its storage (BASE_PATH/<id>)
    // restic_bin is OpenNebula's copy on a hypervisor or the backup server
    // (which may be this machine), and when it is not executable restic from
    // that host's PATH runs instead, with a warning; the choice is made in the
    // same ssh, by a constant script (restic_words). fallback_hint says how to
    // put the copy there.
    bool path_fallback = false;
    std::string fallback_hint;
    // Not empty: no restic can run at this site; the error to report.
    std::string unavailable;
    std::string describe() const { return host.empty() ? repo : host + ":" + repo; }
};

// What a look at a lock's holder found (repo_ops.hpp: stale_lock_inspector).
struct lock_check {
    enum class verdict {
        alive,    // the holder runs: wait for it
        removed,  // the holder is gone and its lock was removed: retry at once
        unknown,  // cannot tell (another host, no answer): wait, as for a live one
    };
    verdict result = verdict::unknown;
    std::string detail;  // for the log line: "running on node3", "process 4711 is gone from node3"
};
using lock_inspector = std::function<lock_check(const lock_holder &, const std::stop_token &)>;

struct restic_command {
    repo_site site;
    std::string subcommand;            // backup, init, snapshots, forget, dump, restore, unlock
    std::vector<std::string> options;  // before the common options (--force --json --tag=one-7)
    std::vector<std::string> args;     // after the subcommand
    bool confined = false;             // the backup's restic: systemd slice, else RESTIC_NICE / RESTIC_IONICE
    std::string confine_path;          // the folder the slice's IOPS limits name (the VM's backup folder)
    systemd_tools systemd;             // the slice's tools on the host where restic runs
    // Words the whole command line is prefixed with, before the confinement:
    // a program that execs the rest (the backup's folder lister on a
    // hypervisor, actions/backup_folder.hpp).
    std::vector<std::string> launcher;
    std::string what;             // for messages: "backup of VM 7"
    bool retry_on_lock = true;    // lock conflicts retried (restic_runner)
    lock_inspector inspect_lock;  // asked once per holder before waiting on it
    std::function<void(std::string_view)> on_stdout_line;
};

// The words that start restic at site: {restic_bin}, or with path_fallback
// `sh -c <picker> oneds-restic <restic_bin>`, where the
// constant picker execs restic_bin when it is an executable file, else the
// restic on PATH after printing "ONEDS_RESTIC_FROM_PATH=<path>" to stderr,
// else prints "ONEDS_RESTIC_MISSING=<restic_bin>" and exits 127 (the runner
// turns both lines into a warning or an error). exec keeps the pid.
std::vector<std::string> restic_words(const repo_site &site);
inline constexpr std::string_view restic_from_path_marker = "ONEDS_RESTIC_FROM_PATH=";
inline constexpr std::string_view restic_missing_marker = "ONEDS_RESTIC_MISSING=";

// The process port's command for c: argv, environment (GOMAXPROCS,
// RESTIC_PROGRESS_FPS, and the password on this machine) and stdin (the
// password on another host). Throws attribute_error for a value that cannot
// be passed safely (a word restic would split in sftp.command, a password
// with a line break for a remote restic).
ports::command process_command(const restic_command &c, const datastore_attributes &a);

// The value of -o sftp.command for an sftp repository when an ssh config file
// is used: "ssh -F <cfg> -o BatchMode=yes -l <user> <server> -s sftp".
// restic splits it itself (on any Unicode white space, handling quotes and
// backslashes): every word is checked to stay one word. Throws attribute_error.
std::string sftp_command(const datastore_attributes &a, const std::string &ssh_config);

}  // namespace oneds::restic
