#include "plugin/restic/cli/version_cache.hpp"

namespace oneds::restic {

std::optional<restic_version> version_cache::get(ports::process_runner &runner, const std::string &host,
                                                 const std::vector<std::string> &words, const std::stop_token &stop) {
    const auto key = std::make_pair(host, words);
    {
        std::lock_guard lock(mutex_);
        if (auto it = known_.find(key); it != known_.end()) return it->second;
    }
    ports::command cmd;
    cmd.argv = words;
    cmd.argv.push_back("version");
    ports::run_options opts;
    opts.stop = stop;
    auto r = runner.run(host, cmd, opts);
    if (!r || r->cancelled || r->exit_code == 255) return std::nullopt;  // could not ask: try again next time
    auto v = r->exit_code == 0 ? parse_version(r->stdout_text) : std::nullopt;
    std::lock_guard lock(mutex_);
    known_[key] = v;
    return v;
}

std::vector<std::string> restore_args(const std::string &snapshot, const std::string &target,
                                      const std::vector<std::string> &includes,
                                      const std::optional<restic_version> &version) {
    std::vector<std::string> args = {snapshot, "--target", target};
    for (const auto &f : includes) args.insert(args.end(), {"--include", f});
    if (version && version->at_least(0, 15)) args.push_back("--sparse");
    return args;
}

}  // namespace oneds::restic
