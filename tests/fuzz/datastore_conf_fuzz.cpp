// datastore.conf (read_shell_vars, plugin/restic/model/datastore_conf.hpp):
// any file content gives variables named by [A-Za-z0-9_]+ whose values are
// single lines, without a crash. The content is written to a memfd and read
// back through /proc/self/fd, as the reader takes a path.
#include "plugin/restic/model/datastore_conf.hpp"

#include "tests/fuzz/fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

#include <sys/mman.h>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    static const int fd = ::memfd_create("datastore.conf", 0);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(::ftruncate(fd, 0) == 0);
    FUZZ_CHECK(::pwrite(fd, data, size, 0) == static_cast<ssize_t>(size));
    static const std::string path = "/proc/self/fd/" + std::to_string(fd);

    const auto vars = oneds::restic::read_shell_vars(path);
    for (const auto &[name, value] : vars) {
        FUZZ_CHECK(!name.empty());
        FUZZ_CHECK(name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
                   std::string::npos);
        FUZZ_CHECK(value.find('\n') == std::string::npos);
    }
    return 0;
}
