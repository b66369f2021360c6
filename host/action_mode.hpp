// Action mode: one action per process, with the argv/stdin/stdout/exit-code
// contract of the stock remotes script it replaces, so that
// remotes/datastore/<driver>/<action> can be a wrapper that execs the host.
//
//   stdin   plain XML (backup, backup_cancel, ls) or base64 (the MAD-side
//           scripts, OpenNebula >= 6.8); both are accepted and decoded here
//   stdout  the action's result on success
//   stderr  the error text on failure; progress as "INFO: <action>: <text>"
//   exit    0 success, 1 "Operation not supported" (as the stock stubs),
//           255 any other failure (the stock scripts' exit -1)
//   SIGTERM/SIGINT/SIGHUP cancel the action (backup_cancel sends SIGTERM)
#pragma once

#include "host/config.hpp"

#include <spdlog/logger.h>

#include <memory>
#include <string>

namespace oneds::host {

int run_action(const settings &s, const std::shared_ptr<spdlog::logger> &log, int in_fd, int out_fd, int err_fd);

// stdin as the action gets it: "" when empty, the XML itself, or the decoded
// base64. Throws std::invalid_argument when it is neither XML nor base64 XML.
std::string decode_action_input(const std::string &raw);

}  // namespace oneds::host
