#include "tests/support/run_capture.hpp"

#include "common/child.hpp"
#include "common/fd_io.hpp"
#include "tests/support/files.hpp"

#include <fcntl.h>

#include <atomic>

namespace oneds::test {

namespace fs = std::filesystem;

captured run_captured(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env,
                      const fs::path &dir, const std::optional<std::string> &input) {
    static std::atomic<int> serial = 0;
    const std::string n = std::to_string(++serial);
    const fs::path out = dir / ("out." + n);
    const fs::path err = dir / ("err." + n);
    oneds::common::child_spec spec;
    spec.argv = argv;
    spec.env_set = env;
    spec.in = input ? oneds::common::child_stream::pipe() : oneds::common::child_stream::null();
    spec.out = oneds::common::child_stream::file(out.string(), O_WRONLY | O_CREAT | O_TRUNC);
    spec.err = oneds::common::child_stream::file(err.string(), O_WRONLY | O_CREAT | O_TRUNC);
    auto child = oneds::common::spawn(spec);
    if (input) {
        (void)oneds::common::write_all(child.stdin_pipe().get(), *input);  // a child that quit early reads no more
        child.stdin_pipe().reset();
    }
    captured r;
    r.status = child.wait().shell_code();
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
}

}  // namespace oneds::test
