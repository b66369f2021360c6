// Running a command from a test and keeping what it printed, through files in
// a directory of the test's (for the Ceph fixture's test and the S3 adapter's).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace oneds::test {

// What a command run by run_captured did.
struct captured {
    int status = -1;  // its exit code, or 128 + the signal that ended it
    std::string out;  // its stdout
    std::string err;  // its stderr
};

// Runs argv (searched in PATH) with env added to this process's environment,
// so that secrets reach the child in its environment, never in argv. Its
// stdout and stderr go to files out.N and err.N in dir (N counts the calls),
// read back once it has exited. With input, stdin is a pipe that gets input
// and is then closed; without, stdin is /dev/null. Throws std::system_error
// when the program cannot be started.
[[nodiscard]] captured run_captured(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env,
                                    const std::filesystem::path &dir,
                                    const std::optional<std::string> &input = std::nullopt);

}  // namespace oneds::test
