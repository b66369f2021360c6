#include "plugin/restic/model/datastore_conf.hpp"

#include "common/strings.hpp"

#include <fstream>

namespace oneds::restic {

std::map<std::string, std::string> read_shell_vars(const std::string &path) {
    std::map<std::string, std::string> vars;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        auto t = common::trim(line);
        if (t.empty() || t.front() == '#') continue;
        if (t.rfind("export ", 0) == 0) t = common::trim(t.substr(7));
        const auto eq = t.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;
        const std::string name(t.substr(0, eq));
        if (name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
            std::string::npos)
            continue;
        std::string value(common::trim(t.substr(eq + 1)));
        if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
            value = value.substr(1, value.size() - 2);
        vars.emplace(name, value);  // first definition wins, as the stock loader
    }
    return vars;
}

}  // namespace oneds::restic
