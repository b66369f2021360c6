#include "action_env.hpp"

#include "restic_cli.hpp"

#include <oneds_common/strings.hpp>

#include <fstream>

namespace oneds::restic {

std::map<std::string, std::string> read_shell_vars(const std::string &path) {
    std::map<std::string, std::string> vars;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        auto t = common::trim(line);
        if (t.empty() || t.front() == '#') continue;
        if (t.rfind("export ", 0) == 0) t = common::trim(t.substr(7));
        const auto eq = t.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;
        const std::string name(t.substr(0, eq));
        if (name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
            continue;
        std::string value(common::trim(t.substr(eq + 1)));
        if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
            value = value.substr(1, value.size() - 2);
        vars.emplace(name, value);  // first definition wins, as the stock loader
    }
    return vars;
}

std::map<std::string, std::string> restic_env(const datastore_attributes &a) {
    std::map<std::string, std::string> env;
    if (a.maxproc != -1) env["GOMAXPROCS"] = std::to_string(a.maxproc);
    return env;
}

std::string ensure_repository(action_env &env, const datastore_attributes &a, const std::string &repo_path) {
    const std::string url = repository_url(a, repo_path);
    auto store = env.stores.store_for(a);
    if (!store) return "Cannot reach the backup storage for " + url + ": " + store.err().message;
    auto st = (*store)->stat(repo_path + "/config");
    if (!st) return "Cannot check for repository " + url + ": " + st.err().message;
    if (st->exists) return {};

    env.log('I', "creating restic repository " + url);
    restic_call call;
    call.bin = env.settings.restic_bin;
    call.subcommand = "init";
    call.repo = url;
    call.ssh_config = env.settings.ssh_config;
    restic_run run;
    run.argv = restic_argv(call, a);
    run.password = a.password;
    run.env = restic_env(a);
    run.what = "init of " + url;
    auto runner = env.restic();
    auto res = runner.run(run, env.ctx);
    if (!res) return "Cannot run restic init for " + url + ": " + res.err().message;
    switch (res->exit.kind) {
        case exit_kind::success:
        case exit_kind::already_exists:  // another backup of this job created it meanwhile
            return {};
        case exit_kind::interrupted:
            return "cancelled";
        default:
            return "Cannot create restic repository " + url + ": " + res->exit.message;
    }
}

}  // namespace oneds::restic
