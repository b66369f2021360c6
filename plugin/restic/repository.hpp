// A repository made when the first backup needs it: its config probed
// through the storage port (no restic start), `restic init` on the front end,
// serialised per repository with an flock (two inits at once corrupt it).
#pragma once

#include "plugin/restic/actions/action_env.hpp"

#include <string>

namespace oneds::restic {

// Creates the repository at repo_path when its config file is missing.
// Fails with kind cancelled when the request is, else with what went wrong.
ports::status ensure_repository(action_env &env, const datastore_attributes &a, const std::string &repo_path);

}  // namespace oneds::restic
