// MAD mode's own log and niceness, following OpenNebula's conventions for its
// drivers (madcommon.sh, sourced by every stock MAD launcher such as
// one_datastore):
//   - log file: /var/log/one/<name>.log, or $ONE_LOCATION/var/<name>.log on a
//     self-contained install, <name> being the program's file name up to its
//     first '.' (one_ds_host.log);
//   - ONE_MAD_DEBUG set and not empty: debug level;
//   - PRIORITY from defaultrc ($ONE_LOCATION/etc/defaultrc, else
//     /etc/one/defaultrc): the launcher runs the driver under `nice -n
//     $PRIORITY`, i.e. PRIORITY is added to the current niceness.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace oneds::host {

// Where OpenNebula would put the log of a MAD started as argv0.
std::string default_mad_log_file(std::string_view argv0);

// $ONE_LOCATION/etc/defaultrc, else /etc/one/defaultrc.
std::string default_defaultrc();

// True when ONE_MAD_DEBUG is set to a non-empty value (madcommon.sh's -n
// test) by defaultrc, or, when defaultrc does not assign it, by the
// environment (the launcher sources defaultrc over its environment).
bool one_mad_debug(const std::string &defaultrc);

// NAME as defaultrc sets it: the last "NAME=..." (or "export NAME=...")
// assignment, a trailing comment and one pair of quotes removed. nullopt when
// the file cannot be read or does not assign NAME.
std::optional<std::string> read_defaultrc(const std::string &path, const std::string &name);

// PRIORITY as defaultrc sets it (read_defaultrc); a value that is not a whole
// number comes back as it is (apply_priority() refuses it).
std::optional<std::string> read_defaultrc_priority(const std::string &path);

// What apply_priority() did, for the log.
struct priority_outcome {
    bool changed = false;
    int niceness = 0;     // the niceness now
    std::string warning;  // non-empty: the value was refused or could not be applied
};

// Adds value (a whole number, as `nice -n` takes it) to this process's
// niceness, clamped to -20..19. Must run before any thread starts: on Linux
// the niceness is per thread, and threads created later inherit it.
priority_outcome apply_priority(const std::string &value);

}  // namespace oneds::host
