// Running restic and helper programs for one repository, in the right place.
//
// Where commands run follows the stock driver (docs/stock-driver.md#where-commands-run):
//  - the front end, restic with the sftp: URL: repository creation, stat, ls;
//  - the backup server over ssh (<RESTIC_SFTP_USER>@<RESTIC_SFTP_SERVER>), restic
//    against the repository's local path: rm, increment_flatten, restore, the
//    downloader. Data then never crosses the network twice, and qemu-img runs
//    next to the data (the backup server needs restic and qemu-img, as stock);
//  - with RESTIC_BACKEND=S3 the backup runs on the hypervisor and everything
//    else here, restic with the s3: URL (stock);
//  - with RESTIC_BACKEND=LOCAL everything runs here against the path.
#pragma once

#include "plugin/restic/actions/action_env.hpp"
#include "plugin/restic/model/backup_image.hpp"
#include "plugin/restic/cli/restic_command.hpp"

#include <pugixml.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace oneds::restic {

// The request document of a datastore action, parsed once: the DATASTORE's
// attributes and, for actions on a backup image, the IMAGE.
struct request_doc {
    pugi::xml_document doc;
    datastore_attributes attrs;
    backup_image image;
};

// The one argument of monitor, stat, rm, restore and increment_flatten: oned's
// id of the datastore, image or request (an integer, -1 allowed), as oned's
// datastore driver passes it. Fails (kind invalid) naming the action when it
// is missing, not an integer, or followed by more. Deliberately stricter than
// the stock scripts, which ignore their arguments: a caller that passes
// something else is not oned, and nothing is started for it.
ports::status id_argument(const action_env &env, const std::string &action);

// Loads env's request document into d. Fails (kind invalid) with "<action>:
// the request must hold ...", "Wrong restic datastore configuration: ..." or
// "Missing datastore or image attributes: ..." (the stock prefixes).
ports::status load_request(const action_env &env, const std::string &action, request_doc &d, bool with_image);

// The datastore's RESTIC_PRUNE_MAX_UNUSED ("0" when unset): what `forget
// --prune` gets as --max-unused (rm, increment_flatten). Fails (kind invalid)
// when it does not have the stock form: digits with an optional k/M/G/T or
// %, or "unlimited".
ports::result<std::string> prune_max_unused(const request_doc &d);

repo_site frontend_site(const action_env &env, const datastore_attributes &a, const std::string &repo_path);
repo_site maintenance_site(const action_env &env, const datastore_attributes &a, const std::string &repo_path);
// Where a backup's restic runs: the hypervisor (exec_host of vm_host; "" =
// here), its restic binary, the repository URL and restic's ssh config there.
repo_site hypervisor_site(const action_env &env, const datastore_attributes &a, const std::string &vm_host,
                          const std::string &repo_path);

// Stale locks (a restic lock blocks every other restic until `restic unlock` removes
// it, and restic removes only locks it can tell are stale: made on the same
// host by a process that is gone, or older than 30 minutes). For a lock
// conflict met by restic at site, the inspector finds out whether the holder
// runs, where that can be told without trusting the lock file with a new
// connection: on this machine (the front end) and on the site's own host. A
// holder that is gone has its lock removed by `restic unlock` run on the
// holder's host, where restic agrees that it is stale. A holder on another
// host is not contacted (its name comes from the repository); its lock is
// removed once restic's 30-minute rule makes it stale, and waited for before.
lock_inspector stale_lock_inspector(action_env &env, const datastore_attributes &a, const repo_site &site);

// RESTIC_BACKEND=S3: a probe of ours (a ranged GET of <repo>/config, and a
// listing of <repo>/ when it is absent: adapters/s3) before
// restic starts, so that an unreachable endpoint, refused keys, a missing
// bucket or a bad CA file fail at once with words that name the problem and
// the attribute, where restic would retry for about a minute and then print
// an error that names none of them. Ok for other backends. Sets *exists
// (when given) to whether the repository is there; with must_exist, its
// absence is an error (kind not_found) naming the repository.
ports::status check_s3_repository(action_env &env, const datastore_attributes &a, const std::string &repo_path,
                                  bool must_exist, bool *exists = nullptr);

// `restic unlock` (stale locks only) at site, within kill_grace (at least
// 10 s), whether or
// not the request was cancelled: what every cancelled restic run is followed
// by, so that a restic that had to be killed leaves no lock behind.
ports::status unlock_stale(action_env &env, const datastore_attributes &a, const repo_site &site);

// Runs `restic <options> --repo=<site.repo> <subcommand> <args>` at the site,
// lock-aware (stale locks removed, live ones waited for), followed by
// unlock_stale() when it was cancelled. `what` names the operation in
// messages. stop: the request's own when not given (here and below).
// The outcome of a successful run; else an error of kind cancelled
// ("cancelled"), invalid (the datastore's attributes cannot make the
// command), not_found (no repository), permission (wrong password, storage
// refusing), unreachable or io, with failure_text() or why restic could not
// start.
ports::result<restic_outcome> run_restic(action_env &env, const datastore_attributes &a, const repo_site &site,
                                         std::vector<std::string> options, const std::string &subcommand,
                                         std::vector<std::string> args, const std::string &what,
                                         std::function<void(std::string_view)> on_stdout_line = {},
                                         std::optional<std::stop_token> stop = std::nullopt);

// `restic snapshots <ids> --no-lock --json`; ids that do not exist are absent
// from the result (restic ignores them). An empty ids list lists every snapshot.
ports::result<std::vector<snapshot_info>> query_snapshots(action_env &env, const datastore_attributes &a,
                                                          const repo_site &site, const std::vector<std::string> &ids,
                                                          std::optional<std::stop_token> stop = std::nullopt);

// "exit status 3", "killed by signal 9 (Killed)" for a command_result exit code.
std::string exit_status_text(int exit_code);
// A helper program's stderr as one line for an error message: terminal
// controls removed, and its own "<program>: " prefix dropped.
std::string tool_error_text(const std::string &program, std::string_view stderr_text);

// How many restic restores one request runs at once against a repository
// (the downloader's and increment_flatten's pulls): 4, except on S3 with a
// restic older than 0.17 (or of unknown version), which gets 1. Those
// versions retry loading a lock file that another restic removed meanwhile
// for about 45 s when an S3 store answers 404 (restic issues #1523, #3652;
// SFTP reports the file gone at once), and parallel restores of one request
// remove each other's locks all the time: 1 in 13 downloads stalled so on the
// test gateway (bench/analysis.md).
std::size_t parallel_pulls(const datastore_attributes &a, const std::optional<restic_version> &version);

// Finds a snapshot by its 8-char id in a query result.
const snapshot_info *find_snapshot(const std::vector<snapshot_info> &snaps, const std::string &short_id);

// Runs a helper program (qemu-img, mv, rm, mkdir, cat...) at host: its
// stdout on exit 0, else an error "<what>: <stderr>" (without the program's
// own "<name>: " prefix and terminal controls; "exit status N" or "killed by
// signal N (...)" when it printed nothing), kind cancelled when stopped.
ports::result<std::string> run_tool(action_env &env, const std::string &host, std::vector<std::string> argv,
                                    const std::string &what, std::optional<std::stop_token> stop = std::nullopt);

}  // namespace oneds::restic
