#include "restic_cli.hpp"

#include "names.hpp"

#include <oneds_common/strings.hpp>

#include <stdexcept>

namespace oneds::restic {

std::string sftp_command(const datastore_attributes &a, const std::string &ssh_config) {
    // restic splits this string itself (not a shell) on every Unicode white
    // space character and handles quotes and backslashes: every word must be
    // one harmless word by construction. parse_datastore() has checked the
    // user and the server already; this is the last line of defence, and the
    // one check of the config path (a setting, not an attribute).
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

std::vector<std::string> restic_argv(const restic_call &call, const datastore_attributes &a) {
    std::vector<std::string> argv{call.bin};
    argv.insert(argv.end(), call.options.begin(), call.options.end());
    if (a.bwlimit) {
        argv.push_back("--limit-upload=" + std::to_string(*a.bwlimit));
        argv.push_back("--limit-download=" + std::to_string(*a.bwlimit));
    }
    const bool data_command = call.subcommand == "backup" || call.subcommand == "restore" || call.subcommand == "dump";
    if (a.backend == backend_kind::sftp) {
        if (data_command && a.connections != 5)
            argv.push_back("--option=sftp.connections=" + std::to_string(a.connections));
        if (!call.ssh_config.empty()) argv.push_back("--option=sftp.command=" + sftp_command(a, call.ssh_config));
    }
    if (data_command && a.compression != "auto") argv.push_back("--compression=" + a.compression);
    argv.push_back("--repo=" + call.repo);
    argv.push_back(call.subcommand);
    argv.insert(argv.end(), call.args.begin(), call.args.end());
    return argv;
}

}  // namespace oneds::restic
