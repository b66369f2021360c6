#include "plugin/restic/actions/action_env.hpp"

#include "common/strings.hpp"

namespace oneds::restic {

std::string action_env::host_problem(const std::string &what, const std::string &host) const {
    auto problem = host_name_problem(host, is_ssh_alias);
    if (problem.empty()) return {};
    return what + " " + problem + ", got '" + common::printable(host) + "'";
}

}  // namespace oneds::restic
