#include "plugin/restic/cli/restic_command.hpp"

#include "plugin/restic/model/names.hpp"

#include "common/strings.hpp"

#include <map>

namespace oneds::restic {

std::string sftp_command(const datastore_attributes &a, const std::string &ssh_config) {
    // parse_datastore() has checked the user and the server already; this is
    // the last line of defence, and the one check of the config path (a
    // setting, not an attribute).
    const std::string server = bare_host(a.sftp_server);
    const struct {
        const char *what;
        const std::string *word;
    } words[] = {{"ssh_config", &ssh_config}, {"RESTIC_SFTP_USER", &a.sftp_user}, {"RESTIC_SFTP_SERVER", &server}};
    for (const auto &[what, word] : words)
        if (auto problem = split_safe_word_problem(*word); !problem.empty())
            throw attribute_error(std::string("cannot pass ") + what + " '" + common::printable(*word) +
                                  "' to restic's sftp.command: it " + problem);
    return "ssh -F " + ssh_config + " -o BatchMode=yes -l " + a.sftp_user + " " + server + " -s sftp";
}

namespace {

// $1 is OpenNebula's copy, the rest restic's arguments. No single quote, so
// the quoted remote line stays readable.
constexpr const char *picker_script =
    "b=$1; shift; "
    "if [ -f \"$b\" ] && [ -x \"$b\" ]; then exec \"$b\" \"$@\"; fi; "
    "p=$(command -v restic) || { printf \"ONEDS_RESTIC_MISSING=%s\\n\" \"$b\" >&2; exit 127; }; "
    "printf \"ONEDS_RESTIC_FROM_PATH=%s\\n\" \"$p\" >&2; "
    "exec \"$p\" \"$@\"";

}  // namespace

std::vector<std::string> restic_words(const repo_site &site) {
    if (!site.path_fallback) return {site.restic_bin};
    return {"sh", "-c", picker_script, "oneds-restic", site.restic_bin};
}

ports::command process_command(const restic_command &c, const datastore_attributes &a) {
    std::vector<std::string> argv = restic_words(c.site);
    argv.insert(argv.end(), c.options.begin(), c.options.end());
    if (a.bwlimit) {
        argv.push_back("--limit-upload=" + std::to_string(*a.bwlimit));
        argv.push_back("--limit-download=" + std::to_string(*a.bwlimit));
    }
    const bool data_command = c.subcommand == "backup" || c.subcommand == "restore" || c.subcommand == "dump";
    if (a.backend == backend_kind::sftp) {
        if (data_command && a.connections != 5)
            argv.push_back("--option=sftp.connections=" + std::to_string(a.connections));
        // Only when restic itself speaks SFTP (an sftp: URL), not for the
        // repository's local path on the backup server.
        if (!c.site.ssh_config.empty() && c.site.repo.starts_with("sftp:"))
            argv.push_back("--option=sftp.command=" + sftp_command(a, c.site.ssh_config));
    }
    if (data_command && a.compression != "auto") argv.push_back("--compression=" + a.compression);
    argv.push_back("--repo=" + c.site.repo);
    argv.push_back(c.subcommand);
    argv.insert(argv.end(), c.args.begin(), c.args.end());

    ports::command cmd;
    std::map<std::string, std::string> env;
    if (a.maxproc != -1) env["GOMAXPROCS"] = std::to_string(a.maxproc);
    env["RESTIC_PROGRESS_FPS"] = "1";
    cmd.argv = c.launcher;
    const bool slice = c.confined && a.slice_confined();
    if (slice) {
        // The unit gets the environment as --setenv (nothing secret in it)
        // and the password on stdin, wherever it runs.
        auto words = slice_launcher(a, c.systemd, c.confine_path, env);
        cmd.argv.insert(cmd.argv.end(), words.begin(), words.end());
    } else {
        // Confined as stock confines it: nice and ionice exec restic, which
        // so keeps the pid a cancel signals.
        if (c.confined) argv = confined_argv(a, std::move(argv));
        cmd.env = std::move(env);
    }
    cmd.argv.insert(cmd.argv.end(), argv.begin(), argv.end());
    if (c.site.host.empty() && !slice) {
        cmd.env["RESTIC_PASSWORD"] = a.password;
        cmd.secret_env.push_back("RESTIC_PASSWORD");
    } else {
        if (a.password.find_first_of("\r\n") != std::string::npos)
            throw attribute_error("RESTIC_PASSWORD contains a line break, which restic cannot read from a pipe");
        cmd.stdin_data = a.password + "\n";
    }
    return cmd;
}

}  // namespace oneds::restic
