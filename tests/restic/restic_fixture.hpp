// Shared set-up for the restic plugin's integration tests: a real sshd (the
// "backupserver" and "hypervisor" aliases both reach this machine through it),
// a scratch tree with a system datastore and a backup datastore, sample VMs
// with qcow2 disks made by the real qemu-img, and helpers to run one_ds_host
// and the real restic.
#pragma once

#include "tests/integration/action_process.hpp"
#include "tests/integration/scratch_dir.hpp"
#include "tests/support/files.hpp"
#include "tests/support/sshd_fixture.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace oneds::test {

// As a plugin_cfg value: the key is left out of the config file (the
// plugin's own default applies, not the fixture's).
inline const std::string k_unset = "\x7f(unset)";

inline const std::string k_password = "p w'$x\"q`";  // quotes, $, blank, backtick: none may break anything

struct disk_spec {
    int id = 0;
    std::uint64_t size_mib = 16;  // virtual size
    std::uint64_t data_mib = 2;   // written with a pattern at offset 0
    bool random = false;          // random data instead of a pattern
};

// An S3 bucket the fixture's datastore keeps its repositories in (use_s3).
struct s3_bucket {
    std::string endpoint;  // "http://127.0.0.1:<port>"
    std::string bucket;
    std::string access_key, secret_key;
};

class restic_fixture {
public:
    restic_fixture();

    // From now on: document() describes an S3 datastore in bucket b
    // (RESTIC_BACKEND=S3 with its endpoint, bucket and keys; no SFTP server),
    // and restic() and repo_url() map a repository path under base_path() to
    // its s3: URL, with the keys in restic's environment.
    void use_s3(s3_bucket b);
    const std::optional<s3_bucket> &s3() const { return s3_; }
    // The repository as restic run by hand names it: the path itself, or
    // s3:<endpoint>/<bucket>/<path below base_path()> after use_s3().
    std::string repo_url(const std::string &repo) const;

    sshd_fixture &sshd() { return *sshd_; }
    const scratch_dir &dir() const { return dir_; }
    std::string base_path() const { return dir_.file("datastores/100"); }
    std::string vm_dir(int vm) const { return dir_.file("sys/0/" + std::to_string(vm)); }
    std::string backup_dir(int vm) const { return vm_dir(vm) + "/backup"; }

    // Creates <vm_dir>/backup with disk.<id>.0 (qcow2) and a base64 vm.xml.
    void make_vm(int vm, const std::vector<disk_spec> &disks);

    // The DS_DRIVER_ACTION_DATA document; template entries override defaults
    // (RESTIC_PASSWORD, RESTIC_SFTP_SERVER=backupserver, RESTIC_SFTP_USER=<me>).
    // A value of std::nullopt removes the attribute.
    std::string document(const std::map<std::string, std::optional<std::string>> &tmpl = {},
                         const std::string &extra = "<VM><ID>0</ID></VM>") const;

    // The host's config file with [plugin.restic] entries (defaults: the
    // fixture's ssh_config, a datastore.conf in the scratch tree, short lock
    // retry interval, every progress line).
    std::string write_config(const std::map<std::string, std::string> &plugin = {}) const;

    // one_ds_host action restic <action> args... with stdin.
    process_result host_action(const std::string &action, const std::vector<std::string> &args,
                               const std::string &input, const std::map<std::string, std::string> &plugin_cfg = {},
                               const std::map<std::string, std::string> &env = {}) const;
    std::vector<std::string> host_argv(const std::string &action, const std::vector<std::string> &args,
                                       const std::map<std::string, std::string> &plugin_cfg = {}) const;

    // The real restic on a local repository path, password from a file.
    process_result restic(const std::string &repo, const std::vector<std::string> &args) const;

    // ---- Added for the restore-side tests (restore_*.cpp) ----------------------
    // The file holding k_password, for restic run by hand.
    std::string password_file() const { return password_file_; }
    // From now on document() and restic() use this password instead of
    // k_password (the password file is rewritten).
    void set_password(const std::string &password);
    const std::string &password() const { return password_; }
    // The DATASTORE element of document(tmpl) alone, as one.datastore.info
    // returns it (decrypted).
    std::string datastore_xml(const std::map<std::string, std::optional<std::string>> &tmpl = {}) const;
    // The document oned sends with an image: <IMAGE> before <DATASTORE> (as
    // ImageManager::format_message), then extra.
    std::string document_with_image(const std::string &image_xml,
                                    const std::map<std::string, std::optional<std::string>> &tmpl = {},
                                    const std::string &extra = {}) const;
    // As write_config(plugin), with top-level (host-wide) keys before the
    // [plugin.restic] section, e.g. oned_endpoint and oned_auth_file.
    std::string write_config(const std::map<std::string, std::string> &plugin,
                             const std::map<std::string, std::string> &host) const;
    // As host_argv / host_action, with top-level config keys as well.
    std::vector<std::string> host_argv(const std::string &action, const std::vector<std::string> &args,
                                       const std::map<std::string, std::string> &plugin_cfg,
                                       const std::map<std::string, std::string> &host_cfg) const;
    process_result host_action(const std::string &action, const std::vector<std::string> &args,
                               const std::string &input, const std::map<std::string, std::string> &plugin_cfg,
                               const std::map<std::string, std::string> &env,
                               const std::map<std::string, std::string> &host_cfg) const;

private:
    std::unique_ptr<sshd_fixture> sshd_;
    scratch_dir dir_;
    std::string password_file_;
    std::string password_ = k_password;
    std::optional<s3_bucket> s3_;
};

// Waits until some process's argv contains every needle as a whole argument
// (restic started by the plugin, here or through the loopback sshd); false on
// timeout. Lets lock tests release the lock only once the contender runs,
// whatever the machine's load.
bool wait_for_process_with(const std::vector<std::string> &needles, std::chrono::milliseconds timeout);
// The same, giving the pid of such a process (-1 when none came in time).
// Only this test's own processes are searched (its descendants, which include
// what runs through the fixture's sshd): another copy of the suite running at
// the same time never matches.
pid_t find_process_with(const std::vector<std::string> &needles, std::chrono::milliseconds timeout);
// This process's descendants, and the argv of a process.
std::vector<pid_t> own_descendants();
std::vector<std::string> process_argv(pid_t pid);
// Own descendants with an argument that contains text.
std::vector<pid_t> own_processes_mentioning(const std::string &text);

// Waits until a first process whose argv holds every needle has ended and
// another one (a retry) has started; false on timeout. When a plugin action
// retries a restic that met a lock, this proves that restic met the lock,
// the plugin looked at its holder and logged "repository is locked by ...;
// retry 1/N" (before its retry interval): a lock held by a stopped process
// may be released from then on, whatever the machine's load. (A process
// merely existing proves nothing: it may still be connecting, deriving its
// key or reading the config.)
bool wait_for_retry_of(const std::vector<std::string> &needles, std::chrono::milliseconds timeout);
// kill(SIGSTOP) returns before the process has stopped: waits (about a
// second at most) for its state T. False when it did not stop, or ended (or
// was already a zombie) before the signal could stop it.
bool wait_stopped(pid_t pid);
// The plugin's clean-up after a restic it killed or cancelled (a `restic
// unlock` bounded by 10 s, or kill_grace if longer) said it could not
// remove the lock: under a heavy load it may miss its bound, and then it
// says so. Only then may restic's lock stay (until the next run removes it).
bool lock_cleanup_reported_failure(const std::string &err);

// restic's lock files in the repository folder at repo (LOCAL, or SFTP
// through the loopback server): the files of <repo>/locks with restic's
// 64-hex-digit names, the ones every restic reads. A restic killed while it
// wrote its lock leaves a temporary file beside them ("<id>-tmp-<n>" on
// LOCAL, "<id>-restic-temp-<hex>" on SFTP) that every restic ignores: it is
// not a lock (docs/faults-process.md).
std::vector<std::string> restic_lock_files(const std::string &repo);
// Waits until restic_lock_files(repo) is not empty; false on timeout.
bool wait_for_restic_lock(const std::string &repo, std::chrono::milliseconds limit);

// A tmpfs of `size` mounted on dir while it lives (needs root: ok() says
// whether the mount worked), for storage that is full, read-only or resized.
class tmpfs_mount {
public:
    tmpfs_mount(const std::string &dir, const std::string &size);
    ~tmpfs_mount();
    tmpfs_mount(const tmpfs_mount &) = delete;
    tmpfs_mount &operator=(const tmpfs_mount &) = delete;
    bool ok() const { return ok_; }
    // A read-only bind mount stacked on the tmpfs: from then on every open
    // for writing fails with EROFS (and statvfs says ST_RDONLY), while a
    // file already open for writing stays writable (a plain remount
    // read-only is refused with EBUSY while one is open, and restic always
    // has a pack open during a backup). Unstacked with set_read_only(false).
    bool set_read_only(bool ro);
    bool resize(const std::string &size) const;

private:
    std::string dir_;
    bool ok_ = false;
    bool read_only_ = false;
};

// A real restic (check --read-data, an exclusive lock) stopped with SIGSTOP
// while it holds its lock; SIGCONT releases it. nullptr when it could not be
// caught holding it (five tries).
std::unique_ptr<spawned_process> hold_exclusive_lock(const std::string &password_file, const std::string &repo);

// The absolute path of a program found in PATH (run_process does not search).
std::string tool(const std::string &name);
std::string base64(const std::string &data);

}  // namespace oneds::test
