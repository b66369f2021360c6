// What a value that reaches a command line as a word of its own may look like.
//
// Datastore attributes and action arguments end up as words of argv vectors:
// a host name after `ssh`, a user after `-l`, a server inside restic's
// `sftp.command` (which restic splits on every character Go's unicode.IsSpace
// knows, not only ASCII blanks), a directory before `/vm.xml`. A value that
// starts with `-` or holds a separator would turn into options of those
// programs (`-oProxyCommand=...` runs a command). So every such value is
// checked against what it is (a whitelist), never against a list of bad
// characters: anything outside the grammar is refused, and nothing is started.
//
// Each check returns "" for an acceptable value, else what is wrong with it, in
// words that fit after "<ATTRIBUTE> ": "must be ...".
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace oneds::restic {

// A host name as ssh and restic are given it:
// * a DNS name: labels of ASCII letters, digits, '-' and '_' (1-63 characters,
//   not starting or ending with '-'), separated by single dots, at most 253
//   characters in all (a trailing dot is allowed);
// * an IPv4 literal (four decimal numbers 0-255);
// * a bracketed IPv6 literal ("[2001:db8::1]", "[::ffff:10.0.0.1]").
// is_alias, when given, is asked about a value outside that grammar that is
// still one harmless word of ASCII letters, digits, '.', '_', '-' and '+'
// (not starting with '-'): an alias defined in the ssh client configuration.
// Nothing a shell would read is let through, as ssh hands the name to one in
// `Match exec` and ProxyCommand (%h, %n).
// Whether s is a decimal number of 1 to 10 digits (an id or a pid that fits
// the 32 bits oned and the kernel use), nothing else.
bool is_decimal_id(std::string_view s) noexcept;

std::string host_name_problem(std::string_view host, const std::function<bool(std::string_view)> &is_alias = {});

// A portable user name (POSIX): an ASCII letter or '_' followed by up to 31
// letters, digits, '_', '.' or '-'.
std::string user_name_problem(std::string_view user);

// Whether path has a "." or ".." component: a VM folder oned names never
// has one, and "<dir>/../8" would name another VM's folder.
bool has_dot_segment(std::string_view path) noexcept;

// An absolute path without control characters (newline, escape, DEL, C1
// controls ...) and without a NUL byte; blanks and other printable characters
// are fine (argv vectors carry them as they are).
std::string absolute_path_problem(std::string_view path);

// A word that restic's sftp.command splitter keeps whole: printable ASCII
// without blanks, quotes or backslashes, not starting with '-'.
std::string split_safe_word_problem(std::string_view word);

// "<host>:<dir>" as the drivers pass it (the host may be a bracketed IPv6
// literal, which holds ':'); false when there is no host or no ':'.
bool split_host_dir(std::string_view arg, std::string &host, std::string &dir);

// host without the brackets of an IPv6 literal: what ssh and getaddrinfo take.
std::string bare_host(std::string_view host);
bool is_ipv6_literal(std::string_view host);

}  // namespace oneds::restic
