#include "restic_cli.hpp"

#include <stdexcept>

namespace oneds::restic {

std::string sftp_command(const datastore_attributes &a, const std::string &ssh_config) {
    // restic splits this string itself (not a shell); keep every word free of
    // characters its splitter treats specially.
    for (const auto *word : {&ssh_config, &a.sftp_user, &a.sftp_server})
        if (word->find_first_of(" \t\n'\"\\") != std::string::npos)
            throw attribute_error("cannot pass '" + *word +
                                  "' to restic's sftp.command: blanks, quotes and backslashes are not supported");
    return "ssh -F " + ssh_config + " -o BatchMode=yes -l " + a.sftp_user + " " + a.sftp_server + " -s sftp";
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
