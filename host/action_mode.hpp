// Action mode: one action per process, with the argv/stdin/stdout/exit-code
// contract of the stock remotes script it replaces, so that
// remotes/datastore/<driver>/<action> can be a wrapper that execs the host.
//
//   stdin   plain XML (backup, backup_cancel, ls) or base64 (the MAD-side
//           scripts, OpenNebula >= 6.8); both are accepted and decoded here
//   stdout  the action's result on success
//   stderr  the error text on failure (lines without a level prefix, which
//           OpenNebula's driver turns into the error message); progress as
//           "<LEVEL>: <object id> <text>" when the plugin names the object the
//           request is about (the VM of backup and backup_cancel; OpenNebula
//           puts the line in that VM's log), else "<LEVEL>: <action>: <text>",
//           LEVEL being ERROR, WARN, INFO or DEBUG (the words OpenNebula
//           parses) and lines below log_level left out
//   exit    0 success, 1 "Operation not supported" (as the stock stubs),
//           255 any other failure (the stock scripts' exit -1)
//   SIGTERM/SIGINT/SIGHUP cancel the action (backup_cancel sends SIGTERM)
#pragma once

#include "host/config.hpp"

#include <spdlog/logger.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace oneds::host {

int run_action(const settings &s, const std::shared_ptr<spdlog::logger> &log, int in_fd, int out_fd, int err_fd);

// Doctor mode (docs/doctor.md): the plugin's "doctor" action for a datastore
// id (read from oned by the plugin) or a template file (read here into a
// DATASTORE document, host/template_file.hpp). The plugin's table goes to
// stdout. Exit 0 when no check failed, 1 when one did, 2 for anything else
// (bad arguments, a bad template file, no plugin).
int run_doctor(const settings &s, const std::shared_ptr<spdlog::logger> &log, int out_fd, int err_fd);

// stdin as the action gets it: "" when empty, the XML itself, or the decoded
// base64. Throws std::invalid_argument when it is neither XML nor base64 XML,
// or has a document type declaration (doctype_problem, driver_router.hpp).
std::string decode_action_input(const std::string &raw);

// The most bytes of stdin action mode reads (32 MiB); more is refused.
inline constexpr std::size_t k_max_action_input = std::size_t{32} << 20;

// ERROR, WARN, INFO or DEBUG for an ONEDS_LOG_* level.
const char *action_level_word(std::int32_t level) noexcept;
// Whether a plugin's line of this level passes log_level (trace ... off).
bool level_enabled(std::int32_t level, const std::string &log_level) noexcept;
// One progress line for stderr, newline included; object_id -1 for none.
std::string action_log_line(std::int32_t level, std::int64_t object_id, const std::string &action,
                            std::string_view text);

}  // namespace oneds::host
