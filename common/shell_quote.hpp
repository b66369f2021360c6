// THE quoting function for the few places where a POSIX shell reads a word we
// built: ssh's remote command line (the remote sshd hands it to the user's
// login shell) and the `command=` lines downloader.sh evaluates. Each word is
// put in single quotes and every ' is written as '\''; nothing inside single
// quotes is special to a POSIX shell, so any byte string but NUL survives.
// Tested against a real shell with hostile words (tests/adapters/ssh).
#pragma once

#include <string>
#include <string_view>

namespace oneds::common {

std::string shell_quote(std::string_view word);

}  // namespace oneds::common
