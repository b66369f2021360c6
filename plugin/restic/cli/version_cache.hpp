// restic's version, detected once per binary (per host and path) and kept for
// the plugin instance's lifetime. `restic version` needs no repository and no
// password, so it costs a process start, not a key derivation.
//
// What the version drives (docs/restic.md#version-differences-the-code-switches-on): restores used to pull
// files add --sparse from 0.15 (holes for runs of zeros: VM images are mostly
// zeros). Exit classification does not need it: codes 10/11/12 only exist from
// 0.17 and the message text is matched on every version.
#pragma once

#include "plugin/restic/cli/restic_output.hpp"

#include "plugin/ports/process.hpp"

#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

namespace oneds::restic {

class version_cache {
public:
    // The version of bin on host ("" = here); nullopt when it cannot be told
    // (then callers use what every version from 0.14 accepts). Not cached on
    // a failure to run, so a host that was down is asked again.
    std::optional<restic_version> get(ports::process_runner &runner, const std::string &host, const std::string &bin,
                                      const std::stop_token &stop) {
        return get(runner, host, std::vector<std::string>{bin}, stop);
    }
    // The same for the words that start restic there (restic_words()).
    std::optional<restic_version> get(ports::process_runner &runner, const std::string &host,
                                      const std::vector<std::string> &words, const std::stop_token &stop);

private:
    std::mutex mutex_;
    std::map<std::pair<std::string, std::vector<std::string>>, std::optional<restic_version>> known_;
};

// `restore <snapshot> --target <target> [--include <f>]... [--sparse]`
std::vector<std::string> restore_args(const std::string &snapshot, const std::string &target,
                                      const std::vector<std::string> &includes,
                                      const std::optional<restic_version> &version);

}  // namespace oneds::restic
