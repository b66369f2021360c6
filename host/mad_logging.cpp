#include "host/mad_logging.hpp"

#include "common/strings.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <sys/resource.h>

namespace oneds::host {
namespace {

std::string one_location() {
    const char *loc = std::getenv("ONE_LOCATION");
    return loc != nullptr ? std::string(loc) : std::string();
}

}  // namespace

std::string default_mad_log_file(std::string_view argv0) {
    // madcommon.sh: LOG_FILE=`basename $0 | cut -d. -f1`.
    std::string name(argv0.substr(argv0.find_last_of('/') == std::string_view::npos ? 0 : argv0.find_last_of('/') + 1));
    name = name.substr(0, name.find('.'));
    if (name.empty()) name = "one_ds_host";
    const auto loc = one_location();
    return loc.empty() ? "/var/log/one/" + name + ".log" : loc + "/var/" + name + ".log";
}

std::string default_defaultrc() {
    const auto loc = one_location();
    return loc.empty() ? "/etc/one/defaultrc" : loc + "/etc/defaultrc";
}

bool one_mad_debug(const std::string &defaultrc) {
    // madcommon.sh sources defaultrc over the environment: the file wins.
    if (const auto v = read_defaultrc(defaultrc, "ONE_MAD_DEBUG")) return !v->empty();
    const char *v = std::getenv("ONE_MAD_DEBUG");
    return v != nullptr && *v != '\0';
}

std::optional<std::string> read_defaultrc(const std::string &path, const std::string &name) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::optional<std::string> value;
    const std::string assign = name + "=";
    for (std::string line; std::getline(in, line);) {
        auto t = common::trim(line);
        if (t.rfind("export", 0) == 0 && t.size() > 6 && (t[6] == ' ' || t[6] == '\t')) t = common::trim(t.substr(7));
        if (t.rfind(assign, 0) != 0) continue;
        auto v = std::string(t.substr(assign.size()));
        // A comment after blanks, as the shell that sources defaultrc reads it.
        for (std::size_t i = 1; i < v.size(); ++i)
            if (v[i] == '#' && (v[i - 1] == ' ' || v[i - 1] == '\t')) {
                v.resize(i);
                break;
            }
        v = std::string(common::trim(v));
        if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front())
            v = v.substr(1, v.size() - 2);
        value = v;
    }
    return value;
}

std::optional<std::string> read_defaultrc_priority(const std::string &path) { return read_defaultrc(path, "PRIORITY"); }

priority_outcome apply_priority(const std::string &value) {
    priority_outcome out;
    errno = 0;
    const int current = ::getpriority(PRIO_PROCESS, 0);
    out.niceness = errno == 0 ? current : 0;
    int increment = 0;
    const auto *first = value.data();
    const auto *last = value.data() + value.size();
    if (!value.empty() && value.front() == '+') ++first;
    const auto [end, ec] = std::from_chars(first, last, increment);
    if (value.empty() || ec != std::errc() || end != last) {
        out.warning = "PRIORITY '" + common::printable(value) + "' is not a whole number; niceness left at " +
                      std::to_string(out.niceness);
        return out;
    }
    const int wanted = std::clamp(out.niceness + std::clamp(increment, -40, 40), -20, 19);
    if (wanted == out.niceness) return out;
    if (::setpriority(PRIO_PROCESS, 0, wanted) != 0) {
        out.warning = "cannot set niceness " + std::to_string(wanted) + " (PRIORITY " + value +
                      "): " + std::strerror(errno) + "; niceness left at " + std::to_string(out.niceness);
        return out;
    }
    out.changed = true;
    out.niceness = wanted;
    return out;
}

}  // namespace oneds::host
