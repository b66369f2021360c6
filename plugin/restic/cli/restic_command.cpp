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

// For an S3 repository whose restic does not run here: the two keys arrive
// as the first two lines of stdin (the password follows, for restic), and the
// script execs its arguments with them in the environment. sh's read takes a
// pipe byte by byte, so nothing past the second line is consumed. Constant:
// no value is ever part of it.
constexpr const char *s3_keys_script =
    "IFS= read -r AWS_ACCESS_KEY_ID && IFS= read -r AWS_SECRET_ACCESS_KEY && "
    "export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY && exec \"$@\"";

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
    if (a.backend == backend_kind::s3) {
        // On every command, as stock.
        if (a.s3_path_style) argv.push_back("--option=s3.bucket-lookup=path");
        if (!a.s3_cacert.empty()) argv.push_back("--cacert=" + a.s3_cacert);
        if (a.s3_insecure_tls) argv.push_back("--insecure-tls");
    }
    if (data_command && a.compression != "auto") argv.push_back("--compression=" + a.compression);
    argv.push_back("--repo=" + c.site.repo);
    argv.push_back(c.subcommand);
    argv.insert(argv.end(), c.args.begin(), c.args.end());

    ports::command cmd;
    std::map<std::string, std::string> env;
    if (a.maxproc != -1) env["GOMAXPROCS"] = std::to_string(a.maxproc);
    env["RESTIC_PROGRESS_FPS"] = "1";
    const bool slice = c.confined && a.slice_confined();
    const bool keys_in_env = c.site.host.empty() && !slice;
    const bool s3 = a.backend == backend_kind::s3;
    if (s3) {
        env["AWS_DEFAULT_REGION"] = a.s3_region;
        env["AWS_REGION"] = a.s3_region;
        if (!keys_in_env) {
            argv.insert(argv.begin(), {"sh", "-c", s3_keys_script, "oneds-s3"});
            // Checked by parse_datastore() too; a line break would shift
            // every line after it.
            for (const auto *key : {&a.s3_access_key_id, &a.s3_secret_access_key})
                if (key->find_first_of("\r\n") != std::string::npos)
                    throw attribute_error("an S3 key contains a line break, which cannot be passed on stdin");
        }
    }
    cmd.argv = c.launcher;
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
    if (keys_in_env) {
        cmd.env["RESTIC_PASSWORD"] = a.password;
        cmd.secret_env.push_back("RESTIC_PASSWORD");
        if (s3) {
            cmd.env["AWS_ACCESS_KEY_ID"] = a.s3_access_key_id;
            cmd.env["AWS_SECRET_ACCESS_KEY"] = a.s3_secret_access_key;
            cmd.secret_env.insert(cmd.secret_env.end(), {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"});
        }
    } else {
        if (a.password.find_first_of("\r\n") != std::string::npos)
            throw attribute_error("RESTIC_PASSWORD contains a line break, which restic cannot read from a pipe");
        if (s3) cmd.stdin_data = a.s3_access_key_id + "\n" + a.s3_secret_access_key + "\n";
        cmd.stdin_data += a.password + "\n";
    }
    return cmd;
}

}  // namespace oneds::restic
