// doctor: checks a restic backup datastore's set-up and says how to fix what
// is wrong (docs/doctor.md). Not a stock action: `one_ds_host doctor` submits
// it, with argv
//
//   [--json] [--hypervisor HOST]... [DATASTORE_ID]
//
// and the DATASTORE as the document (read from a template file by the host),
// or, with DATASTORE_ID, the datastore read from oned here
// (one.datastore.info, decrypted), as the downloader reads it.
//
// Every check reuses what the actions run: restic's version through the
// picker of OpenNebula's copy (restic_words), ssh through the process port's
// ssh runner, BASE_PATH through the storage port (make_directories,
// capacity) and a write as the backup server's user, the password through
// run_restic, nice/ionice through confined_argv, the systemd slice through
// the slice launcher itself (running `true` in the slice), oned through the
// one_api port.
//
// The result is a table (or, with --json, a JSON array) written to stdout
// through write_output; the request succeeds when no check FAILs, else it
// fails with "doctor: N of M checks failed".
#include "plugin/restic/actions/action_env.hpp"
#include "plugin/restic/cli/systemd_slice.hpp"
#include "plugin/restic/repo_ops.hpp"

#include "common/strings.hpp"

#include <boost/json.hpp>
#include <pugixml.hpp>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

namespace oneds::restic {
namespace {

using runtime::outcome;

struct check {
    std::string name, target, status, detail, fix;  // status: PASS, FAIL or SKIP
};

class report {
public:
    void pass(std::string name, std::string target, std::string detail) {
        add({std::move(name), std::move(target), "PASS", std::move(detail), {}});
    }
    void fail(std::string name, std::string target, std::string detail, std::string fix) {
        add({std::move(name), std::move(target), "FAIL", std::move(detail), std::move(fix)});
    }
    void skip(std::string name, std::string target, std::string detail) {
        add({std::move(name), std::move(target), "SKIP", std::move(detail), {}});
    }
    const std::vector<check> &checks() const { return checks_; }
    std::size_t failed() const {
        return static_cast<std::size_t>(
            std::count_if(checks_.begin(), checks_.end(), [](const check &c) { return c.status == "FAIL"; }));
    }

private:
    void add(check c) {
        c.detail = common::one_line(c.detail);
        c.fix = common::one_line(c.fix);
        checks_.push_back(std::move(c));
    }
    std::vector<check> checks_;
};

// One object a line, in the table's order (boost::json escapes).
std::string render_json(const report &r) {
    std::string out = "[";
    bool first = true;
    for (const auto &c : r.checks()) {
        out += first ? "\n  " : ",\n  ";
        first = false;
        out += boost::json::serialize(boost::json::object{
            {"check", c.name}, {"target", c.target}, {"status", c.status}, {"detail", c.detail}, {"fix", c.fix}});
    }
    return out + "\n]\n";
}

std::string pad(const std::string &s, std::size_t width) {
    return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

std::string render_table(const report &r) {
    std::size_t wn = 5, wt = 6;  // "CHECK", "TARGET"
    for (const auto &c : r.checks()) {
        wn = std::max(wn, c.name.size());
        wt = std::max(wt, c.target.size());
    }
    std::string out = pad("CHECK", wn) + "  " + pad("TARGET", wt) + "  RESULT  DETAIL\n";
    for (const auto &c : r.checks()) {
        out += pad(c.name, wn) + "  " + pad(c.target, wt) + "  " + pad(c.status, 6) + "  " + c.detail + "\n";
        if (!c.fix.empty()) out += pad("", wn) + "  " + pad("", wt) + "  " + pad("", 6) + "  fix: " + c.fix + "\n";
    }
    const std::size_t failed = r.failed();
    out += "\n" + std::to_string(r.checks().size()) + " checks, " + std::to_string(failed) + " failed\n";
    return out;
}

// The words ssh prints when the host key is the problem.
bool host_key_problem(const std::string &ssh_stderr) {
    return ssh_stderr.find("Host key verification failed") != std::string::npos ||
           ssh_stderr.find("REMOTE HOST IDENTIFICATION HAS CHANGED") != std::string::npos ||
           ssh_stderr.find("No ED25519 host key is known") != std::string::npos ||
           ssh_stderr.find("host key is known") != std::string::npos;
}

// How to trust host's key: ssh-keyscan of what ssh connects to, appended to
// the known_hosts file the ssh configuration names (ssh -G, as the sftp side
// resolves a host).
std::string host_key_fix(action_env &env, const std::string &host) {
    std::string hostname = host, port = "22", known = "~/.ssh/known_hosts";
    ports::command cmd;
    cmd.argv = {"ssh"};
    if (!env.settings.ssh_config.empty()) cmd.argv.insert(cmd.argv.end(), {"-F", env.settings.ssh_config});
    const auto at = host.find('@');
    cmd.argv.insert(cmd.argv.end(), {"-G", "--", at == std::string::npos ? host : host.substr(at + 1)});
    ports::run_options opts;
    opts.stop = env.stop();
    if (auto r = env.runner.run("", cmd, opts); r && r->exit_code == 0) {
        for (const auto &line : common::split(r->stdout_text, '\n')) {
            const auto sp = line.find(' ');
            if (sp == std::string::npos) continue;
            const auto key = line.substr(0, sp);
            const auto value = std::string(common::trim(line.substr(sp + 1)));
            if (key == "hostname") hostname = value;
            if (key == "port") port = value;
            if (key == "userknownhostsfile")
                known = common::split_ws(value).empty() ? known : common::split_ws(value)[0];
        }
    }
    return "check the host's key fingerprint, then add it: ssh-keyscan -p " + port + " " + hostname + " >> " + known;
}

// Runs argv at host; exit 255 is ssh's own failure.
struct run_result {
    bool ran = false;  // the command ran (ssh connected), whatever its exit
    int exit_code = -1;
    std::string out, err;
};

run_result run_at(action_env &env, const std::string &host, std::vector<std::string> argv, std::string input = {}) {
    ports::command cmd;
    cmd.argv = std::move(argv);
    cmd.stdin_data = std::move(input);
    ports::run_options opts;
    opts.stop = env.stop();
    opts.kill_grace = env.settings.kill_grace;
    run_result out;
    auto r = env.runner.run(host, cmd, opts);
    if (!r) {
        out.err = r.err().message;
        return out;
    }
    out.exit_code = r->exit_code;
    out.out = r->stdout_text;
    out.err = r->stderr_text;
    out.ran = !r->cancelled && !(!host.empty() && r->exit_code == 255);
    return out;
}

std::string first_line(const std::string &text) {
    for (const auto &line : common::split(text, '\n'))
        if (auto t = common::trim(line); !t.empty()) return std::string(t);
    return {};
}

// ssh to host: true when it works (and the PASS/FAIL line is added).
bool check_ssh(action_env &env, report &rep, const std::string &host, const std::string &target) {
    auto r = run_at(env, host, {"true"});
    if (r.ran && r.exit_code == 0) {
        rep.pass("ssh", target, "logged in (BatchMode, host key checked)");
        return true;
    }
    const std::string why =
        first_line(r.err.empty() ? std::string("exit status ") + std::to_string(r.exit_code) : r.err);
    if (host_key_problem(r.err))
        rep.fail("ssh", target, "host key of " + host + " not trusted: " + why, host_key_fix(env, host));
    else
        rep.fail("ssh", target, "cannot log in: " + why,
                 "make `ssh -o BatchMode=yes " + host +
                     " true` work as this user (the key in the remote authorized_keys, the host reachable)");
    return false;
}

// restic's version at site.
void check_restic(action_env &env, report &rep, const repo_site &site, const std::string &target,
                  const std::string &fix_missing) {
    if (!site.unavailable.empty()) {
        rep.fail("restic", target, site.unavailable, fix_missing);
        return;
    }
    auto words = restic_words(site);
    words.push_back("version");
    auto r = run_at(env, site.host, words);
    const auto version = r.exit_code == 0 ? parse_version(r.out) : std::nullopt;
    if (version) {
        std::string where = site.restic_bin;
        for (const auto &line : common::split(r.err, '\n'))
            if (line.starts_with(restic_from_path_marker))
                where = line.substr(restic_from_path_marker.size()) + " from PATH; OpenNebula's copy " +
                        site.restic_bin + " is missing: " + site.fallback_hint;
        rep.pass("restic", target, "restic " + version->str() + " (" + where + ")");
        return;
    }
    std::string why = first_line(r.err);
    if (r.err.find(restic_missing_marker) != std::string::npos || r.exit_code == 127)
        why = site.path_fallback ? "no restic: neither " + site.restic_bin + " nor restic on PATH"
                                 : "no restic at " + site.restic_bin + (why.empty() ? "" : ": " + why);
    rep.fail("restic", target, why.empty() ? "`restic version` failed (exit " + std::to_string(r.exit_code) + ")" : why,
             fix_missing);
}

constexpr std::uint64_t k_min_free = 1ULL << 30;  // 1 GiB

std::string gib(std::uint64_t bytes) {
    const auto tenths = bytes * 10 / (1ULL << 30);
    return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " GiB";
}

// A file made and removed in BASE_PATH as the user backups write as, where
// that user works (the backup server, or here for LOCAL). Constant script,
// the directory as $1.
constexpr const char *k_write_probe = "f=\"$1/.oneds-doctor-$$\"; ( : >\"$f\" ) 2>&1 || exit 1; rm -f \"$f\"";
// The first repository (a directory with a config file) under $1.
constexpr const char *k_find_repo =
    "for c in \"$1\"/*/config; do if [ -f \"$c\" ]; then printf \"%s\\n\" \"${c%/config}\"; exit 0; fi; done";

void check_storage(action_env &env, report &rep, const datastore_attributes &a, const std::string &storage_host) {
    auto store = env.stores.store_for(a);
    const std::string target = a.backend == backend_kind::s3 ? "s3 bucket " + a.s3_bucket
                               : store                       ? (*store)->describe() + ":" + a.base_path
                                                             : a.base_path;
    if (!store) {
        rep.fail("storage", target, store.err().message, "correct the storage attributes of the datastore");
        return;
    }
    if (a.backend == backend_kind::s3) {
        auto u = (*store)->usage_summary(env.stop());
        if (u) {
            rep.pass("storage", target, "bucket reachable at " + a.s3_endpoint + " with the keys");
        } else if (u.err().kind == ports::error_kind::not_found) {
            rep.fail("storage", target, u.err().message, "create the bucket " + a.s3_bucket);
        } else {
            rep.fail("storage", target, u.err().message,
                     "check RESTIC_S3_ENDPOINT, RESTIC_S3_ACCESS_KEY_ID, RESTIC_S3_SECRET_ACCESS_KEY and the CA file");
        }
        return;
    }
    if (auto made = (*store)->make_directories(a.base_path, env.stop()); !made) {
        rep.fail("storage", target, "cannot create BASE_PATH: " + made.err().message,
                 "create " + a.base_path + " writable by the backup server's user");
        return;
    }
    auto w = run_at(env, storage_host, {"sh", "-c", k_write_probe, "oneds-doctor", a.base_path});
    if (w.ran && w.exit_code == 0) {
        rep.pass("storage", target, "BASE_PATH writable");
    } else {
        rep.fail("storage", target, "BASE_PATH not writable: " + first_line(w.out.empty() ? w.err : w.out),
                 "make " + a.base_path + " writable by " +
                     (a.backend == backend_kind::sftp ? a.sftp_user + " on " + a.sftp_server : "this user") +
                     " (and not on a read-only filesystem)");
    }
    auto cap = (*store)->capacity(a.base_path, env.stop());
    if (!cap) {
        rep.fail("free space", target, cap.err().message, "make BASE_PATH's filesystem reachable");
        return;
    }
    const std::uint64_t five_pct = cap->total_bytes / 20;
    const std::string numbers = gib(cap->free_bytes) + " free of " + gib(cap->total_bytes);
    if (cap->free_bytes < k_min_free || cap->free_bytes < five_pct)
        rep.fail("free space", target, numbers + " (below 1 GiB or 5%)",
                 "free space in or grow the filesystem of " + a.base_path);
    else
        rep.pass("free space", target, numbers);
}

void check_password(action_env &env, report &rep, const datastore_attributes &a, const std::string &storage_host) {
    const std::string name = "password";
    if (a.backend == backend_kind::s3) {
        rep.skip(name, "s3 bucket " + a.s3_bucket, "not tried on S3 (no repository listing)");
        return;
    }
    auto found = run_at(env, storage_host, {"sh", "-c", k_find_repo, "oneds-doctor", a.base_path});
    const std::string repo = first_line(found.out);
    if (!found.ran || found.exit_code != 0 || repo.empty()) {
        rep.skip(name, a.base_path, "no repository under BASE_PATH yet to try the password on");
        return;
    }
    const auto site = maintenance_site(env, a, repo);
    auto r = run_restic(env, a, site, {"--no-lock"}, "cat", {"config"}, "reading the repository's config");
    if (r) {
        rep.pass(name, site.describe(), "RESTIC_PASSWORD opens the repository");
        return;
    }
    if (r.err().kind == ports::error_kind::permission && r.err().message.find("wrong password") != std::string::npos)
        rep.fail(name, site.describe(), "the password does not open " + repo,
                 "set RESTIC_PASSWORD to the password the repositories were made with (onedatastore update)");
    else
        rep.fail(name, site.describe(), r.err().message, "see the detail; `restic cat config` must work there");
}

void check_confinement(action_env &env, report &rep, const datastore_attributes &a,
                       const std::vector<std::string> &hypervisors, const std::vector<bool> &reachable) {
    const bool niced = a.nice != -1 || a.ionice != -1;
    if (!a.slice_confined() && !niced) {
        rep.skip("confinement", "hypervisors", "no RESTIC_NICE, RESTIC_IONICE or systemd slice limit set");
        return;
    }
    if (hypervisors.empty()) {
        rep.skip("confinement", "hypervisors", "limits are set; name hypervisors with --hypervisor to check them");
        return;
    }
    for (std::size_t i = 0; i < hypervisors.size(); ++i) {
        const std::string &h = hypervisors[i];
        const std::string host = env.exec_host(h);
        if (!reachable[i]) {
            rep.skip(a.slice_confined() ? "systemd slice" : "nice/ionice", h, "no ssh to the hypervisor");
            continue;
        }
        if (a.slice_confined()) {
            // The backup's own launcher, running `true` in the slice: what a
            // backup needs of the user manager, exactly.
            const systemd_tools tools{env.settings.systemd_run, env.settings.systemctl, env.settings.systemd_unit_dir,
                                      env.settings.systemd_user_cgroup};
            std::vector<std::string> argv;
            try {
                argv = slice_launcher(a, tools, "/var/lib/one/datastores", {});
            } catch (const attribute_error &e) {
                rep.fail("systemd slice", h, e.what(), "correct the slice attributes");
                continue;
            }
            argv.push_back("true");
            auto r = run_at(env, host, argv);
            std::optional<slice_failure> f;
            for (const auto &line : common::split(r.out, '\n'))
                if (!f) f = parse_slice_line(line);
            std::string limits;
            for (const auto &l : a.slice_limits_set) limits += (limits.empty() ? "" : ", ") + l;
            if (f) {
                const std::string msg = slice_failure_message(*f, a, host);
                rep.fail("systemd slice", h, msg, "see the detail: lingering and Delegate= for the user manager");
            } else if (r.ran && r.exit_code == 0) {
                rep.pass("systemd slice", h,
                         "systemd-run --user ran a command in " + slice_name(a) + " (" + limits + ")");
            } else {
                rep.fail("systemd slice", h, "systemd-run failed: " + first_line(r.err),
                         "install systemd on the hypervisor and enable lingering: loginctl enable-linger <user>");
            }
            continue;
        }
        auto r = run_at(env, host, confined_argv(a, {"true"}));
        const std::string what = a.nice != -1 && a.ionice != -1 ? "nice and ionice" : a.nice != -1 ? "nice" : "ionice";
        if (r.ran && r.exit_code == 0)
            rep.pass("nice/ionice", h,
                     what + (a.nice != -1 && a.ionice != -1 ? " work" : " works") + " (RESTIC_NICE " +
                         std::to_string(a.nice) + ", RESTIC_IONICE " + std::to_string(a.ionice) + ")");
        else
            rep.fail("nice/ionice", h, what + " failed: " + first_line(r.err),
                     "install coreutils (nice) and util-linux (ionice) on " + h + ", on the PATH of ssh commands");
    }
}

void check_oned(action_env &env, report &rep) {
    if (env.oned == nullptr) {
        rep.fail(
            "oned", "XML-RPC",
            env.oned_problem.empty() ? "no oned client could be made from the host's oned settings" : env.oned_problem,
            "set oned_endpoint and oned_auth_file (user:password) in one_ds_host.conf");
        return;
    }
    const std::string target = env.oned->describe();
    auto v = env.oned->call("one.system.version", {}, env.stop());
    if (!v) {
        if (v.err().kind == ports::error_kind::unreachable)
            rep.fail("oned", target, "unreachable: " + v.err().message,
                     "start oned or correct oned_endpoint in one_ds_host.conf");
        else if (v.err().kind == ports::error_kind::permission)
            rep.fail("oned", target, "credentials refused: " + v.err().message,
                     "put the right user:password in the oned_auth_file named in one_ds_host.conf");
        else
            rep.fail("oned", target, v.err().message, "check oned_endpoint and oned's log");
        return;
    }
    auto u = env.oned->call("one.user.info", {static_cast<std::int32_t>(-1)}, env.stop());
    if (!u) {
        rep.fail("oned", target, "credentials refused: " + u.err().message,
                 "put the right user:password in the oned_auth_file named in one_ds_host.conf");
        return;
    }
    std::string user;
    if (const auto *xml = std::get_if<std::string>(&u->body)) {
        pugi::xml_document d;
        if (d.load_buffer(xml->data(), xml->size())) user = d.child("USER").child_value("NAME");
    }
    const auto *ver = std::get_if<std::string>(&v->body);
    rep.pass("oned", target,
             "OpenNebula " + (ver != nullptr ? *ver : std::string("?")) + (user.empty() ? "" : ", user " + user));
}

}  // namespace

outcome doctor_action(action_env &env) {
    const auto &args = env.ctx.req().args;
    bool json = false;
    std::vector<std::string> hypervisors;
    std::string ds_id;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--json") {
            json = true;
        } else if (args[i] == "--hypervisor" && i + 1 < args.size()) {
            hypervisors.push_back(args[++i]);
        } else if (ds_id.empty() && !args[i].empty() &&
                   std::all_of(args[i].begin(), args[i].end(), [](char c) { return c >= '0' && c <= '9'; })) {
            ds_id = args[i];
        } else {
            return outcome::fail("doctor: unexpected argument '" + common::printable(args[i]) +
                                     "'; expected [--json] [--hypervisor HOST]... [DATASTORE_ID]",
                                 ONEDS_ERR_INVALID);
        }
    }
    for (const auto &h : hypervisors)
        if (auto p = env.host_problem("--hypervisor", h); !p.empty()) return outcome::fail(p, ONEDS_ERR_INVALID);

    report rep;
    check_oned(env, rep);

    // The datastore: the document, or oned's.
    pugi::xml_document doc;
    pugi::xml_node ds;
    const auto &input = env.ctx.req().document;
    const std::string ds_target = ds_id.empty() ? "template file" : "datastore " + ds_id;
    std::string ds_problem, ds_fix;
    if (!input.empty() && doc.load_buffer(input.data(), input.size())) ds = doc.child("DATASTORE");
    if (!ds && !ds_id.empty()) {
        if (env.oned == nullptr) {
            ds_problem = "cannot read it: no oned client" + (env.oned_problem.empty() ? "" : ": " + env.oned_problem);
            ds_fix = "set oned_endpoint and oned_auth_file, or give the datastore's template file instead";
        } else {
            long long id = -1;
            try {
                id = std::stoll(ds_id);
            } catch (const std::exception &) {}
            if (id > INT32_MAX) id = -1;  // oned's ids are 32-bit: no such datastore
            auto info = env.oned->call("one.datastore.info", {static_cast<std::int32_t>(id), true}, env.stop());
            const auto *xml = info ? std::get_if<std::string>(&info->body) : nullptr;
            if (!info) {
                ds_problem = "cannot read it from oned: " + info.err().message;
                ds_fix = info.err().kind == ports::error_kind::not_found ? "give the id of an existing datastore"
                                                                         : "make the oned check pass first";
            } else if (xml == nullptr || !doc.load_buffer(xml->data(), xml->size()) || !(ds = doc.child("DATASTORE"))) {
                ds_problem = "oned returned no DATASTORE document";
            }
        }
    } else if (!ds) {
        ds_problem = "the request holds no DATASTORE";
    }
    datastore_attributes a;
    if (ds_problem.empty()) {
        try {
            a = parse_datastore(ds, env.is_ssh_alias);
        } catch (const attribute_error &e) {
            ds_problem = wrong_configuration(e.what());
            ds_fix = "correct the attribute named (onedatastore update)";
        }
    }
    if (ds_problem.empty() && std::string(ds.child_value("DS_MAD")) != "restic")
        rep.pass("datastore", ds_target,
                 "attributes valid (DS_MAD is " + std::string(ds.child_value("DS_MAD")) + ", not restic)");
    else if (ds_problem.empty())
        rep.pass("datastore", ds_target, "attributes valid, BASE_PATH " + a.base_path);
    else
        rep.fail("datastore", ds_target, ds_problem, ds_fix.empty() ? "see the detail" : ds_fix);

    check_restic(env, rep, frontend_site(env, a, a.base_path), "front end",
                 "install restic or set restic_bin in one_ds_host.conf [plugin.restic]");

    // The hypervisors named: ssh, restic.
    std::vector<bool> reachable;
    for (const auto &h : hypervisors) {
        const std::string host = env.exec_host(h);
        if (host.empty()) rep.skip("ssh", h, "this machine (local_hosts): its commands run without ssh");
        const bool ok = host.empty() || check_ssh(env, rep, host, h);
        reachable.push_back(ok);
        if (ok)
            check_restic(env, rep, hypervisor_site(env, a, h, a.base_path), h,
                         "run `onehost sync` on the front end, or install restic on " + h);
        else
            rep.skip("restic", h, "no ssh to the hypervisor");
    }
    if (!ds_problem.empty()) {
        rep.skip("storage", "BASE_PATH", "the datastore could not be read");
    } else {
        // The backup server (SFTP) is where the repositories live.
        std::string storage_host;
        bool storage_ok = true;
        if (a.backend == backend_kind::sftp) {
            storage_host = env.exec_host(a.sftp_server);
            const std::string target = a.sftp_user + "@" + a.sftp_server;
            if (!storage_host.empty()) {
                storage_host = a.sftp_user + "@" + storage_host;
                storage_ok = check_ssh(env, rep, storage_host, target);
            } else {
                rep.skip("ssh", target, "this machine (local_hosts): its commands run without ssh");
            }
            if (storage_ok)
                check_restic(env, rep, maintenance_site(env, a, a.base_path), target,
                             "the datastore's MONITOR copies OpenNebula's restic there from the front end; or "
                             "install restic on " +
                                 a.sftp_server);
            else
                rep.skip("restic", target, "no ssh to the backup server");
        }
        if (storage_ok) {
            check_storage(env, rep, a, storage_host);
            check_password(env, rep, a, storage_host);
        } else {
            rep.skip("storage", a.base_path, "no ssh to the backup server");
        }
        check_confinement(env, rep, a, hypervisors, reachable);
    }
    if (env.stop().stop_requested()) return outcome::cancelled();

    const std::string text = json ? render_json(rep) : render_table(rep);
    const std::size_t failed = rep.failed();
    if (failed == 0) return outcome::ok(text);
    const std::string summary =
        "doctor: " + std::to_string(failed) + " of " + std::to_string(rep.checks().size()) + " checks failed";
    if (env.ctx.write_output(text) == ONEDS_OK) return outcome::fail(summary);
    return outcome::fail(text + summary);
}

}  // namespace oneds::restic
