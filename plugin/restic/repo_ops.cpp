#include "plugin/restic/repo_ops.hpp"

#include "common/strings.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <csignal>
#include <regex>

#include <unistd.h>

namespace oneds::restic {

ports::status id_argument(const action_env &env, const std::string &action) {
    const auto &args = env.ctx.req().args;
    const auto usage = [&](const std::string &why) {
        return ports::error{ports::error_kind::invalid, action + ": expected one argument, oned's id; " + why};
    };
    if (args.empty()) return usage("got none");
    if (args.size() > 1) return usage("got " + std::to_string(args.size()) + " arguments");
    const std::string_view id = args[0];
    if (!is_decimal_id(id.starts_with('-') ? id.substr(1) : id))
        return usage("got '" + common::printable(args[0]) + "'");
    return ports::ok();
}

ports::status load_request(const action_env &env, const std::string &action, request_doc &d, bool with_image) {
    const auto invalid = [](std::string text) { return ports::error{ports::error_kind::invalid, std::move(text)}; };
    const auto &xml = env.ctx.req().document;
    if (xml.empty() || !d.doc.load_buffer(xml.data(), xml.size()))
        return invalid(action + ": the request must hold the DS_DRIVER_ACTION_DATA document");
    try {
        d.attrs = parse_datastore(d.doc.select_node("/DS_DRIVER_ACTION_DATA/DATASTORE").node(), env.is_ssh_alias);
    } catch (const attribute_error &e) {
        return invalid(wrong_configuration(e.what()));
    }
    if (!with_image) return ports::ok();
    try {
        d.image = parse_backup_image(d.doc);
    } catch (const std::exception &e) {
        return invalid(std::string("Missing datastore or image attributes: ") + e.what());
    }
    return ports::ok();
}

ports::result<std::string> prune_max_unused(const request_doc &d) {
    std::string value(
        common::trim(d.doc.select_node("/DS_DRIVER_ACTION_DATA/DATASTORE/TEMPLATE/RESTIC_PRUNE_MAX_UNUSED")
                         .node()
                         .text()
                         .as_string()));
    if (value.empty()) value = "0";
    // Digits with an optional k/M/G/T or %; by hand, as std::regex overflowed
    // the stack on a long value (found by the action_xml fuzzer, tests/fuzz).
    std::string_view digits = value;
    if (std::string_view("kKmMgGtT%").find(digits.back()) != std::string_view::npos) digits.remove_suffix(1);
    const bool size_or_percent = !digits.empty() && digits.find_first_not_of("0123456789") == std::string_view::npos;
    if (size_or_percent || value == "unlimited") return value;
    return ports::error{ports::error_kind::invalid,
                        wrong_configuration("RESTIC_PRUNE_MAX_UNUSED must be a size (digits with an optional k/M/G/T "
                                            "or %) or 'unlimited', got '" +
                                            common::printable(value) + "'")};
}

namespace {

repo_site here(const action_env &env, std::string repo, std::string ssh_config, std::string path) {
    repo_site site;
    site.restic_bin = env.settings.restic_bin;
    site.repo = std::move(repo);
    site.ssh_config = std::move(ssh_config);
    site.path = std::move(path);
    site.unavailable = env.settings.restic_bin_missing;
    return site;
}

// OpenNebula's copy on that host, else its PATH (restic_words). Deliberate
// difference: stock runs the fixed path and fails when it is missing; a
// distribution restic on the host then still works, with a warning.
repo_site remote(const action_env &env, std::string host, std::string repo, std::string ssh_config, std::string path,
                 std::string hint) {
    repo_site site;
    site.host = std::move(host);
    site.restic_bin = env.settings.remote_restic_bin;
    site.repo = std::move(repo);
    site.ssh_config = std::move(ssh_config);
    site.path = std::move(path);
    site.path_fallback = !env.settings.remote_restic_bin_set;
    site.fallback_hint = std::move(hint);
    return site;
}

}  // namespace

repo_site frontend_site(const action_env &env, const datastore_attributes &a, const std::string &repo_path) {
    return here(env, repository_url(a, repo_path), env.settings.ssh_config, clean_path(repo_path));
}

repo_site maintenance_site(const action_env &env, const datastore_attributes &a, const std::string &repo_path) {
    const std::string path = clean_path(repo_path);
    if (a.backend == backend_kind::local) return here(env, path, "", path);
    // S3: every maintenance command runs here against the bucket (stock).
    if (a.backend == backend_kind::s3) return here(env, repository_url(a, path), "", path);
    const std::string host = env.exec_host(a.sftp_server);
    if (host.empty()) return here(env, path, "", path);
    return remote(env, a.sftp_user + "@" + host, path, "", path,
                  "the datastore's monitor copies OpenNebula's restic there from the front end's remotes");
}

repo_site hypervisor_site(const action_env &env, const datastore_attributes &a, const std::string &vm_host,
                          const std::string &repo_path) {
    return remote(env, env.exec_host(vm_host), repository_url(a, repo_path), env.settings.remote_ssh_config,
                  clean_path(repo_path), "run `onehost sync` on the front end to place OpenNebula's restic there");
}

namespace {

std::string local_host_name() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) return {};
    return name;
}

// Go's duration text ("12m3.2s", "1h0m0s", "45.5s", "300ms") in seconds; -1
// when it is not one.
double go_duration_seconds(std::string_view text) {
    double total = 0;
    bool any = false;
    while (!text.empty()) {
        std::size_t i = 0;
        while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
        if (i == 0) return -1;
        double v = 0;
        try {
            v = std::stod(std::string(text.substr(0, i)));
        } catch (const std::exception &) {
            return -1;
        }
        text.remove_prefix(i);
        std::size_t u = 0;
        while (u < text.size() && !((text[u] >= '0' && text[u] <= '9') || text[u] == '.')) ++u;
        const auto unit = text.substr(0, u);
        text.remove_prefix(u);
        if (unit == "h")
            v *= 3600;
        else if (unit == "m")
            v *= 60;
        else if (unit == "s") {
        } else if (unit == "ms")
            v /= 1000;
        else if (unit == "us" || unit == "\u00b5s")
            v /= 1e6;
        else if (unit == "ns")
            v /= 1e9;
        else
            return -1;
        total += v;
        any = true;
    }
    return any ? total : -1;
}

// `restic unlock` at site, stopped by stop.
ports::status run_unlock(action_env &env, const datastore_attributes &a, const repo_site &site,
                         const std::stop_token &stop) {
    restic_command unlock;
    unlock.site = site;
    unlock.subcommand = "unlock";
    unlock.retry_on_lock = false;
    unlock.what = "unlock of " + site.describe();
    auto res = env.restic(a).run(unlock, a, stop);
    if (!res) return res.err();
    if (res->cancelled) return ports::error{ports::error_kind::unreachable, "timed out"};
    if (res->exit.kind != exit_kind::success) return ports::error{ports::error_kind::io, failure_text(*res)};
    return ports::ok();
}

}  // namespace

ports::status unlock_stale(action_env &env, const datastore_attributes &a, const repo_site &site) {
    // At least 10 s: a restic start over ssh takes about a second here, and a
    // kill_grace of 0 must not make the clean-up impossible.
    const ports::deadline_stop_source limit(std::max(env.settings.kill_grace, std::chrono::milliseconds(10000)));
    return run_unlock(env, a, site, limit.token());
}

lock_inspector stale_lock_inspector(action_env &env, const datastore_attributes &a, const repo_site &site) {
    return [&env, &a, site](const lock_holder &h, const std::stop_token &stop) -> lock_check {
        using verdict = lock_check::verdict;
        if (!is_decimal_id(h.pid) || !host_name_problem(h.host).empty())
            return {verdict::unknown, "the lock names no process that can be checked"};
        // Where restic would agree that the lock is stale, and whether its
        // holder runs there.
        std::optional<repo_site> place;
        std::optional<bool> alive;
        if (h.host == local_host_name()) {
            place = site.host.empty() ? site : frontend_site(env, a, site.path);
            alive = ::kill(static_cast<pid_t>(std::stol(h.pid)), 0) == 0 || errno == EPERM;
        } else if (!site.host.empty()) {
            if (auto name = run_tool(env, site.host, {"uname", "-n"}, "uname", stop);
                name && common::trim(*name) == h.host) {
                place = site;
                ports::command probe;
                probe.argv = {"kill", "-0", h.pid};
                ports::run_options opts;
                opts.stop = stop;
                opts.kill_grace = env.settings.kill_grace;
                auto r = env.runner.run(site.host, probe, opts);
                if (r && !r->cancelled) {
                    if (r->exit_code == 0 || r->stderr_text.find("not permitted") != std::string::npos)
                        alive = true;
                    else if (r->stderr_text.find("No such process") != std::string::npos)
                        alive = false;
                }
            }
        }
        if (!place) {
            // restic's own rule: a lock older than 30 minutes is stale (its
            // holder would have refreshed it every 5 minutes).
            if (const double age = go_duration_seconds(h.age); age >= 1800) {
                if (auto unlocked = run_unlock(env, a, site, stop); unlocked)
                    return {verdict::removed, "older than 30 minutes, stale by restic's own rule"};
                else
                    return {verdict::unknown,
                            "older than 30 minutes, but restic unlock failed: " + unlocked.err().message};
            }
            return {verdict::unknown, "it runs on " + h.host +
                                          ", which is not checked from here; if that process is gone, run restic "
                                          "unlock there, or it goes once it is 30 minutes old"};
        }
        if (!alive) return {verdict::unknown, "could not check whether it runs on " + h.host};
        if (*alive) return {verdict::alive, "running on " + h.host};
        if (auto unlocked = run_unlock(env, a, *place, stop); !unlocked)
            return {verdict::unknown, "process " + h.pid + " is gone from " + h.host +
                                          ", but restic unlock failed: " + unlocked.err().message};
        return {verdict::removed, "process " + h.pid + " is gone from " + h.host};
    };
}

ports::status check_s3_repository(action_env &env, const datastore_attributes &a, const std::string &repo_path,
                                  bool must_exist, bool *exists) {
    if (exists != nullptr) *exists = true;
    if (a.backend != backend_kind::s3) return ports::ok();
    const std::string url = repository_url(a, repo_path);
    auto store = env.stores.store_for(a);
    if (!store) return ports::error{store.err().kind, "S3 repository " + url + ": " + store.err().message};
    auto st = (*store)->stat(clean_path(repo_path) + "/config", env.stop());
    if (!st) {
        if (env.ctx.cancelled()) return ports::cancelled_error();
        // No bucket yet: restic init makes it with the first repository.
        if (st.err().kind == ports::error_kind::not_found && !must_exist) {
            if (exists != nullptr) *exists = false;
            return ports::ok();
        }
        // A bucket that is not there when a repository must be: the
        // datastore names the wrong one (or it was removed). Not not_found,
        // which rm takes for "nothing left to remove": oned would then drop
        // backup images whose snapshots still exist in the right bucket.
        if (st.err().kind == ports::error_kind::not_found)
            return ports::error{ports::error_kind::invalid,
                                "S3 repository " + url + ": " + st.err().message + " (RESTIC_S3_BUCKET)"};
        return ports::error{st.err().kind, "S3 repository " + url + ": " + st.err().message};
    }
    if (exists != nullptr) *exists = st->exists;
    if (!st->exists && must_exist)
        return ports::error{ports::error_kind::not_found, "no restic repository at " + url + " (no object " +
                                                              s3_repo_key(a, repo_path) + "/config in bucket " +
                                                              a.s3_bucket + ")"};
    return ports::ok();
}

namespace {
// Once per request, before its first restic on an S3 repository.
// Callers in parallel wait for the first one's check; a failed check is made
// again by the next caller.
ports::status s3_check_once(action_env &env, const datastore_attributes &a, const repo_site &site) {
    if (a.backend != backend_kind::s3 || env.storage_checked.load()) return ports::ok();
    const std::lock_guard lock(env.storage_check_mutex);
    if (env.storage_checked.load()) return ports::ok();
    auto checked = check_s3_repository(env, a, site.path, true);
    if (checked) env.storage_checked = true;
    return checked;
}
}  // namespace

ports::result<restic_outcome> run_restic(action_env &env, const datastore_attributes &a, const repo_site &site,
                                         std::vector<std::string> options, const std::string &subcommand,
                                         std::vector<std::string> args, const std::string &what,
                                         std::function<void(std::string_view)> on_stdout_line,
                                         std::optional<std::stop_token> stop) {
    if (auto checked = s3_check_once(env, a, site); !checked) return checked.err();
    restic_command run;
    run.site = site;
    run.subcommand = subcommand;
    run.options = std::move(options);
    run.args = std::move(args);
    run.what = what;
    run.on_stdout_line = std::move(on_stdout_line);
    run.inspect_lock = stale_lock_inspector(env, a, site);
    auto res = env.restic(a).run(run, a, stop ? *stop : env.stop());
    // A restic that had to be killed after the cancel, or was killed by
    // someone else, left its lock.
    if (res && res->may_have_left_lock()) {
        if (auto unlocked = unlock_stale(env, a, site); !unlocked)
            env.log('W', what + ": could not remove the stale lock of the stopped restic: " + unlocked.err().message);
    }
    if (!res) {
        // A command that cannot be composed names the attribute already.
        if (res.err().kind == ports::error_kind::invalid) return res.err();
        return ports::error{res.err().kind, "Cannot run restic for " + what + ": " + res.err().message};
    }
    if (res->cancelled) return ports::cancelled_error();
    if (res->exit.kind != exit_kind::success) return ports::error{error_kind_of(res->exit.kind), failure_text(*res)};
    return res;
}

ports::result<std::vector<snapshot_info>> query_snapshots(action_env &env, const datastore_attributes &a,
                                                          const repo_site &site, const std::vector<std::string> &ids,
                                                          std::optional<std::stop_token> stop) {
    std::string text;
    auto r = run_restic(
        env, a, site, {"--no-lock", "--json"}, "snapshots", ids, "snapshots of " + site.describe(),
        [&text](std::string_view line) {
            text += line;
            text += '\n';
        },
        std::move(stop));
    if (!r) return r.err();
    try {
        return parse_snapshots_json(text);
    } catch (const std::exception &e) {
        return ports::error{ports::error_kind::io, e.what()};
    }
}

std::size_t parallel_pulls(const datastore_attributes &a, const std::optional<restic_version> &version) {
    if (a.backend == backend_kind::s3 && (!version || !version->at_least(0, 17))) return 1;
    return 4;
}

const snapshot_info *find_snapshot(const std::vector<snapshot_info> &snaps, const std::string &short_id) {
    for (const auto &s : snaps)
        if (!short_id.empty() && s.id.rfind(short_id, 0) == 0) return &s;
    return nullptr;
}

std::string exit_status_text(int exit_code) {
    if (exit_code > 128 && exit_code < 128 + 65) {
        const char *name = ::strsignal(exit_code - 128);
        return "killed by signal " + std::to_string(exit_code - 128) +
               (name != nullptr ? std::string(" (") + name + ")" : std::string());
    }
    return "exit status " + std::to_string(exit_code);
}

std::string tool_error_text(const std::string &program, std::string_view stderr_text) {
    std::string text = common::one_line(common::strip_terminal_controls(stderr_text));
    // "qemu-img: Could not open ..." after "qemu-img rebase: ": one prefix.
    const auto slash = program.rfind('/');
    const std::string name = slash == std::string::npos ? program : program.substr(slash + 1);
    if (!name.empty() && text.starts_with(name + ": ")) text.erase(0, name.size() + 2);
    return text;
}

ports::result<std::string> run_tool(action_env &env, const std::string &host, std::vector<std::string> argv,
                                    const std::string &what, std::optional<std::stop_token> stop) {
    const std::string program = argv.empty() ? std::string() : argv.front();
    ports::command cmd;
    cmd.argv = std::move(argv);
    ports::run_options opts;
    opts.stop = stop ? *stop : env.stop();
    opts.kill_grace = env.settings.kill_grace;
    auto r = env.runner.run(host, cmd, opts);
    if (!r) return ports::error{r.err().kind, what + ": " + r.err().message};
    if (r->cancelled) return ports::cancelled_error();
    if (r->exit_code != 0) {
        const std::string text = tool_error_text(program, r->stderr_text);
        return ports::error{ports::error_kind::io,
                            what + ": " + (text.empty() ? exit_status_text(r->exit_code) : text)};
    }
    return std::move(r->stdout_text);
}

}  // namespace oneds::restic
