#include "repo_ops.hpp"

#include <oneds_common/strings.hpp>

namespace oneds::restic {

std::string load_request(const action_env &env, const std::string &action, request_doc &d, bool with_image) {
    const auto &xml = env.ctx.req().document;
    if (xml.empty() || !d.doc.load_buffer(xml.data(), xml.size()))
        return action + ": the request must hold the DS_DRIVER_ACTION_DATA document";
    try {
        d.attrs = parse_datastore(d.doc.select_node("/DS_DRIVER_ACTION_DATA/DATASTORE").node());
    } catch (const attribute_error &e) {
        return std::string("Wrong restic datastore configuration: ") + e.what();
    }
    if (!with_image) return {};
    try {
        d.image = parse_backup_image(d.doc);
    } catch (const std::exception &e) {
        return std::string("Missing datastore or image attributes: ") + e.what();
    }
    return {};
}

repo_site frontend_site(const action_env &env, const datastore_attributes &a, const std::string &repo_path) {
    return repo_site{"", env.settings.restic_bin, repository_url(a, repo_path), env.settings.ssh_config};
}

repo_site maintenance_site(const action_env &env, const datastore_attributes &a, const std::string &repo_path) {
    if (a.backend == backend_kind::local) return repo_site{"", env.settings.restic_bin, clean_path(repo_path), ""};
    const std::string host = env.exec_host(a.sftp_server);
    if (host.empty()) return repo_site{"", env.settings.restic_bin, clean_path(repo_path), ""};
    return repo_site{a.sftp_user + "@" + a.sftp_server, env.settings.remote_restic_bin, clean_path(repo_path), ""};
}

restic_result run_restic(action_env &env, const datastore_attributes &a, const repo_site &site,
                         std::vector<std::string> options, const std::string &subcommand,
                         std::vector<std::string> args, const std::string &what,
                         std::function<void(std::string_view)> on_stdout_line, ports::cancellation *cancel) {
    restic_result out;
    restic_call call;
    call.bin = site.restic_bin;
    call.options = std::move(options);
    call.subcommand = subcommand;
    call.args = std::move(args);
    call.repo = site.repo;
    // sftp.command only matters when restic itself speaks SFTP (an sftp: URL).
    if (site.repo.rfind("sftp:", 0) == 0) call.ssh_config = site.ssh_config;
    restic_run run;
    try {
        run.argv = restic_argv(call, a);
    } catch (const attribute_error &e) {
        out.error = std::string("Wrong restic datastore configuration: ") + e.what();
        return out;
    }
    run.host = site.host;
    run.password = a.password;
    run.env = restic_env(a);
    run.what = what;
    run.on_stdout_line = std::move(on_stdout_line);
    auto runner = env.restic(a);
    auto res = runner.run(run, cancel != nullptr ? *cancel : static_cast<ports::cancellation &>(env.ctx));
    if (!res) {
        out.error = "Cannot run restic for " + what + ": " + res.err().message;
        return out;
    }
    out.cancelled = res->cancelled;
    if (!out.cancelled && res->exit.kind != exit_kind::success) {
        std::string why = res->exit.message;
        if (why.empty()) why = "restic exited with status " + std::to_string(res->raw.exit_code);
        if (res->exit.kind == exit_kind::locked)
            why = "repository still locked after " + std::to_string(res->attempts) + " attempts: " + why;
        out.error = why;
    }
    out.outcome = std::move(res.value());
    return out;
}

ports::result<std::vector<snapshot_info>> query_snapshots(action_env &env, const datastore_attributes &a,
                                                          const repo_site &site, const std::vector<std::string> &ids,
                                                          ports::cancellation *cancel) {
    std::string text;
    auto r = run_restic(env, a, site, {"--no-lock", "--json"}, "snapshots", ids, "snapshots of " + site.describe(),
                        [&text](std::string_view line) {
                            text += line;
                            text += '\n';
                        },
                        cancel);
    if (r.cancelled) return ports::error{ports::error_kind::cancelled, "cancelled"};
    if (!r.ok()) {
        const bool missing = r.outcome && r.outcome->exit.kind == exit_kind::repo_missing;
        return ports::error{missing ? ports::error_kind::not_found : ports::error_kind::io, r.error};
    }
    try {
        return parse_snapshots_json(text);
    } catch (const std::exception &e) {
        return ports::error{ports::error_kind::io, e.what()};
    }
}

const snapshot_info *find_snapshot(const std::vector<snapshot_info> &snaps, const std::string &short_id) {
    for (const auto &s : snaps)
        if (!short_id.empty() && s.id.rfind(short_id, 0) == 0) return &s;
    return nullptr;
}

std::string run_tool(action_env &env, const std::string &host, std::vector<std::string> argv, const std::string &what,
                     std::string *stdout_text, ports::cancellation *cancel) {
    ports::command cmd;
    cmd.argv = std::move(argv);
    ports::run_options opts;
    opts.cancel = cancel != nullptr ? cancel : &env.ctx;
    opts.kill_grace = env.settings.kill_grace;
    auto r = env.runner.run(host, cmd, opts);
    if (!r) return what + ": " + r.err().message;
    if (r->cancelled) return what + ": cancelled";
    if (r->exit_code != 0)
        return what + ": " + (r->stderr_text.empty() ? "exit status " + std::to_string(r->exit_code)
                                                       : common::one_line(r->stderr_text));
    if (stdout_text != nullptr) *stdout_text = std::move(r->stdout_text);
    return {};
}

}  // namespace oneds::restic
