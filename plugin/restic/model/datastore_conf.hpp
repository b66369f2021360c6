// datastore.conf of OpenNebula's remotes (BACKUP_BASE_PATH and friends):
// `[export] NAME="value"` lines and `#` comments, as the stock loader reads
// them (docs/stock-driver.md#the-datastore-conf-file).
#pragma once

#include <map>
#include <string>

namespace oneds::restic {

// The variables of path; the first definition of a name wins. A missing file
// gives an empty map.
std::map<std::string, std::string> read_shell_vars(const std::string &path);

}  // namespace oneds::restic
