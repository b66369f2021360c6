// The remote command line: where an argv vector becomes text for the remote
// shell, with the one quoting function (common::shell_quote).
//
// Why there is a shell at all: sshd hands the command of an exec request to
// the remote user's login shell as a single string ("$SHELL -c <string>").
// No option of ssh avoids that, so the argv vector must be turned into a
// string that the shell splits back into exactly the same words. Locally
// nothing of ours runs through a shell (an admin's ProxyCommand does, as in
// ssh). The backup's folder lister is a constant script that takes its data
// as positional parameters (plugin/restic/actions/backup_folder.hpp).
//
// The rule: every word goes in single quotes, and a ' inside a word is written
// '\'' (close the quote, an escaped quote, reopen). Inside single quotes a
// POSIX shell (sh, dash, bash, ksh, zsh) gives no character a meaning: not $,
// `, \, ", newline, ;, &, |, *, ~ or a leading -. So no expansion, no
// splitting, no globbing, whatever the word holds. (csh-family login shells
// are not supported, as in the stock driver, which runs bash on every host.)
//
// The only unquoted text that remote_command_line() ever writes is the
// constant pid_report_prefix below; every byte that comes from a caller is
// inside single quotes.
//
// Never put a secret in a command line: the remote command line is visible to
// every user of the remote host (ps, /proc/<pid>/cmdline) and may be logged by
// sshd. ssh_runner refuses cmd.secret_env for remote hosts for that reason.
#pragma once

#include "common/shell_quote.hpp"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace oneds::adapters::ssh {

// 'word' with each ' written as '\''. Total: any byte sequence, the empty word
// included (it becomes ''). A NUL byte cannot be passed through a command
// line; remote_command_line() rejects it.
using common::shell_quote;

// Written first when report_pid is set: the login shell prints its own pid to
// stderr, then exec replaces the shell with the command, which so keeps that
// pid. ssh_runner reads the line back (and strips it from stderr) and signals
// that pid to cancel the remote command.
inline constexpr std::string_view pid_report_prefix = "echo ONEDS_PID=$$ >&2; exec ";
inline constexpr std::string_view pid_report_marker = "ONEDS_PID=";

// The remote command line for argv with env set for it:
//   [pid_report_prefix] ['env' 'K=V' ...] 'argv0' 'argv1' ...
// Words are separated by single spaces. env is passed through env(1) because
// ssh cannot pass environment variables (sshd's AcceptEnv is off by default).
// Throws std::invalid_argument when argv is empty, argv[0] is empty or starts
// with '-' (exec and env would take it for an option), argv[0] contains '='
// while env is not empty (env would take it for an assignment), a name in env
// is not [A-Za-z_][A-Za-z0-9_]*, or any word holds a NUL byte. The message
// names the offending variable or argument position, never a value.
std::string remote_command_line(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env,
                                bool report_pid);

// Whether name is a portable environment variable name: [A-Za-z_][A-Za-z0-9_]*.
bool is_env_name(std::string_view name) noexcept;

}  // namespace oneds::adapters::ssh
