#define BOOST_TEST_MODULE restic_action_argv
// Golden command lines and branches of the actions that action_test.cpp does
// not cover: rm on this machine, stat, ls, the downloader, increment_flatten,
// restore and backup_cancel, against the test doubles of their ports
// (tests/fakes): the recording process runner (with the real ssh_runner over
// it for the ssh form), the in-memory repository store and the fake oned API.
//
// Golden: every command an action hands the process port, whole: where it
// runs (this machine, or the ssh destination together with ssh's own
// options), argv, environment and stdin. How the password travels is pinned
// with it (cli/restic_command.hpp): a restic on this machine gets
// RESTIC_PASSWORD in its own environment, marked secret; a restic on another
// host gets it as the first line of the ssh channel's stdin. It is never a
// word of an argv or of a remote command line (checked for every run). Each
// action runs in the forms of k_forms: over ssh on the backup server, with
// the datastore's tuning attributes and an ssh config file or with the
// defaults; on this machine because RESTIC_SFTP_SERVER is in local_hosts; and
// with RESTIC_BACKEND=LOCAL.
//
// Branches, one table over the actions: repository missing, locked (a stale
// lock removed, a live holder waited for), cancelled (restic stopped, its
// stale lock removed afterwards, temporary files removed), unreachable (ssh
// to the backup server refused); then what is particular to each action.
//
// Where a command differs from what the stock driver runs
// (docs/stock-driver.md), a comment says so; the code and the ChangeLog state
// the same difference.
#include "plugin/restic/actions/action_env.hpp"

#include "tests/fakes/fake_one_api.hpp"
#include "tests/fakes/memory_store.hpp"
#include "tests/fakes/recording_runner.hpp"
#include "tests/integration/scratch_dir.hpp"

#include "adapters/ssh/ssh_runner.hpp"

#include "common/base64.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

using namespace oneds;
using namespace oneds::restic;
using namespace std::chrono_literals;
using test::recorded_run;
using test::scripted_result;

namespace {

// ---------------------------------------------------------------------------
// The scene: datastore 100 keeps VM 7's repository; its backup folder held
// disks 0 and 1 and vm.xml; increment 1 also the TPM archive.

const std::string k_password = "p w'$x";  // a blank, a quote and a dollar: nothing may split or expand it
const std::string k_front_bin = "/var/lib/one/remotes/datastore/restic/restic";
const std::string k_remote_bin = "/var/tmp/one/datastore/restic/restic";
const std::string k_ssh_config = "/etc/one/ssh_config";
const std::string k_dir = "/var/lib/one/datastores/0/7/backup";
const std::string k_repo = "/var/lib/one/datastores/100/7";
const std::string k_inc0 = "0123abcd", k_inc1 = "4567ef01", k_inc2 = "89abcdef";
const std::string k_new_snapshot = "fedcba98";
const std::string k_vm_xml =
    "<VM><ID>7</ID><NAME>web</NAME><TEMPLATE><DISK><DISK_ID>0</DISK_ID><IMAGE_ID>3</IMAGE_ID><SIZE>2048</SIZE>"
    "</DISK><DISK><DISK_ID>1</DISK_ID><IMAGE_ID>4</IMAGE_ID><SIZE>1024</SIZE></DISK></TEMPLATE><USER_TEMPLATE/></VM>";
const std::string k_tpm = "tpm archive";
const std::string k_image_bytes = "qcow2 image bytes";

struct snapshot {
    std::string short_id;
    std::string time;
    std::vector<std::string> paths;
};
const std::vector<snapshot> k_snapshots = {
    {k_inc0, "2025-01-01T01:00:00.5+01:00", {k_dir + "/disk.0.0", k_dir + "/disk.1.0", k_dir + "/vm.xml"}},
    {k_inc1,
     "2025-01-02T03:04:05.123456789+01:00",
     {k_dir + "/disk.0.1", k_dir + "/disk.1.1", k_dir + "/vm.xml", k_dir + "/disk.tpm.0"}},
    {k_inc2, "2025-01-03T00:00:00Z", {k_dir + "/disk.0.2", k_dir + "/disk.1.2", k_dir + "/vm.xml"}},
};
std::string full_id(const std::string &short_id) { return short_id + std::string(56, 'e'); }

// What `restic snapshots --json <ids>` prints: the snapshots that exist, as
// restic leaves unknown ids out.
std::string snapshots_json(const std::vector<std::string> &ids, const std::vector<snapshot> &known) {
    std::string out = "[";
    for (const auto &s : known) {
        if (!ids.empty() && std::find(ids.begin(), ids.end(), s.short_id) == ids.end()) continue;
        if (out.size() > 1) out += ",";
        out += R"({"id":")" + full_id(s.short_id) + R"(","short_id":")" + s.short_id + R"(","time":")" + s.time +
               R"(","hostname":"node1","tags":["one-7"],"paths":[)";
        for (std::size_t i = 0; i < s.paths.size(); ++i) out += (i ? ",\"" : "\"") + s.paths[i] + "\"";
        out += "]}";
    }
    return out + "]";
}

// ---------------------------------------------------------------------------
// The forms an action runs in.

enum class place {
    backup_server,  // RESTIC_SFTP_SERVER=backup: maintenance over ssh on oneadmin@backup
    local_server,   // RESTIC_SFTP_SERVER=localhost, in local_hosts: on this machine
    local_backend,  // RESTIC_BACKEND=LOCAL: on this machine against the path
};

struct form {
    const char *name;
    place where;
    bool tuned;       // RESTIC_BWLIMIT, _MAXPROC, _CONNECTIONS, _COMPRESSION, _PRUNE_*, _TMP_DIR, _SPARSIFY set
    bool ssh_config;  // the plugin's ssh_config setting
};

const form k_forms[] = {
    {"ssh to the backup server, tuned, ssh_config", place::backup_server, true, true},
    {"ssh to the backup server, defaults", place::backup_server, false, false},
    {"server in local_hosts", place::local_server, false, true},
    {"RESTIC_BACKEND=LOCAL, tuned", place::local_backend, true, false},
};
const form &k_ssh = k_forms[1];
const form &k_here = k_forms[2];

std::string server_of(const form &f) { return f.where == place::local_server ? "localhost" : "backup"; }

std::string datastore(const form &f) {
    std::string t = "<RESTIC_PASSWORD>" + k_password + "</RESTIC_PASSWORD><RESTIC_SFTP_SERVER>" + server_of(f) +
                    "</RESTIC_SFTP_SERVER>";
    if (f.where == place::local_backend) t += "<RESTIC_BACKEND>LOCAL</RESTIC_BACKEND>";
    if (f.tuned)
        t += "<RESTIC_BWLIMIT>2048</RESTIC_BWLIMIT><RESTIC_MAXPROC>2</RESTIC_MAXPROC>"
             "<RESTIC_CONNECTIONS>8</RESTIC_CONNECTIONS><RESTIC_COMPRESSION>max</RESTIC_COMPRESSION>"
             "<RESTIC_PRUNE_MAX_UNUSED>10%</RESTIC_PRUNE_MAX_UNUSED><RESTIC_PRUNE_MAX_REPACK>2G</"
             "RESTIC_PRUNE_MAX_REPACK>"
             "<RESTIC_TMP_DIR>/var/tmp/one restic</RESTIC_TMP_DIR><RESTIC_SPARSIFY>yes</RESTIC_SPARSIFY>";
    return "<DATASTORE><ID>100</ID><BASE_PATH>/var/lib/one/datastores/100</BASE_PATH><TEMPLATE>" + t +
           "</TEMPLATE></DATASTORE>";
}

std::string request(const form &f, const std::string &rest) {
    return "<DS_DRIVER_ACTION_DATA>" + datastore(f) + rest + "</DS_DRIVER_ACTION_DATA>";
}

// The backup image of VM 7 with the given increments.
std::string image(const std::vector<std::string> &chain) {
    std::string incs;
    for (std::size_t i = 0; i < chain.size(); ++i)
        incs += "<INCREMENT><ID>" + std::to_string(i) + "</ID><SOURCE>" + chain[i] + "</SOURCE></INCREMENT>";
    return "<IMAGE><ID>42</ID><SOURCE>" + chain.back() + "</SOURCE><VMS><ID>7</ID></VMS><BACKUP_INCREMENTS>" + incs +
           "</BACKUP_INCREMENTS></IMAGE>";
}

// ---------------------------------------------------------------------------
// A command as the action meant it, read back from what the runner recorded.

struct invocation {
    std::string where;              // "" = this machine, else the ssh destination
    std::vector<std::string> argv;  // the program and its arguments (after env's assignments)
    std::map<std::string, std::string> env;
    std::string stdin_data;
    std::vector<std::string> secret_env;
};

std::string joined(const std::vector<std::string> &words) {
    std::string out;
    for (const auto &w : words) out += (out.empty() ? "" : " ") + w;
    return out;
}

bool is_restic(const invocation &inv) {
    return !inv.argv.empty() && (inv.argv[0] == k_front_bin || inv.argv[0] == k_remote_bin);
}

// restic's subcommand (the word after --repo=), "version", or "".
std::string subcommand_of(const invocation &inv) {
    if (!is_restic(inv)) return {};
    if (inv.argv.size() == 2 && inv.argv[1] == "version") return "version";
    for (std::size_t i = 1; i + 1 < inv.argv.size(); ++i)
        if (inv.argv[i].starts_with("--repo=")) return inv.argv[i + 1];
    return {};
}

// What a run is, for scripts and counts: "restic forget", "qemu-img", "uname".
std::string what_of(const invocation &inv) {
    if (is_restic(inv)) return "restic " + subcommand_of(inv);
    return inv.argv.empty() ? std::string() : inv.argv[0];
}

// Where and what, for sequences: "oneadmin@backup: restic forget", "here: kill -0 4711".
std::string label(const invocation &inv) {
    return (inv.where.empty() ? std::string("here") : inv.where) + ": " +
           (is_restic(inv) ? "restic " + subcommand_of(inv) : joined(inv.argv));
}

// Splits shell text made of single-quoted words ('...' and \' only, one blank
// between words), the only form the project's quoting function writes;
// anything else is a problem (an unquoted character would be read by the
// remote shell).
std::vector<std::string> shell_words(std::string_view text, std::string &problem) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    for (std::size_t i = 0; i < text.size();) {
        const char c = text[i];
        if (c == ' ') {
            if (!in_word) {
                problem = "a blank where a word should start in: " + std::string(text);
                return {};
            }
            words.push_back(word);
            word.clear();
            in_word = false;
            ++i;
        } else if (c == '\'') {
            const auto end = text.find('\'', i + 1);
            if (end == std::string_view::npos) {
                problem = "an unterminated quote in: " + std::string(text);
                return {};
            }
            word.append(text.substr(i + 1, end - i - 1));
            in_word = true;
            i = end + 1;
        } else if (c == '\\' && i + 1 < text.size() && text[i + 1] == '\'') {
            word += '\'';
            in_word = true;
            i += 2;
        } else {
            problem = "an unquoted character '" + std::string(1, c) + "' in: " + std::string(text);
            return {};
        }
    }
    if (!in_word && !text.empty()) {
        problem = "a trailing blank in: " + std::string(text);
        return {};
    }
    if (in_word) words.push_back(word);
    return words;
}

constexpr std::string_view k_pid_prefix = "echo ONEDS_PID=$$ >&2; exec ";

struct decoded {
    invocation inv;
    std::vector<std::string> ssh_options;  // ssh's own words before the destination; empty for a local run
    bool over_ssh = false;
    bool reports_pid = false;  // false for the ssh runner's own `kill -INT` helper
    bool stop_requested_at_start = false;
    std::string problem;  // "" when the run has the shape the adapters give it
};

// Thread-safe and without assertions: scripts call it on the workers of
// parallel pulls.
decoded decode(const recorded_run &r) {
    decoded d;
    d.stop_requested_at_start = r.stop_requested_at_start;
    if (!r.host.empty()) d.problem = "a command went past the ssh runner to host " + r.host;
    const auto &argv = r.cmd.argv;
    if (argv.size() >= 3 && argv[0] == "ssh") {
        d.over_ssh = true;
        d.ssh_options.assign(argv.begin(), argv.end() - 2);
        d.inv.where = argv[argv.size() - 2];
        std::string_view line = argv.back();
        if (line.starts_with(k_pid_prefix)) {
            d.reports_pid = true;
            line.remove_prefix(k_pid_prefix.size());
        }
        auto words = shell_words(line, d.problem);
        std::size_t i = 0;
        if (!words.empty() && words[0] == "env")
            for (i = 1; i < words.size() && words[i].find('=') != std::string::npos; ++i) {
                const auto eq = words[i].find('=');
                d.inv.env[words[i].substr(0, eq)] = words[i].substr(eq + 1);
            }
        d.inv.argv.assign(words.begin() + static_cast<std::ptrdiff_t>(i), words.end());
        if (!r.cmd.env.empty()) d.problem = "the local ssh was given an environment";
    } else {
        d.inv.argv = argv;
        d.inv.env = r.cmd.env;
    }
    d.inv.stdin_data = r.cmd.stdin_data;
    d.inv.secret_env = r.cmd.secret_env;
    return d;
}

// ssh's options as the plugin builds its ssh runner (restic_plugin.cpp) with
// ssh_multiplex off: the stock driver's ControlMaster=no, agent forwarded.
std::vector<std::string> ssh_options(bool with_config) {
    std::vector<std::string> o = {"ssh", "-T"};
    if (with_config) o.insert(o.end(), {"-F", k_ssh_config});
    o.insert(o.end(), {"-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o",
                       "ForwardAgent=yes", "-o", "ConnectTimeout=30", "--"});
    return o;
}

// ---------------------------------------------------------------------------
// What the commands of one form look like (docs/stock-driver.md#restic-command-composition):
//   <bin> <caller options> [--limit-upload=N --limit-download=N] [--option=sftp.connections=N]
//         [--option=sftp.command=...] [--compression=MODE] --repo=<repo> <subcommand> <args>
// connections and compression on backup, restore and dump only.

struct site {
    std::string where, bin, repo;
    std::vector<std::string> limits, connections, sftp_command, compression;
    std::map<std::string, std::string> env;  // besides the password
};

site tuning_of(const form &f) {
    site s;
    s.env["RESTIC_PROGRESS_FPS"] = "1";
    if (!f.tuned) return s;
    s.limits = {"--limit-upload=2048", "--limit-download=2048"};
    // RESTIC_CONNECTIONS goes with an SFTP datastore whatever the repository
    // looks like where restic runs, as the stock composition passes it. On
    // the backup server the repository is a local path, and restic applies
    // only the options of the repository's own scheme: there it has no
    // effect (also in the stock driver).
    if (f.where != place::local_backend) s.connections = {"--option=sftp.connections=8"};
    s.compression = {"--compression=max"};
    s.env["GOMAXPROCS"] = "2";
    return s;
}

// rm, restore, increment_flatten, the downloader: on the backup server (ssh)
// with its restic and the repository's local path, or here.
site maintenance_of(const form &f) {
    site s = tuning_of(f);
    const bool remote = f.where == place::backup_server;
    s.where = remote ? "oneadmin@backup" : "";
    s.bin = remote ? k_remote_bin : k_front_bin;
    s.repo = k_repo;
    return s;
}

// stat and ls, and repository creation: the front end, with the sftp: URL
// (restic's own ssh then reads the plugin's ssh config through sftp.command).
site front_end_of(const form &f) {
    site s = tuning_of(f);
    s.bin = k_front_bin;
    if (f.where == place::local_backend) {
        s.repo = k_repo;
    } else {
        s.repo = "sftp:oneadmin@" + server_of(f) + ":" + k_repo;
        if (f.ssh_config)
            s.sftp_command = {"--option=sftp.command=ssh -F " + k_ssh_config + " -o BatchMode=yes -l oneadmin " +
                              server_of(f) + " -s sftp"};
    }
    return s;
}

invocation restic_call(const site &s, const std::vector<std::string> &options, const std::string &sub,
                       const std::vector<std::string> &args) {
    const bool data = sub == "backup" || sub == "restore" || sub == "dump";
    invocation inv;
    inv.where = s.where;
    inv.argv = {s.bin};
    const auto add = [&inv](const std::vector<std::string> &w) { inv.argv.insert(inv.argv.end(), w.begin(), w.end()); };
    add(options);
    add(s.limits);
    if (data) add(s.connections);
    add(s.sftp_command);
    if (data) add(s.compression);
    add({"--repo=" + s.repo, sub});
    add(args);
    inv.env = s.env;
    if (s.where.empty()) {
        inv.env["RESTIC_PASSWORD"] = k_password;
        inv.secret_env = {"RESTIC_PASSWORD"};
    } else {
        inv.stdin_data = k_password + "\n";
    }
    return inv;
}

// Any other program (qemu-img, rm, ps, restic version): no environment, no stdin.
invocation tool_call(const site &s, std::vector<std::string> argv) {
    invocation inv;
    inv.where = s.where;
    inv.argv = std::move(argv);
    return inv;
}

std::string env_text(const std::map<std::string, std::string> &env) {
    std::string out;
    for (const auto &[k, v] : env) out += (out.empty() ? "" : " ") + k + "=" + v;
    return out;
}

std::string labels(const std::vector<invocation> &runs) {
    std::string out;
    for (const auto &r : runs) out += "\n  " + label(r);
    return out;
}

void check_run(const invocation &actual, const invocation &expected) {
    BOOST_TEST(actual.where == expected.where);
    BOOST_TEST(actual.argv == expected.argv, boost::test_tools::per_element());
    BOOST_TEST((actual.env == expected.env),
               "env {" << env_text(actual.env) << "}, expected {" << env_text(expected.env) << "}");
    BOOST_TEST(actual.stdin_data == expected.stdin_data);
    BOOST_TEST(actual.secret_env == expected.secret_env, boost::test_tools::per_element());
}

// The runs, in order.
void check_runs(const std::vector<invocation> &actual, const std::vector<invocation> &expected) {
    BOOST_TEST_REQUIRE(actual.size() == expected.size(),
                       "runs:" << labels(actual) << "\nexpected:" << labels(expected));
    for (std::size_t i = 0; i < actual.size(); ++i) BOOST_TEST_CONTEXT("run " << i << ": " << label(expected[i])) {
            check_run(actual[i], expected[i]);
        }
}

// The runs in any order (they run in parallel).
void check_runs_any_order(std::vector<invocation> actual, std::vector<invocation> expected) {
    const auto key = [](const invocation &i) { return i.where + '\n' + joined(i.argv); };
    const auto by_key = [&key](const invocation &a, const invocation &b) { return key(a) < key(b); };
    std::sort(actual.begin(), actual.end(), by_key);
    std::sort(expected.begin(), expected.end(), by_key);
    check_runs(actual, expected);
}

std::vector<invocation> slice(const std::vector<invocation> &v, std::size_t from, std::size_t to) {
    return {v.begin() + static_cast<std::ptrdiff_t>(std::min(from, v.size())),
            v.begin() + static_cast<std::ptrdiff_t>(std::min(to, v.size()))};
}

std::size_t count(const std::vector<invocation> &runs, const std::string &what) {
    return static_cast<std::size_t>(
        std::count_if(runs.begin(), runs.end(), [&](const invocation &i) { return what_of(i) == what; }));
}

// ---------------------------------------------------------------------------
// The scripted programs.

struct reply {
    scripted_result result;
    bool started = true;  // false: ssh could not connect, so the remote shell never reported its pid
};

reply output(std::vector<std::string> lines, int exit_code = 0) {
    reply r;
    r.result.stdout_lines = std::move(lines);
    r.result.exit_code = exit_code;
    return r;
}

reply failure(int exit_code, std::vector<std::string> stderr_lines) {
    reply r;
    r.result.exit_code = exit_code;
    r.result.stderr_lines = std::move(stderr_lines);
    return r;
}

// restic 0.14's words for a repository that is not there (exit 1; 0.17 exits 10).
reply no_repository() {
    return failure(1, {"Fatal: unable to open config file: Stat: stat " + k_repo + "/config: no such file or directory",
                       "Is there a repository at the following location?", k_repo});
}

reply locked_by(const std::string &host, const std::string &pid, const std::string &age) {
    return failure(11, {"unable to create lock in backend: repository is already locked exclusively by PID " + pid +
                            " on " + host + " by oneadmin (UID 9869, GID 9869)",
                        "lock was created at 2025-01-02 03:04:05 (" + age + " ago)", "storage ID 0a1b2c3d",
                        "the `unlock` command can be used to remove stale locks"});
}

// ssh's own failure: exit 255 before the remote shell ran.
reply ssh_refused() {
    reply r = failure(255, {"ssh: connect to host backup port 22: Connection refused"});
    r.started = false;
    return r;
}

// restic stopped by the cancel: it got SIGINT, removed its lock, exited 130.
reply interrupted(std::stop_source &stop) {
    stop.request_stop();
    reply r = failure(130, {"signal interrupt received, cleaning up"});
    r.result.cancelled = true;
    return r;
}

std::vector<std::string> base64_lines(const std::string &data) {
    const std::string b64 = common::base64_encode(data);
    std::vector<std::string> lines;
    for (std::size_t i = 0; i < b64.size(); i += 60) lines.push_back(b64.substr(i, 60));
    return lines;
}

// What the programs answer unless a test's hook answers first.
reply default_reply(const invocation &inv) {
    const auto sub = subcommand_of(inv);
    const auto args_after = [&inv](const std::string &word) {
        const auto it = std::find(inv.argv.begin(), inv.argv.end(), word);
        return std::vector<std::string>(it == inv.argv.end() ? it : it + 1, inv.argv.end());
    };
    if (sub == "version") return output({"restic 0.16.4 compiled with go1.21.1 on linux/amd64"});
    if (sub == "snapshots") return output({snapshots_json(args_after("snapshots"), k_snapshots)});
    if (sub == "dump") {
        if (inv.argv.back().ends_with("/vm.xml")) return output(base64_lines(k_vm_xml));
        if (inv.argv.back().ends_with("/disk.tpm.0")) return output({k_tpm});
        return failure(1, {"path not found in snapshot"});
    }
    if (sub == "backup")
        return output({R"({"message_type":"status","percent_done":0.5})",
                       R"({"message_type":"summary","snapshot_id":")" + full_id(k_new_snapshot) +
                           R"(","total_bytes_processed":5242880,"data_added":1048576})"});
    if (inv.argv.size() > 1 && inv.argv[0] == "qemu-img" && inv.argv[1] == "info")
        return output({std::string(R"({"virtual-size": 10737418240, "actual-size": )") +
                       (inv.argv.back().find("/disk.0.") != std::string::npos ? "3145728" : "2097152") + "}"});
    if (what_of(inv) == "ps") return output({"   4242", "  4343"});
    if (what_of(inv) == "grep") return output({"/proc/4343/cmdline"});
    if (what_of(inv) == "cat") return output({k_image_bytes});
    if (what_of(inv) == "uname") return output({"backupsrv"});
    return {};
}

// A test's answer for the nth run (1-based) of the same what_of(); nullopt:
// the default. Called on any thread.
using hook_fn = std::function<std::optional<reply>(const invocation &, std::size_t nth)>;

// The host side of a request: log lines and the bytes of write_output.
class capture_host {
public:
    capture_host() {
        api_.struct_size = sizeof(api_);
        api_.abi_minor = ONEDS_ABI_MINOR;
        api_.host_data = this;
        api_.complete = [](void *, std::uint64_t, std::int32_t, const char *, const char *) {};
        api_.log = [](void *self, std::uint64_t, std::int32_t, const char *text) {
            auto *h = static_cast<capture_host *>(self);
            const std::lock_guard lock(h->mutex_);
            h->logs_.emplace_back(text);
        };
        api_.write_output = [](void *self, std::uint64_t, const void *data, std::size_t size) -> std::int32_t {
            auto *h = static_cast<capture_host *>(self);
            const std::lock_guard lock(h->mutex_);
            h->output_.append(static_cast<const char *>(data), size);
            return ONEDS_OK;
        };
    }
    capture_host(const capture_host &) = delete;
    capture_host &operator=(const capture_host &) = delete;

    sdk::host_link link() const noexcept { return sdk::host_link(&api_); }
    bool logged(const std::string &part) const {
        const std::lock_guard lock(mutex_);
        return std::any_of(logs_.begin(), logs_.end(),
                           [&part](const std::string &l) { return l.find(part) != std::string::npos; });
    }
    std::string logs() const {
        const std::lock_guard lock(mutex_);
        std::string out;
        for (const auto &l : logs_) out += "\n  " + l;
        return out;
    }
    std::string output() const {
        const std::lock_guard lock(mutex_);
        return output_;
    }

private:
    oneds_host_api api_{};
    mutable std::mutex mutex_;
    std::vector<std::string> logs_;
    std::string output_;
};

// One plugin's worth of ports around the test doubles, for one form. The
// action runs on the calling thread.
struct harness : store_provider {
    test::scratch_dir dir;
    capture_host host;
    hook_fn hook;
    std::shared_ptr<test::memory_store> store = std::make_shared<test::memory_store>();
    test::fake_one_api oned;
    bool oned_configured = true;
    plugin_settings settings;
    version_cache versions;
    std::mutex counts_mutex;
    std::map<std::string, std::size_t> counts;
    test::recording_runner recorder{[this](const recorded_run &r, std::size_t) { return answer(r); }};

    explicit harness(const form &f, hook_fn h = {}) : hook(std::move(h)) {
        settings.restic_bin = k_front_bin;
        settings.remote_restic_bin = k_remote_bin;
        settings.ssh_config = f.ssh_config ? k_ssh_config : "";
        settings.ssh_multiplex = false;
        settings.datastore_conf = dir.file("datastore.conf");
        settings.lock_dir = dir.file("locks");
        settings.lock_retry_interval = 1ms;
        settings.lock_retries = 3;
        settings.kill_grace = 50ms;
        oned.add_datastore(100, datastore(f));
        oned.add_datastore(1, "<DATASTORE><ID>1</ID><NAME>default</NAME></DATASTORE>");
        oned.add_user(0, "oneadmin", 0);
        oned.add_user(5, "alice", 101);
    }

    ports::result<std::shared_ptr<ports::repo_store>> store_for(const datastore_attributes &) override {
        return std::shared_ptr<ports::repo_store>(store);
    }

    scripted_result answer(const recorded_run &r) {
        const decoded d = decode(r);
        std::size_t nth;
        {
            const std::lock_guard lock(counts_mutex);
            nth = ++counts[what_of(d.inv)];
        }
        std::optional<reply> rep = hook ? hook(d.inv, nth) : std::nullopt;
        if (!rep) rep = default_reply(d.inv);
        if (d.reports_pid && rep->started)
            rep->result.stderr_lines.insert(rep->result.stderr_lines.begin(), "ONEDS_PID=4242");
        return rep->result;
    }

    runtime::outcome run(runtime::outcome (*action)(action_env &), const std::string &name,
                         std::vector<std::string> args, const std::string &doc, std::stop_source *stop = nullptr) {
        // The ssh runner as restic_plugin.cpp builds it from the settings.
        adapters::ssh::ssh_options o;
        o.ssh_config = settings.ssh_config;
        o.local_hosts.clear();
        o.connect_timeout = settings.ssh_connect_timeout;
        adapters::ssh::ssh_runner ssh(recorder, o);
        sdk::request req;
        req.id = 1;
        req.action = name;
        req.args = std::move(args);
        req.document = doc;
        runtime::request_context ctx(std::move(req), host.link());
        std::optional<std::stop_callback<std::function<void()>>> link;
        if (stop != nullptr) link.emplace(stop->get_token(), [&ctx] { ctx.request_cancel(); });
        action_env env{settings, ssh, *this, ctx, oned_configured ? &oned : nullptr, &versions, {}};
        env.oned_users = oned_configured ? &oned : nullptr;
        auto out = action(env);
        // What the request's completion says (plugin/runtime/dispatcher.cpp): a
        // request that was cancelled and did not succeed is reported cancelled.
        if (out.status != ONEDS_OK && ctx.cancelled()) out.status = ONEDS_ERR_CANCELLED;
        return out;
    }

    // Every run that started, read back and checked for its shape: ssh's
    // options as the plugin gives them, and the password in no argv word (nor
    // in the remote command line). The ssh runner's own `kill -INT` helper (a
    // cancel's signal to the remote restic) is left out: whether it runs
    // before the cancelled command ends is a race.
    std::vector<invocation> runs() const {
        std::vector<invocation> out;
        for (const auto &r : recorder.runs()) {
            const auto d = decode(r);
            BOOST_TEST(d.problem.empty(), d.problem);
            // The process adapter does not start a child for a stopped token
            // (nor does the ssh runner, which then records nothing).
            if (!d.over_ssh && d.stop_requested_at_start) continue;
            BOOST_TEST(std::none_of(r.cmd.argv.begin(), r.cmd.argv.end(),
                                    [](const std::string &w) { return w.find(k_password) != std::string::npos; }),
                       "the password is in the argv of " << label(d.inv));
            if (d.over_ssh) {
                BOOST_TEST(d.ssh_options == ssh_options(!settings.ssh_config.empty()),
                           boost::test_tools::per_element());
                if (!d.reports_pid) continue;
            }
            out.push_back(d.inv);
        }
        return out;
    }
};

std::string this_host() {
    char name[256] = {};
    ::gethostname(name, sizeof name - 1);
    return name;
}
// Above every pid_max: no such process, ever.
const std::string k_gone_pid = "999999999";

// A restic:// value ready for comparison: "i4:100", "bool:true", "str:...".
std::string rpc_text(const ports::rpc_value &v) {
    if (const auto *i = std::get_if<std::int32_t>(&v)) return "i4:" + std::to_string(*i);
    if (const auto *l = std::get_if<std::int64_t>(&v)) return "i8:" + std::to_string(*l);
    if (const auto *b = std::get_if<bool>(&v)) return *b ? "bool:true" : "bool:false";
    return "str:" + std::get<std::string>(v);
}
std::vector<std::string> call_texts(const test::fake_one_api &oned) {
    std::vector<std::string> out;
    for (const auto &c : oned.calls()) {
        std::string t = c.method;
        for (const auto &p : c.params) t += " " + rpc_text(p);
        out.push_back(t);
    }
    return out;
}

// A command= or clean_command= value as downloader.sh uses it: it evals the
// line (one shell word) and then the variable's value (the command's words).
std::vector<std::string> evaluated(const std::string &value, std::string &problem) {
    const auto once = shell_words(value, problem);
    if (once.size() != 1) {
        problem += " (the value is not one word: " + value + ")";
        return {};
    }
    return shell_words(once[0], problem);
}

// The downloader's stdout, as the words that finally run: downloader.sh evals
// each line (its value is one shell word) and then the variable's value; for
// the backup server, ssh's last argument is split once more by the remote
// shell. ssh's own words are checked here. Stock prints
//   command="ssh -q -o ControlMaster=no -o ControlPath=none -o ForwardAgent=yes '<user>@<server>' cat '<image>'"
// and the same ssh with rm -rf '<folder>/'; ours adds the plugin's ssh config
// (-F) and BatchMode, and on this machine prints a bare cat and rm -rf (as
// stock does for S3).
struct download_lines {
    std::vector<std::string> command, clean;
};
download_lines read_download_lines(const std::string &info, const form &f) {
    std::istringstream lines(info);
    std::string command_line, clean_line, extra;
    std::getline(lines, command_line);
    std::getline(lines, clean_line);
    BOOST_TEST(!std::getline(lines, extra), "more than two lines: " << info);
    BOOST_TEST_REQUIRE(command_line.starts_with("command="), info);
    BOOST_TEST_REQUIRE(clean_line.starts_with("clean_command="), info);
    std::string problem;
    download_lines out{evaluated(command_line.substr(8), problem), evaluated(clean_line.substr(14), problem)};
    BOOST_TEST_REQUIRE(problem.empty(), problem);
    if (f.where != place::backup_server) return out;
    std::vector<std::string> ssh = {"ssh"};
    if (f.ssh_config) ssh.insert(ssh.end(), {"-F", k_ssh_config});
    ssh.insert(ssh.end(), {"-q", "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "ForwardAgent=yes", "-o",
                           "BatchMode=yes", "oneadmin@backup"});
    for (auto *words : {&out.command, &out.clean}) {
        BOOST_TEST_REQUIRE(words->size() == ssh.size() + 1, joined(*words));
        BOOST_TEST(std::vector<std::string>(words->begin(), words->end() - 1) == ssh, boost::test_tools::per_element());
        *words = shell_words(words->back(), problem);
    }
    BOOST_TEST_REQUIRE(problem.empty(), problem);
    return out;
}

}  // namespace

// ===========================================================================
BOOST_AUTO_TEST_SUITE(golden_command_lines)

// rm: the snapshots that still exist, then forget with prune, where the
// repository lives. Stock runs forget alone (no listing first): the listing is
// ours, so that a snapshot already gone does not make the image undeletable
// (docs/stock-driver.md#rm).
BOOST_AUTO_TEST_CASE(rm_in_every_form) {
    for (const auto &f : k_forms) {
        BOOST_TEST_CONTEXT("form: " << f.name) {
            harness h(f);
            const auto out = h.run(&rm_action, "rm", {"42"}, request(f, image({k_inc0, k_inc1})));
            BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
            BOOST_TEST(out.info.empty());
            const auto s = maintenance_of(f);
            std::vector<std::string> prune = {"--prune", f.tuned ? "--max-unused=10%" : "--max-unused=0"};
            if (f.tuned) prune.push_back("--max-repack-size=2G");
            check_runs(h.runs(), {restic_call(s, {"--no-lock", "--json"}, "snapshots", {k_inc0, k_inc1}),
                                  restic_call(s, prune, "forget", {k_inc0, k_inc1})});
        }
    }
}

// stat: restic dump of the snapshot's vm.xml on the front end in every form
// (stock too): it never runs on another host, so it has no ssh form of its
// own; restic's ssh is the sftp: URL's, with the plugin's ssh config passed
// through sftp.command (ours).
BOOST_AUTO_TEST_CASE(stat_in_every_form) {
    for (const auto &f : k_forms) {
        BOOST_TEST_CONTEXT("form: " << f.name) {
            harness h(f);
            const std::string url = "restic://100//0:" + k_inc0 + ",1:" + k_inc1 + k_dir + "/disk.1.1";
            const auto out = h.run(&stat_action, "stat", {"9"}, request(f, "<IMAGE><PATH>" + url + "</PATH></IMAGE>"));
            BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
            BOOST_TEST(out.info == "1024\n");  // disk 1's SIZE in vm.xml
            check_runs(h.runs(), {restic_call(front_end_of(f), {"--quiet"}, "dump", {k_inc1, k_dir + "/vm.xml"})});
        }
    }
}

// ls: one snapshot listing on the front end. Stock also dumps vm.xml, whose
// content it does not use, and lists the chain's last snapshot even with -i;
// here the files are those of the last increment up to -i
// (docs/stock-driver.md#ls).
BOOST_AUTO_TEST_CASE(ls_in_every_form) {
    const std::string whole = "restic://100//0:" + k_inc0 + ",1:" + k_inc1;
    const std::string up_to_0 = "restic://100//0:" + k_inc0;
    const struct {
        std::vector<std::string> args;
        std::string snapshot;
        std::string json;
    } cases[] = {
        {{},
         k_inc1,
         R"({"0":")" + whole + k_dir + R"(/disk.0.1","1":")" + whole + k_dir + R"(/disk.1.1","tpm":")" + whole + k_dir +
             "/disk.tpm.0\"}\n"},
        {{"-i", "0"},
         k_inc0,
         R"({"0":")" + up_to_0 + k_dir + R"(/disk.0.0","1":")" + up_to_0 + k_dir + "/disk.1.0\"}\n"},
    };
    for (const auto &f : k_forms)
        for (const auto &c : cases) {
            BOOST_TEST_CONTEXT("form: " << f.name << ", args: " << joined(c.args)) {
                harness h(f);
                const auto out = h.run(&ls_action, "ls", c.args, request(f, image({k_inc0, k_inc1})));
                BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
                BOOST_TEST(out.info == c.json);
                check_runs(h.runs(),
                           {restic_call(front_end_of(f), {"--no-lock", "--json"}, "snapshots", {c.snapshot})});
            }
        }
}

// The downloader for a chain: the datastore read from oned (decrypted), the
// version asked while the snapshots are listed, each increment pulled with
// restic restore into a folder of its own and re-linked with qemu-img rebase
// -u, the chain flattened by qemu-img convert, the pulled files removed. Stock
// dumps each file with restic dump, rebases, converts to <last>.tmp and moves
// it back (docs/stock-driver.md#downloader).
BOOST_AUTO_TEST_CASE(downloader_of_a_chain_in_every_form) {
    const std::string url = "restic://100//0:" + k_inc0 + ",1:" + k_inc1 + k_dir + "/disk.0.1";
    for (const auto &f : k_forms) {
        BOOST_TEST_CONTEXT("form: " << f.name) {
            harness h(f);
            const auto out = h.run(&downloader_action, "downloader", {url}, "");
            BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
            BOOST_TEST(call_texts(h.oned) == std::vector<std::string>{"one.datastore.info i4:100 bool:true"},
                       boost::test_tools::per_element());
            const auto runs = h.runs();
            BOOST_TEST_REQUIRE(runs.size() == 7U, "runs:" << labels(runs));
            // The work folder: <RESTIC_TMP_DIR>/oneds-restic-<16 hex digits>.
            const std::string tmp_root = f.tuned ? "/var/tmp/one restic" : "/var/tmp";
            std::string tmp;
            for (const auto &r : runs)
                if (subcommand_of(r) == "restore" && r.argv.size() > 3) tmp = r.argv[r.argv.size() - 4];
            BOOST_TEST_REQUIRE(std::regex_match(tmp, std::regex(tmp_root + "/oneds-restic-[0-9a-f]{16}/[01]")), tmp);
            tmp.resize(tmp.size() - 2);
            const auto s = maintenance_of(f);
            const std::string pulled0 = tmp + "/0" + k_dir + "/disk.0.0", pulled1 = tmp + "/1" + k_dir + "/disk.0.1";
            const std::string image_path = tmp + "/disk.0.1";
            check_runs_any_order(slice(runs, 0, 2),
                                 {tool_call(s, {s.bin, "version"}),
                                  restic_call(s, {"--no-lock", "--json"}, "snapshots", {k_inc0, k_inc1})});
            check_runs_any_order(
                slice(runs, 2, 5),
                {restic_call(s, {}, "restore",
                             {k_inc0, "--target", tmp + "/0", "--include", k_dir + "/disk.0.0", "--sparse"}),
                 restic_call(s, {}, "restore",
                             {k_inc1, "--target", tmp + "/1", "--include", k_dir + "/disk.0.1", "--sparse"}),
                 tool_call(s, {"qemu-img", "rebase", "-u", "-F", "qcow2", "-b", pulled0, pulled1})});
            check_runs(slice(runs, 5, 7), {tool_call(s, {"qemu-img", "convert", "-O", "qcow2", pulled1, image_path}),
                                           tool_call(s, {"rm", "-rf", "--", tmp + "/0", tmp + "/1"})});

            const auto lines = read_download_lines(out.info, f);
            BOOST_TEST(lines.command == (std::vector<std::string>{"cat", image_path}),
                       boost::test_tools::per_element());
            BOOST_TEST(lines.clean == (std::vector<std::string>{"rm", "-rf", tmp + "/"}),
                       boost::test_tools::per_element());
        }
    }
}

// A full backup is one file: pulled and used as it is, nothing to flatten.
// The datastore comes on stdin: oned is not asked.
BOOST_AUTO_TEST_CASE(downloader_of_a_full_backup_with_the_datastore_on_stdin) {
    const std::string url = "restic://100//0:" + k_inc0 + k_dir + "/disk.1.0";
    for (const auto &f : {k_ssh, k_here}) {
        BOOST_TEST_CONTEXT("form: " << f.name) {
            harness h(f);
            h.oned_configured = false;
            const auto out = h.run(&downloader_action, "downloader", {url}, datastore(f));
            BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
            BOOST_TEST(h.oned.calls().empty());
            const auto runs = h.runs();
            BOOST_TEST_REQUIRE(runs.size() == 3U, "runs:" << labels(runs));
            const auto s = maintenance_of(f);
            std::string tmp = runs[2].argv.size() > 3 ? runs[2].argv[runs[2].argv.size() - 4] : "";
            BOOST_TEST_REQUIRE(std::regex_match(tmp, std::regex("/var/tmp/oneds-restic-[0-9a-f]{16}/0")), tmp);
            check_runs_any_order(slice(runs, 0, 2), {tool_call(s, {s.bin, "version"}),
                                                     restic_call(s, {"--no-lock", "--json"}, "snapshots", {k_inc0})});
            check_runs(slice(runs, 2, 3),
                       {restic_call(s, {}, "restore",
                                    {k_inc0, "--target", tmp, "--include", k_dir + "/disk.1.0", "--sparse"})});
            const auto lines = read_download_lines(out.info, f);
            BOOST_TEST(lines.command == (std::vector<std::string>{"cat", tmp + k_dir + "/disk.1.0"}),
                       boost::test_tools::per_element());
            BOOST_TEST(lines.clean == (std::vector<std::string>{"rm", "-rf", tmp.substr(0, tmp.size() - 2) + "/"}),
                       boost::test_tools::per_element());
        }
    }
}

// restic+rbd:// (docs/rbd.md): the files pulled as for a chain but not
// re-linked, packed with tar where the pulls ran (members: the files' own
// names, each from its own pull folder), the pulled files removed; command
// cats the tarball, named as stock names it.
BOOST_AUTO_TEST_CASE(downloader_of_an_rbd_chain_in_every_form) {
    const std::string url = "restic+rbd://100//0:" + k_inc0 + ",1:" + k_inc1 + k_dir + "/disk.0.1";
    for (const auto &f : k_forms) {
        BOOST_TEST_CONTEXT("form: " << f.name) {
            harness h(f);
            const auto out = h.run(&downloader_action, "downloader", {url}, "");
            BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
            const auto runs = h.runs();
            BOOST_TEST_REQUIRE(runs.size() == 6U, "runs:" << labels(runs));
            std::string tmp;
            for (const auto &r : runs)
                if (subcommand_of(r) == "restore" && r.argv.size() > 3) tmp = r.argv[r.argv.size() - 4];
            BOOST_TEST_REQUIRE(tmp.size() > 2U, "no restore run:" << labels(runs));
            tmp.resize(tmp.size() - 2);
            const auto s = maintenance_of(f);
            const std::string tarball = tmp + "/disk.0." + k_inc1.substr(0, 1) + ".tar.gz";
            check_runs_any_order(
                slice(runs, 2, 4),
                {restic_call(s, {}, "restore",
                             {k_inc0, "--target", tmp + "/0", "--include", k_dir + "/disk.0.0", "--sparse"}),
                 restic_call(s, {}, "restore",
                             {k_inc1, "--target", tmp + "/1", "--include", k_dir + "/disk.0.1", "--sparse"})});
            check_runs(slice(runs, 4, 6), {tool_call(s, {"tar", "-czf", tarball, "-C", tmp + "/0" + k_dir, "disk.0.0",
                                                         "-C", tmp + "/1" + k_dir, "disk.0.1"}),
                                           tool_call(s, {"rm", "-rf", "--", tmp + "/0", tmp + "/1"})});
            const auto lines = read_download_lines(out.info, f);
            BOOST_TEST(lines.command == (std::vector<std::string>{"cat", tarball}), boost::test_tools::per_element());
            BOOST_TEST(lines.clean == (std::vector<std::string>{"rm", "-rf", tmp + "/"}),
                       boost::test_tools::per_element());
        }
    }
}

// --stdout (action mode, ours): the image streamed through the host's
// write_output, the pulled files removed meanwhile, then the work folder.
BOOST_AUTO_TEST_CASE(downloader_to_stdout) {
    const std::string url = "restic://100//0:" + k_inc0 + ",1:" + k_inc1 + k_dir + "/disk.0.1";
    for (const auto &f : {k_ssh, k_here}) {
        BOOST_TEST_CONTEXT("form: " << f.name) {
            harness h(f);
            const auto out = h.run(&downloader_action, "downloader", {"--stdout", url}, "");
            BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
            BOOST_TEST(out.info.empty());
            BOOST_TEST(h.host.output() == k_image_bytes + "\n");
            const auto runs = h.runs();
            BOOST_TEST_REQUIRE(runs.size() == 9U, "runs:" << labels(runs));
            const auto s = maintenance_of(f);
            const auto &convert = runs[5].argv;
            BOOST_TEST_REQUIRE(convert.size() == 6U);
            const std::string image_path = convert[5];
            const std::string tmp = image_path.substr(0, image_path.rfind('/'));
            BOOST_TEST(std::regex_match(tmp, std::regex("/var/tmp/oneds-restic-[0-9a-f]{16}")), tmp);
            check_runs_any_order(slice(runs, 6, 8), {tool_call(s, {"rm", "-rf", "--", tmp + "/0", tmp + "/1"}),
                                                     tool_call(s, {"cat", "--", image_path})});
            check_runs(slice(runs, 8, 9), {tool_call(s, {"rm", "-rf", "--", tmp})});
        }
    }
}

// increment_flatten with KEEP_LAST=2 of three increments: increments 0 and 1
// merged. Every pull destination is checked first (ours: never overwrite),
// the increments pulled in parallel with restic restore --target / (stock:
// restic dump of each file), each disk's chain rebased and committed into its
// base (-q ours), optionally sparsified, the base moved to the newest name
// (mv -f --), the merged state backed up with the newest merged snapshot's
// time and tag, the sizes read, the pulled files removed, the merged
// snapshots forgotten. Stock's forget here has no --max-repack-size either
// (docs/stock-driver.md#flattening-increments).
BOOST_AUTO_TEST_CASE(increment_flatten_in_every_form) {
    const std::string d00 = k_dir + "/disk.0.0", d01 = k_dir + "/disk.0.1", d10 = k_dir + "/disk.1.0",
                      d11 = k_dir + "/disk.1.1", vm = k_dir + "/vm.xml", tpm = k_dir + "/disk.tpm.0";
    for (const auto &f : k_forms) {
        BOOST_TEST_CONTEXT("form: " << f.name) {
            harness h(f);
            const auto out = h.run(
                &increment_flatten_action, "increment_flatten", {"42"},
                request(f, image({k_inc0, k_inc1, k_inc2}) + "<EXTRA_DATA><KEEP_LAST>2</KEEP_LAST></EXTRA_DATA>"));
            BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
            // 3 MiB + 2 MiB; the merged base takes increment 1's place.
            BOOST_TEST(out.info == "5 1:" + k_new_snapshot + ",2:" + k_inc2 + "\n");
            const auto s = maintenance_of(f);
            std::vector<invocation> first = {restic_call(s, {"--no-lock", "--json"}, "snapshots", {k_inc0, k_inc1})};
            for (const auto &p : {d00, d01, d10, d11, vm, tpm}) first.push_back(tool_call(s, {"test", "!", "-e", p}));
            first.push_back(tool_call(s, {s.bin, "version"}));
            std::vector<invocation> rest;
            for (const auto &[base, top] : {std::pair{d00, d01}, std::pair{d10, d11}}) {
                rest.push_back(tool_call(s, {"qemu-img", "rebase", "-u", "-F", "qcow2", "-b", base, top}));
                rest.push_back(tool_call(s, {"qemu-img", "commit", "-q", "-f", "qcow2", "-b", base, top}));
                if (f.tuned) rest.push_back(tool_call(s, {"virt-sparsify", "-q", "--in-place", base}));
                rest.push_back(tool_call(s, {"mv", "-f", "--", base, top}));
            }
            rest.push_back(restic_call(s, {"--force", "--json", "--tag=one-7", "--time=2025-01-02 03:04:05"}, "backup",
                                       {d01, d11, vm, tpm}));
            rest.push_back(tool_call(s, {"qemu-img", "info", "--output", "json", d01}));
            rest.push_back(tool_call(s, {"qemu-img", "info", "--output", "json", d11}));
            rest.push_back(tool_call(s, {"rm", "-f", "--", d00, d01, d10, d11, vm, tpm}));
            rest.push_back(restic_call(s, {"--prune", f.tuned ? "--max-unused=10%" : "--max-unused=0"}, "forget",
                                       {k_inc0, k_inc1}));
            const auto runs = h.runs();
            BOOST_TEST_REQUIRE(runs.size() == first.size() + 2 + rest.size(), "runs:" << labels(runs));
            check_runs(slice(runs, 0, first.size()), first);
            check_runs_any_order(
                slice(runs, first.size(), first.size() + 2),
                {restic_call(s, {}, "restore",
                             {k_inc0, "--target", "/", "--include", d00, "--include", d10, "--sparse"}),
                 restic_call(s, {}, "restore",
                             {k_inc1, "--target", "/", "--include", d01, "--include", d11, "--include", vm, "--include",
                              tpm, "--sparse"})});
            check_runs(slice(runs, first.size() + 2, runs.size()), rest);
        }
    }
}

// restore: the snapshot listed and its vm.xml and TPM archive dumped where
// the repository lives; then in oned, as alice: one image per disk and a VM
// template, every call made as alice (a server_cipher login, as stock), no
// chown (docs/stock-driver.md#restore).
BOOST_AUTO_TEST_CASE(restore_in_every_form) {
    const std::string base = "restic://100//0:" + k_inc0 + ",1:" + k_inc1;
    for (const auto &f : k_forms) {
        BOOST_TEST_CONTEXT("form: " << f.name) {
            harness h(f);
            const auto out =
                h.run(&restore_action, "restore", {"9"},
                      request(f, image({k_inc0, k_inc1}) + "<DESTINATION_DS_ID>1</DESTINATION_DS_ID>"
                                                           "<TEMPLATE><USERNAME>alice</USERNAME></TEMPLATE>"));
            BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
            BOOST_TEST(out.info == "400 200 201\n");
            const auto s = maintenance_of(f);
            check_runs(h.runs(), {restic_call(s, {"--no-lock", "--json"}, "snapshots", {k_inc1}),
                                  restic_call(s, {"--quiet"}, "dump", {k_inc1, k_dir + "/vm.xml"}),
                                  restic_call(s, {"--quiet"}, "dump", {k_inc1, k_dir + "/disk.tpm.0"})});
            const auto image_template = [&](const std::string &disk, const std::string &type) {
                return "NAME = \"7-" + k_inc1 + "-disk-" + disk + "\"\nTYPE = \"" + type + "\"\nPATH = \"" + base +
                       k_dir + "/disk." + disk + ".1\"\nFROM_BACKUP_DS = \"100\"\n";
            };
            const auto calls = call_texts(h.oned);
            BOOST_TEST_REQUIRE(calls.size() == 3U);
            BOOST_TEST(calls[0] == "one.image.allocate str:" + image_template("0", "OS") + " i4:1 bool:false");
            BOOST_TEST(calls[1] == "one.image.allocate str:" + image_template("1", "DATABLOCK") + " i4:1 bool:false");
            BOOST_TEST(calls[2].starts_with("one.template.allocate str:"));
            for (const auto &c : h.oned.calls())
                BOOST_TEST(c.user == "alice", c.method << " made as '" << c.user << "'");
            BOOST_TEST(h.oned.logins() == std::vector<std::string>{"alice"}, boost::test_tools::per_element());
            const auto templates = h.oned.templates();
            BOOST_TEST_REQUIRE(templates.size() == 1U);
            BOOST_TEST(templates[0].attributes.at("NAME") == "7-" + k_inc1);
            BOOST_TEST(templates[0].attributes.at("TPM_STATE") == common::base64_encode(k_tpm + "\n"));
            BOOST_TEST(templates[0].uid == 5);
            for (const auto &img : h.oned.images()) BOOST_TEST(img.gid == 101);
        }
    }
}

// backup_cancel's fail-safe on the hypervisor (LAST_BRIDGE, else the argv
// host): the restic processes, those of them whose arguments hold exactly
// this backup's vm.xml, SIGINT to those. Stock sends SIGTERM to every restic
// whose command line contains the folder (docs/stock-driver.md#cancelling-a-backup).
BOOST_AUTO_TEST_CASE(backup_cancel_on_the_hypervisor_and_here) {
    const std::string vm_dir = "/var/lib/one/datastores/0/7";
    const struct {
        const char *name;
        std::string host;
        std::string bridge;     // LAST_BRIDGE, "" = none
        std::string base_path;  // BACKUP_BASE_PATH in datastore.conf, "" = none
        std::string where;
        std::string vm_xml;
    } cases[] = {
        {"ssh to the VM's host", "node1", "", "", "node1", k_dir + "/vm.xml"},
        {"ssh to LAST_BRIDGE", "node1", "bridge2", "", "bridge2", k_dir + "/vm.xml"},
        {"BACKUP_BASE_PATH", "node1", "", "/var/lib/one/backups", "node1", "/var/lib/one/backups/7/backup/vm.xml"},
        {"a host in local_hosts", "localhost", "", "", "", k_dir + "/vm.xml"},
    };
    for (const auto &c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            harness h(k_ssh);
            if (!c.base_path.empty()) h.dir.write("datastore.conf", "BACKUP_BASE_PATH=\"" + c.base_path + "\"\n");
            const std::string vm = "<VM><ID>7</ID>" +
                                   (c.bridge.empty() ? std::string()
                                                     : "<BACKUPS><BACKUP_CONFIG><LAST_BRIDGE>" + c.bridge +
                                                           "</LAST_BRIDGE></BACKUP_CONFIG></BACKUPS>") +
                                   "</VM>";
            const auto out = h.run(&backup_cancel_action, "backup_cancel", {c.host + ":" + vm_dir, "one-7"}, vm);
            BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
            site s;
            s.where = c.where;
            check_runs(
                h.runs(),
                {tool_call(s, {"ps", "-o", "pid=", "-C", "restic"}),
                 tool_call(s, {"grep", "-lszxF", "-e", c.vm_xml, "--", "/proc/4242/cmdline", "/proc/4343/cmdline"}),
                 tool_call(s, {"kill", "-INT", "4343"})});
            BOOST_TEST(h.host.logged("interrupted 1 restic process(es) of " + c.vm_xml), h.host.logs());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ===========================================================================
// The branches every action that runs restic shares, asked of each.

namespace {

struct action_spec {
    const char *name;
    runtime::outcome (*fn)(action_env &);
    std::vector<std::string> args;
    std::string rest;                  // the request document besides the DATASTORE; "-": none (read from oned)
    bool front_end;                    // restic runs on the front end (stat, ls)
    std::string busy;                  // the restic subcommand that does the work: where a lock or a cancel meets it
    std::size_t busy_runs;             // how often it runs when nothing goes wrong
    bool takes_lock;                   // false: the busy command runs with --no-lock (restic takes no lock)
    bool missing_ok;                   // a missing repository is no error (rm: nothing to remove)
    std::string error_prefix;          // how the action's error starts when its first restic fails
    std::vector<std::string> cleanup;  // what removes the temporary files after a failure (argv prefix)
};

const std::string k_chain_url = "restic://100//0:" + k_inc0 + ",1:" + k_inc1 + k_dir + "/disk.0.1";

const action_spec k_actions[] = {
    {"rm",
     &rm_action,
     {"42"},
     image({k_inc0, k_inc1}),
     false,
     "forget",
     1,
     true,
     true,
     "Unable to remove snapshots: ",
     {}},
    {"stat",
     &stat_action,
     {"9"},
     "<IMAGE><PATH>" + k_chain_url + "</PATH></IMAGE>",
     true,
     "dump",
     1,
     true,
     false,
     "",
     {}},
    {"ls",
     &ls_action,
     {},
     image({k_inc0, k_inc1}),
     true,
     "snapshots",
     1,
     false,
     false,
     "Unable to list backup " + k_inc1 + ": ",
     {}},
    {"downloader",
     &downloader_action,
     {k_chain_url},
     "-",
     false,
     "restore",
     2,
     true,
     false,
     "Unable to read backup information: ",
     {"rm", "-rf", "--"}},
    {"increment_flatten",
     &increment_flatten_action,
     {"42"},
     image({k_inc0, k_inc1, k_inc2}) + "<EXTRA_DATA><KEEP_LAST>2</KEEP_LAST></EXTRA_DATA>",
     false,
     "restore",
     2,
     true,
     false,
     "Unable to flatten increments: ",
     {"rm", "-f", "--"}},
    {"restore",
     &restore_action,
     {"9"},
     image({k_inc0, k_inc1}) +
         "<DESTINATION_DS_ID>1</DESTINATION_DS_ID><TEMPLATE><USERNAME>alice</USERNAME></TEMPLATE>",
     false,
     "dump",
     2,
     true,
     false,
     "Unable to fetch vm.xml document: ",
     {}},
};

runtime::outcome run_spec(harness &h, const action_spec &a, const form &f, std::stop_source *stop = nullptr) {
    return h.run(a.fn, a.name, a.args, a.rest == "-" ? "" : request(f, a.rest), stop);
}

site site_of(const action_spec &a, const form &f) { return a.front_end ? front_end_of(f) : maintenance_of(f); }

// The restic runs besides `restic version`.
std::size_t restic_runs(const std::vector<invocation> &runs) {
    return static_cast<std::size_t>(std::count_if(
        runs.begin(), runs.end(), [](const invocation &i) { return is_restic(i) && subcommand_of(i) != "version"; }));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(branches_of_every_action)

// restic finds no repository: rm has nothing to remove; the others fail with
// restic's words under their stock prefix, at once (nothing retried, nothing
// created: only backup creates repositories).
BOOST_AUTO_TEST_CASE(a_missing_repository) {
    for (const auto &a : k_actions)
        for (const auto &f : {k_ssh, k_here}) {
            BOOST_TEST_CONTEXT(a.name << ", " << f.name) {
                harness h(f, [](const invocation &inv, std::size_t) -> std::optional<reply> {
                    if (is_restic(inv) && subcommand_of(inv) != "version") return no_repository();
                    return std::nullopt;
                });
                const auto out = run_spec(h, a, f);
                const auto runs = h.runs();
                BOOST_TEST(restic_runs(runs) == 1U, "runs:" << labels(runs));
                BOOST_TEST(h.store->calls.empty());
                if (a.missing_ok) {
                    BOOST_TEST(out.status == ONEDS_OK, out.error);
                    BOOST_TEST(h.host.logged("does not exist; nothing to remove"), h.host.logs());
                    continue;
                }
                BOOST_TEST(out.status == ONEDS_ERR_FAILED);
                BOOST_TEST(out.error.starts_with(a.error_prefix + "unable to open config file: "), out.error);
                BOOST_TEST(out.error.find("Is there a repository at the following location?") != std::string::npos,
                           out.error);
                BOOST_TEST(h.oned.images().empty());
            }
        }
}

// The backup server cannot be reached: over ssh for the actions that run
// there, through restic's own sftp for those on the front end. The error
// names the kind and ssh's words; nothing is retried.
BOOST_AUTO_TEST_CASE(an_unreachable_backup_server) {
    for (const auto &a : k_actions) {
        BOOST_TEST_CONTEXT(a.name) {
            harness h(k_ssh, [&a](const invocation &inv, std::size_t) -> std::optional<reply> {
                if (inv.where == "oneadmin@backup") return ssh_refused();
                if (a.front_end && is_restic(inv))
                    return failure(1, {"subprocess ssh: ssh: connect to host backup port 22: Connection refused",
                                       "Fatal: unable to open repository at sftp:oneadmin@backup:" + k_repo +
                                           ": unable to start the sftp session, error: EOF"});
                return std::nullopt;
            });
            const auto out = run_spec(h, a, k_ssh);
            BOOST_TEST(out.status == ONEDS_ERR_FAILED);
            BOOST_TEST(out.error.starts_with(a.error_prefix + "the connection to the repository's storage failed: "),
                       out.error);
            BOOST_TEST(out.error.find("connect to host backup port 22: Connection refused") != std::string::npos,
                       out.error);
            BOOST_TEST(restic_runs(h.runs()) == 1U, "runs:" << labels(h.runs()));
        }
    }
}

// A lock held by a restic of this machine: when that process is gone, its
// lock is removed with restic unlock here (where restic agrees that it is
// stale; on the front end's view of the repository when the action's restic
// runs on the backup server) and the command runs again at once; a live
// holder is waited for. The action then succeeds. (ls lists with --no-lock:
// restic takes no lock for it.)
BOOST_AUTO_TEST_CASE(a_stale_lock_is_removed_and_a_live_holder_waited_for) {
    const std::string me = this_host();
    for (const auto &a : k_actions) {
        if (!a.takes_lock) continue;
        for (const auto &f : {k_ssh, k_here})
            for (const bool stale : {true, false}) {
                BOOST_TEST_CONTEXT(a.name << ", " << f.name << (stale ? ", holder gone" : ", holder running")) {
                    const std::string pid = stale ? k_gone_pid : std::to_string(::getpid());
                    harness h(f, [&](const invocation &inv, std::size_t nth) -> std::optional<reply> {
                        if (what_of(inv) == "restic " + a.busy && nth == 1) return locked_by(me, pid, "1m2s");
                        return std::nullopt;
                    });
                    const auto out = run_spec(h, a, f);
                    BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
                    const auto runs = h.runs();
                    BOOST_TEST(count(runs, "restic " + a.busy) == a.busy_runs + 1, "runs:" << labels(runs));
                    BOOST_TEST(count(runs, "uname") == 0U);  // this machine is asked directly
                    if (stale) {
                        const site where =
                            !a.front_end && f.where == place::backup_server ? front_end_of(f) : site_of(a, f);
                        std::vector<invocation> unlocks;
                        for (const auto &r : runs)
                            if (what_of(r) == "restic unlock") unlocks.push_back(r);
                        check_runs(unlocks, {restic_call(where, {}, "unlock", {})});
                        BOOST_TEST(h.host.logged("removed the stale lock of PID " + pid + " on " + me), h.host.logs());
                    } else {
                        BOOST_TEST(count(runs, "restic unlock") == 0U);
                        BOOST_TEST(h.host.logged("(running on " + me + "); retry 1/3"), h.host.logs());
                    }
                }
            }
    }
}

// A cancel while restic works: restic is stopped, a restic unlock where it ran
// follows (with a token of its own: the request's has stopped), temporary
// files are removed, and nothing else starts.
BOOST_AUTO_TEST_CASE(a_cancel_stops_restic_and_unlocks_where_it_ran) {
    for (const auto &a : k_actions)
        for (const auto &f : {k_ssh, k_here}) {
            BOOST_TEST_CONTEXT(a.name << ", " << f.name) {
                std::stop_source stop;
                harness h(f, [&](const invocation &inv, std::size_t nth) -> std::optional<reply> {
                    if (what_of(inv) == "restic " + a.busy && nth == 1) return interrupted(stop);
                    return std::nullopt;
                });
                const auto out = run_spec(h, a, f, &stop);
                BOOST_TEST(out.status == ONEDS_ERR_CANCELLED, out.error);
                const auto runs = h.runs();
                const auto first = std::find_if(runs.begin(), runs.end(),
                                                [&a](const invocation &i) { return what_of(i) == "restic " + a.busy; });
                BOOST_TEST_REQUIRE((first != runs.end()), "runs:" << labels(runs));
                std::size_t unlocks = 0;
                for (auto it = first + 1; it != runs.end(); ++it) {
                    const auto w = what_of(*it);
                    if (w == "restic unlock") {
                        ++unlocks;
                        BOOST_TEST_CONTEXT("unlock") { check_run(*it, restic_call(site_of(a, f), {}, "unlock", {})); }
                        continue;
                    }
                    // A parallel pull that started before the stop, and its re-link.
                    const bool sibling = w == "restic " + a.busy ||
                                         (it->argv.size() > 1 && it->argv[0] == "qemu-img" && it->argv[1] == "rebase");
                    const bool cleanup = !a.cleanup.empty() && it->argv.size() > a.cleanup.size() &&
                                         std::equal(a.cleanup.begin(), a.cleanup.end(), it->argv.begin());
                    BOOST_TEST((sibling || cleanup), "started after the cancel: " << label(*it));
                }
                BOOST_TEST(unlocks >= 1U, "no restic unlock after the cancel; runs:" << labels(runs));
                if (!a.cleanup.empty())
                    BOOST_TEST((runs.back().argv.size() > a.cleanup.size() &&
                                std::equal(a.cleanup.begin(), a.cleanup.end(), runs.back().argv.begin())),
                               "the last run is not the clean-up: " << label(runs.back()));
                BOOST_TEST(h.oned.images().empty());
            }
        }
}

BOOST_AUTO_TEST_SUITE_END()

// ===========================================================================
BOOST_AUTO_TEST_SUITE(rm_branches)

// Who holds the lock forget meets, and what is done about it
// (repo_ops.hpp: stale_lock_inspector): a holder on the backup server is
// looked at there (uname -n, then kill -0); one on this machine here; one
// elsewhere is not contacted, and its lock is removed only once restic's
// 30-minute rule makes it stale. The runs after the first forget, in order.
BOOST_AUTO_TEST_CASE(the_holder_of_a_lock_decides_what_happens) {
    const std::string me = this_host();
    const std::string alive_pid = std::to_string(::getpid());
    const std::string at = "oneadmin@backup: ";
    const struct {
        const char *name;
        const form *f;
        std::string holder, pid, age;
        int kill0_exit;  // kill -0 on the backup server: 0 runs, 1 gone
        std::vector<std::string> then;
        std::optional<site> unlock_at;
        std::string log;  // "" when it fails: still locked after the budget
    } cases[] = {
        {"ssh: gone from the backup server",
         &k_ssh,
         "backupsrv",
         "4711",
         "1m2s",
         1,
         {at + "restic forget", at + "uname -n", at + "kill -0 4711", at + "restic unlock", at + "restic forget"},
         maintenance_of(k_ssh),
         "removed the stale lock of PID 4711 on backupsrv"},
        {"ssh: running on the backup server",
         &k_ssh,
         "backupsrv",
         "4711",
         "1m2s",
         0,
         {at + "restic forget", at + "uname -n", at + "kill -0 4711", at + "restic forget"},
         std::nullopt,
         "(running on backupsrv); retry 1/3"},
        {"ssh: gone from this machine",
         &k_ssh,
         me,
         k_gone_pid,
         "1m2s",
         0,
         {at + "restic forget", "here: restic unlock", at + "restic forget"},
         front_end_of(k_ssh),
         "removed the stale lock of PID " + k_gone_pid + " on " + me},
        {"ssh: elsewhere, 45 minutes old",
         &k_ssh,
         "far-away",
         "99",
         "45m0.5s",
         0,
         {at + "restic forget", at + "uname -n", at + "restic unlock", at + "restic forget"},
         maintenance_of(k_ssh),
         "older than 30 minutes, stale by restic's own rule"},
        {"ssh: elsewhere, fresh, until the retries are spent",
         &k_ssh,
         "far-away",
         "99",
         "1m2s",
         0,
         {at + "restic forget", at + "uname -n", at + "restic forget", at + "restic forget", at + "restic forget"},
         std::nullopt,
         ""},
        {"here: gone from this machine",
         &k_here,
         me,
         k_gone_pid,
         "1m2s",
         0,
         {"here: restic forget", "here: restic unlock", "here: restic forget"},
         maintenance_of(k_here),
         "removed the stale lock of PID " + k_gone_pid + " on " + me},
        {"here: running on this machine",
         &k_here,
         me,
         alive_pid,
         "1m2s",
         0,
         {"here: restic forget", "here: restic forget"},
         std::nullopt,
         "(running on " + me + "); retry 1/3"},
        {"here: elsewhere, fresh, until the retries are spent",
         &k_here,
         "far-away",
         "99",
         "1m2s",
         0,
         {"here: restic forget", "here: restic forget", "here: restic forget", "here: restic forget"},
         std::nullopt,
         ""},
    };
    for (const auto &c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            const bool fails = c.log.empty();
            harness h(*c.f, [&](const invocation &inv, std::size_t nth) -> std::optional<reply> {
                if (what_of(inv) == "restic forget" && (nth == 1 || fails)) return locked_by(c.holder, c.pid, c.age);
                if (what_of(inv) == "kill" && inv.argv.size() == 3 && inv.argv[1] == "-0")
                    return c.kill0_exit == 0 ? reply{}
                                             : failure(1, {"bash: line 1: kill: (" + c.pid + ") - No such process"});
                return std::nullopt;
            });
            const auto out = h.run(&rm_action, "rm", {"42"}, request(*c.f, image({k_inc0, k_inc1})));
            const auto runs = h.runs();
            std::vector<std::string> then;
            for (std::size_t i = 1; i < runs.size(); ++i) then.push_back(label(runs[i]));
            BOOST_TEST(then == c.then, boost::test_tools::per_element());
            if (c.unlock_at) {
                for (const auto &r : runs)
                    if (what_of(r) == "restic unlock") check_run(r, restic_call(*c.unlock_at, {}, "unlock", {}));
            }
            if (fails) {
                BOOST_TEST(out.status == ONEDS_ERR_FAILED);
                BOOST_TEST(out.error ==
                               "Unable to remove snapshots: repository still locked by PID 99 on far-away by "
                               "oneadmin, created 2025-01-02 03:04:05 (1m2s ago) after 4 attempts",
                           out.error);
            } else {
                BOOST_TEST(out.status == ONEDS_OK, out.error);
                BOOST_TEST(h.host.logged(c.log), h.host.logs());
            }
        }
    }
}

// A snapshot already gone is not forgotten (restic versions disagree on the
// exit of forget for an unknown id), and the image stays deletable.
BOOST_AUTO_TEST_CASE(only_the_snapshots_that_exist_are_forgotten) {
    harness h(k_here);
    const auto out = h.run(&rm_action, "rm", {"42"}, request(k_here, image({"00ff00ff", k_inc1})));
    BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
    const auto s = maintenance_of(k_here);
    check_runs(h.runs(), {restic_call(s, {"--no-lock", "--json"}, "snapshots", {"00ff00ff", k_inc1}),
                          restic_call(s, {"--prune", "--max-unused=0"}, "forget", {k_inc1})});
    BOOST_TEST(h.host.logged("rm: snapshot 00ff00ff is already gone"), h.host.logs());
}

BOOST_AUTO_TEST_SUITE_END()

// ===========================================================================
BOOST_AUTO_TEST_SUITE(downloader_branches)

// oned does not answer: nothing is started on the backup server.
BOOST_AUTO_TEST_CASE(oned_unreachable) {
    harness h(k_ssh);
    h.oned.fail("one.datastore.info", test::fake_one_api::unreachable("one.datastore.info"));
    const auto out = h.run(&downloader_action, "downloader", {k_chain_url}, "");
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(out.error ==
                   "Cannot read backup datastore 100: one.datastore.info: oned at http://oned.test:2633/RPC2 "
                   "unreachable: Connection refused",
               out.error);
    BOOST_TEST(h.runs().empty(), "runs:" << labels(h.runs()));
}

// A cancel while oned does not answer ends the call at once.
BOOST_AUTO_TEST_CASE(a_cancel_while_oned_does_not_answer) {
    harness h(k_ssh);
    h.oned.hold("one.datastore.info");
    std::stop_source stop;
    std::jthread canceller([&] {
        if (h.oned.wait_until_held(5s)) stop.request_stop();
    });
    const auto started = std::chrono::steady_clock::now();
    const auto out = h.run(&downloader_action, "downloader", {k_chain_url}, "", &stop);
    BOOST_TEST(out.status == ONEDS_ERR_CANCELLED, out.error);
    BOOST_TEST(out.error.find("one.datastore.info: cancelled") != std::string::npos, out.error);
    BOOST_TEST((std::chrono::steady_clock::now() - started < 5s), "the cancel did not end the call");
    BOOST_TEST(h.runs().empty(), "runs:" << labels(h.runs()));
}

// A snapshot of the chain that is gone: nothing is pulled.
BOOST_AUTO_TEST_CASE(a_snapshot_gone_from_the_chain) {
    harness h(k_ssh);
    const auto out = h.run(&downloader_action, "downloader",
                           {"restic://100//0:" + k_inc0 + ",1:00ff00ff" + k_dir + "/disk.0.1"}, "");
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(out.error == "No such snapshot: 00ff00ff", out.error);
    BOOST_TEST(count(h.runs(), "restic restore") == 0U);
}

// tar fails (a full disk on the backup server): the error says so and the
// work folder goes.
BOOST_AUTO_TEST_CASE(an_rbd_tar_that_fails_leaves_nothing) {
    harness h(k_ssh, [](const invocation &inv, std::size_t) -> std::optional<reply> {
        if (what_of(inv) == "tar") return failure(2, {"tar: /var/tmp/x.tar.gz: Cannot write: No space left on device"});
        return std::nullopt;
    });
    const auto out = h.run(&downloader_action, "downloader",
                           {"restic+rbd://100//0:" + k_inc0 + ",1:" + k_inc1 + k_dir + "/disk.0.1"}, "");
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(out.error.starts_with("Unable to prepare image: tar: "), out.error);
    BOOST_TEST(out.error.find("No space left on device") != std::string::npos, out.error);
    const auto runs = h.runs();
    BOOST_TEST_REQUIRE(!runs.empty());
    BOOST_TEST(what_of(runs.back()) == "rm", "runs:" << labels(runs));
    BOOST_TEST(runs.back().argv.back().find("/var/tmp/oneds-restic-") != std::string::npos, runs.back().argv.back());
}

// The datastore given must be the URL's.
BOOST_AUTO_TEST_CASE(the_datastore_on_stdin_must_be_the_urls) {
    harness h(k_ssh);
    std::string other = datastore(k_ssh);
    other.replace(other.find("<ID>100</ID>"), 12, "<ID>101</ID>");
    const auto out = h.run(&downloader_action, "downloader", {k_chain_url}, other);
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(out.error == "downloader: the datastore given is 101, the URL names 100", out.error);
    BOOST_TEST(h.runs().empty());
}

BOOST_AUTO_TEST_SUITE_END()

// ===========================================================================
BOOST_AUTO_TEST_SUITE(increment_flatten_branches)

const std::string k_flatten_request =
    image({k_inc0, k_inc1, k_inc2}) + "<EXTRA_DATA><KEEP_LAST>2</KEEP_LAST></EXTRA_DATA>";

// A file at a pull destination (the backup server may also be the
// hypervisor holding that folder) is never overwritten: nothing is pulled.
BOOST_AUTO_TEST_CASE(an_existing_destination_is_not_overwritten) {
    for (const auto &f : {k_ssh, k_here}) {
        BOOST_TEST_CONTEXT(f.name) {
            harness h(f, [](const invocation &inv, std::size_t) -> std::optional<reply> {
                if (what_of(inv) == "test" && inv.argv.back() == k_dir + "/disk.1.0") return failure(1, {});
                return std::nullopt;
            });
            const auto out =
                h.run(&increment_flatten_action, "increment_flatten", {"42"}, request(f, k_flatten_request));
            BOOST_TEST(out.status == ONEDS_ERR_FAILED);
            BOOST_TEST(out.error == "Unable to flatten increments: " + k_dir + "/disk.1.0 already exists on " +
                                        (f.where == place::backup_server ? "oneadmin@backup" : "this host") +
                                        "; refusing to overwrite it",
                       out.error);
            const auto runs = h.runs();
            BOOST_TEST(count(runs, "restic restore") == 0U);
            BOOST_TEST(count(runs, "rm") == 0U);  // nothing of ours to remove
        }
    }
}

// The merged state is backed up but the originals cannot be forgotten: the
// error says that the new snapshot is kept (oned keeps the old chain).
BOOST_AUTO_TEST_CASE(a_forget_that_fails_keeps_the_new_snapshot) {
    harness h(k_ssh, [](const invocation &inv, std::size_t) -> std::optional<reply> {
        if (what_of(inv) == "restic forget") return locked_by("far-away", "99", "1m2s");
        return std::nullopt;
    });
    const auto out = h.run(&increment_flatten_action, "increment_flatten", {"42"}, request(k_ssh, k_flatten_request));
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(out.error.starts_with("Unable to remove merged snapshots (new snapshot " + k_new_snapshot +
                                     " kept): repository still locked by PID 99 on far-away"),
               out.error);
    BOOST_TEST(count(h.runs(), "restic forget") == 4U);  // the first try and lock_retries (3) more
}

// RESTIC_PRUNE_MAX_UNUSED is checked before anything runs, in rm and here
// (the stock driver checks it when it reads the datastore, for every action).
// A value restic refuses would otherwise surface only at the final forget,
// after the merged snapshot was made; oned keeps the old chain, sends the same
// flattening after the next backup, and each attempt leaves one more snapshot
// that no image names.
BOOST_AUTO_TEST_CASE(a_bad_prune_attribute_is_refused_before_anything_runs) {
    const struct {
        runtime::outcome (*fn)(action_env &);
        const char *name;
        std::string rest;
    } actions[] = {{&increment_flatten_action, "increment_flatten", k_flatten_request},
                   {&rm_action, "rm", image({k_inc0, k_inc1})}};
    for (const auto &a : actions) {
        BOOST_TEST_CONTEXT(a.name) {
            harness h(k_ssh);
            std::string doc = request(k_ssh, a.rest);
            doc.insert(doc.find("</TEMPLATE>"), "<RESTIC_PRUNE_MAX_UNUSED>5 GiB</RESTIC_PRUNE_MAX_UNUSED>");
            const auto out = h.run(a.fn, a.name, {"42"}, doc);
            BOOST_TEST(out.status == ONEDS_ERR_FAILED);
            BOOST_TEST(out.error ==
                           "Wrong restic datastore configuration: RESTIC_PRUNE_MAX_UNUSED must be a size (digits with "
                           "an optional k/M/G/T or %) or 'unlimited', got '5 GiB'",
                       out.error);
            BOOST_TEST(h.runs().empty(), "runs:" << labels(h.runs()));
        }
    }
}

// A chain not longer than KEEP_LAST: nothing runs, nothing is printed.
BOOST_AUTO_TEST_CASE(a_short_chain_is_left_alone) {
    harness h(k_ssh);
    const auto out =
        h.run(&increment_flatten_action, "increment_flatten", {"42"},
              request(k_ssh, image({k_inc0, k_inc1}) + "<EXTRA_DATA><KEEP_LAST>2</KEEP_LAST></EXTRA_DATA>"));
    BOOST_TEST_REQUIRE(out.status == ONEDS_OK, out.error);
    BOOST_TEST(out.info.empty());
    BOOST_TEST(h.runs().empty());
}

BOOST_AUTO_TEST_SUITE_END()

// ===========================================================================
BOOST_AUTO_TEST_SUITE(restore_branches)

const std::string k_restore_request =
    image({k_inc0, k_inc1}) + "<DESTINATION_DS_ID>1</DESTINATION_DS_ID><TEMPLATE><USERNAME>alice</USERNAME></TEMPLATE>";

// oned does not answer: no object is made.
BOOST_AUTO_TEST_CASE(oned_unreachable) {
    harness h(k_ssh);
    h.oned.fail("one.image.allocate", test::fake_one_api::unreachable("one.image.allocate"));
    const auto out = h.run(&restore_action, "restore", {"9"}, request(k_ssh, k_restore_request));
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(out.error.starts_with("Error restoring disk image: one.image.allocate: oned at "), out.error);
    BOOST_TEST(h.oned.images().empty());
}

// The cipher auth file cannot be used: the error says so, and nothing runs.
BOOST_AUTO_TEST_CASE(no_login_starts_nothing) {
    harness h(k_ssh);
    h.oned.fail_login({ports::error_kind::not_found,
                       "oned server_cipher auth file /nonexistent/onegate_auth does not exist: it must hold ...", 0});
    const auto out = h.run(&restore_action, "restore", {"9"}, request(k_ssh, k_restore_request));
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(out.error.starts_with("Cannot log in to oned as alice: oned server_cipher auth file "
                                     "/nonexistent/onegate_auth does not exist"),
               out.error);
    BOOST_TEST(h.runs().empty(), "expected no restic run before the login");
    BOOST_TEST(h.oned.calls().empty());
}

// A DESTINATION_DS_ID beyond oned's 32-bit ids is refused by name before
// anything runs (it used to escape as std::stoi's out_of_range).
BOOST_AUTO_TEST_CASE(a_destination_beyond_32_bits_starts_nothing) {
    harness h(k_ssh);
    const std::string req = image({k_inc0, k_inc1}) +
                            "<DESTINATION_DS_ID>99999999999</DESTINATION_DS_ID><TEMPLATE><USERNAME>alice</"
                            "USERNAME></TEMPLATE>";
    const auto out = h.run(&restore_action, "restore", {"9"}, request(k_ssh, req));
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(out.error == "DESTINATION_DS_ID 99999999999 is not a datastore id (at most 2147483647)", out.error);
    BOOST_TEST(h.runs().empty());
    BOOST_TEST(h.oned.calls().empty());
}

// oned refuses the second image: the error names the one already made.
BOOST_AUTO_TEST_CASE(a_refused_image_names_those_already_restored) {
    harness h(k_ssh);
    h.oned.fail("one.image.allocate",
                test::fake_one_api::refusal("one.image.allocate", "[one.image.allocate] Not enough capacity.",
                                            ports::one_action),
                1);
    const auto out = h.run(&restore_action, "restore", {"9"}, request(k_ssh, k_restore_request));
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(out.error ==
                   "Error restoring disk image: one.image.allocate: [one.image.allocate] Not enough capacity. "
                   "(code 2048) The following images were restored: 200",
               out.error);
    BOOST_TEST(h.oned.templates().empty());
    // The TPM archive is read for the template only.
    BOOST_TEST(count(h.runs(), "restic dump") == 1U);
}

// A cancel while oned does not answer: the allocation is abandoned and
// nothing more is asked of oned.
BOOST_AUTO_TEST_CASE(a_cancel_while_oned_does_not_answer) {
    harness h(k_ssh);
    h.oned.hold("one.image.allocate");
    std::stop_source stop;
    std::jthread canceller([&] {
        if (h.oned.wait_until_held(5s)) stop.request_stop();
    });
    const auto out = h.run(&restore_action, "restore", {"9"}, request(k_ssh, k_restore_request), &stop);
    BOOST_TEST(out.status == ONEDS_ERR_CANCELLED, out.error);
    BOOST_TEST(out.error.starts_with("Error restoring disk image: one.image.allocate: cancelled"), out.error);
    BOOST_TEST(h.oned.methods() == (std::vector<std::string>{"one.image.allocate"}), boost::test_tools::per_element());
}

// A user oned does not know: oned refuses the login, no object is made.
BOOST_AUTO_TEST_CASE(an_unknown_user) {
    harness h(k_ssh);
    std::string doc = k_restore_request;
    doc.replace(doc.find("alice"), 5, "mallory");
    const auto out = h.run(&restore_action, "restore", {"9"}, request(k_ssh, doc));
    BOOST_TEST(out.status == ONEDS_ERR_FAILED);
    BOOST_TEST(out.error ==
                   "Error restoring disk image: one.image.allocate: [one.image.allocate] User couldn't be "
                   "authenticated, aborting call. (code 256)",
               out.error);
    BOOST_TEST(h.oned.images().empty());
}

BOOST_AUTO_TEST_SUITE_END()

// ===========================================================================
BOOST_AUTO_TEST_SUITE(backup_cancel_branches)

// The fail-safe on the hypervisor, by what ps, grep and kill answer there.
BOOST_AUTO_TEST_CASE(what_the_hypervisor_answers) {
    const std::string vm_xml = k_dir + "/vm.xml";
    const struct {
        const char *name;
        std::function<std::optional<reply>(const invocation &)> answer;
        std::vector<std::string> runs;  // what ran, in order
        std::string error;              // "" = success
    } cases[] = {
        {"no restic running (ps exits 1)",
         [](const invocation &inv) -> std::optional<reply> {
             if (what_of(inv) == "ps") return output({}, 1);
             return std::nullopt;
         },
         {"node1: ps -o pid= -C restic"},
         ""},
        {"no restic of this backup (grep exits 1)",
         [](const invocation &inv) -> std::optional<reply> {
             if (what_of(inv) == "grep") return output({}, 1);
             return std::nullopt;
         },
         {"node1: ps -o pid= -C restic",
          "node1: grep -lszxF -e " + vm_xml + " -- /proc/4242/cmdline /proc/4343/cmdline"},
         ""},
        {"the restic ended meanwhile (kill exits 1)",
         [](const invocation &inv) -> std::optional<reply> {
             if (what_of(inv) == "kill") return failure(1, {"bash: kill: (4343) - No such process"});
             return std::nullopt;
         },
         {"node1: ps -o pid= -C restic",
          "node1: grep -lszxF -e " + vm_xml + " -- /proc/4242/cmdline /proc/4343/cmdline", "node1: kill -INT 4343"},
         ""},
        {"the hypervisor cannot be reached",
         [](const invocation &) -> std::optional<reply> {
             reply r = ssh_refused();
             r.result.stderr_lines = {"ssh: connect to host node1 port 22: Connection refused"};
             return r;
         },
         {"node1: ps -o pid= -C restic"},
         "Unable to stop leftover restic process on node1: ssh: connect to host node1 port 22: Connection refused"},
    };
    for (const auto &c : cases) {
        BOOST_TEST_CONTEXT(c.name) {
            harness h(k_ssh, [&c](const invocation &inv, std::size_t) { return c.answer(inv); });
            const auto out = h.run(&backup_cancel_action, "backup_cancel",
                                   {"node1:/var/lib/one/datastores/0/7", "one-7"}, "<VM><ID>7</ID></VM>");
            std::vector<std::string> ran;
            for (const auto &r : h.runs()) ran.push_back(label(r));
            BOOST_TEST(ran == c.runs, boost::test_tools::per_element());
            if (c.error.empty()) {
                BOOST_TEST(out.status == ONEDS_OK, out.error);
            } else {
                BOOST_TEST(out.status == ONEDS_ERR_FAILED);
                BOOST_TEST(out.error == c.error, out.error);
            }
        }
    }
}

// A cancel of the cancel: nothing more is started on the hypervisor.
BOOST_AUTO_TEST_CASE(cancelled_while_listing) {
    std::stop_source stop;
    harness h(k_ssh, [&stop](const invocation &inv, std::size_t) -> std::optional<reply> {
        if (what_of(inv) == "ps") return interrupted(stop);
        return std::nullopt;
    });
    const auto out = h.run(&backup_cancel_action, "backup_cancel", {"node1:/var/lib/one/datastores/0/7", "one-7"},
                           "<VM><ID>7</ID></VM>", &stop);
    BOOST_TEST(out.status == ONEDS_ERR_CANCELLED, out.error);
    std::vector<std::string> ran;
    for (const auto &r : h.runs()) ran.push_back(label(r));
    BOOST_TEST(ran == std::vector<std::string>{"node1: ps -o pid= -C restic"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// ===========================================================================
// The fake oned API keeps its promises (tests/fakes/fake_one_api.hpp): the
// tests above rely on them.
BOOST_AUTO_TEST_SUITE(fake_one_api_itself)

BOOST_AUTO_TEST_CASE(answers_as_oned_and_checks_signatures) {
    test::fake_one_api oned;
    oned.add_datastore(100, "<DATASTORE><ID>100</ID><TEMPLATE><RESTIC_PASSWORD>" + k_password +
                                "</RESTIC_PASSWORD></TEMPLATE></DATASTORE>");
    oned.add_user(5, "alice", 101);
    const auto info = [&oned](bool decrypt) {
        auto r = oned.call("one.datastore.info", {std::int32_t{100}, decrypt}, {});
        BOOST_TEST_REQUIRE(r.has_value(), (r ? std::string() : r.err().message));
        return std::get<std::string>(r->body);
    };
    BOOST_TEST(info(true).find(k_password) != std::string::npos);
    BOOST_TEST(info(false).find(k_password) == std::string::npos, info(false));
    // oned's signature says i4: an i8 is a fault.
    auto wrong = oned.call("one.datastore.info", {std::int64_t{100}, true}, {});
    BOOST_TEST_REQUIRE(!wrong.has_value());
    BOOST_TEST(wrong.err().message.find("XML-RPC fault") != std::string::npos, wrong.err().message);
    auto missing = oned.call("one.image.chown", {std::int32_t{7}, std::int32_t{5}, std::int32_t{101}}, {});
    BOOST_TEST_REQUIRE(!missing.has_value());
    BOOST_TEST((missing.err().kind == ports::error_kind::not_found));
    BOOST_TEST(missing.err().message == "one.image.chown: [one.image.chown] Error getting image [7]. (code 1024)");
    BOOST_TEST(missing.err().code == ports::one_no_exists);
    auto made = oned.call("one.image.allocate",
                          {std::string("NAME = \"a \\\"b\\\"\"\nTYPE = \"OS\"\n"), std::int32_t{100}}, {});
    BOOST_TEST_REQUIRE(made.has_value(), (made ? std::string() : made.err().message));
    BOOST_TEST(std::get<std::int32_t>(made->body) == 200);
    BOOST_TEST(oned.images().at(0).attributes.at("NAME") == "a \"b\"");
}

BOOST_AUTO_TEST_CASE(fails_when_told_and_honours_the_stop_token) {
    test::fake_one_api oned;
    oned.fail("one.userpool.info", test::fake_one_api::unreachable("one.userpool.info"), 1);
    BOOST_TEST(oned.call("one.userpool.info", {}, {}).has_value());
    auto second = oned.call("one.userpool.info", {}, {});
    BOOST_TEST_REQUIRE(!second.has_value());
    BOOST_TEST((second.err().kind == ports::error_kind::unreachable));

    std::stop_source stopped;
    stopped.request_stop();
    auto r = oned.call("one.userpool.info", {}, stopped.get_token());
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST((r.err().kind == ports::error_kind::cancelled));
    BOOST_TEST(oned.calls().back().stop_requested_at_start);

    oned.hold("one.template.allocate");
    std::stop_source stop;
    std::jthread stopper([&] {
        if (oned.wait_until_held(5s)) stop.request_stop();
    });
    const auto started = std::chrono::steady_clock::now();
    auto held = oned.call("one.template.allocate", {std::string("NAME = \"t\"")}, stop.get_token());
    BOOST_TEST_REQUIRE(!held.has_value());
    BOOST_TEST((held.err().kind == ports::error_kind::cancelled));
    BOOST_TEST((std::chrono::steady_clock::now() - started < 5s));
    BOOST_TEST(oned.templates().empty());
}

BOOST_AUTO_TEST_SUITE_END()
