// restic command lines, composed as the stock driver composes them
// (docs/stock-driver.md#restic-command-composition) but as argv vectors:
//
//   <bin> <caller options> [--limit-upload=N --limit-download=N]
//         [--option=sftp.connections=N] [--option=sftp.command=...]
//         [--compression=MODE] --repo=<repo> <subcommand> <args...>
//
// sftp.connections and compression apply to backup, restore and dump only and
// only when they differ from restic's defaults (5, auto), as stock.
// sftp.command is ours: it carries `-F <ssh_config>` so that restic's ssh uses
// the same client configuration as every other ssh the plugin starts.
#pragma once

#include "attributes.hpp"

#include <string>
#include <vector>

namespace oneds::restic {

struct restic_call {
    std::string bin = "restic";
    std::vector<std::string> options;      // caller options, in order (e.g. --force --json --tag=one-7)
    std::string subcommand;                // backup, init, snapshots, ...
    std::vector<std::string> args;         // after the subcommand
    std::string repo;                      // URL or path
    std::string ssh_config;                // non-empty: sftp.command with -F (SFTP backend only)
};

std::vector<std::string> restic_argv(const restic_call &call, const datastore_attributes &a);

// The value of -o sftp.command for an SFTP repository when an ssh config file
// is used: "ssh -F <cfg> -o BatchMode=yes -l <user> <server> -s sftp".
// restic splits it shell-style; paths with blanks or quotes are refused.
std::string sftp_command(const datastore_attributes &a, const std::string &ssh_config);

}  // namespace oneds::restic
