#include "tests/support/files.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace oneds::test {

namespace fs = std::filesystem;

std::string read_file(const fs::path &path) {
    // A /proc file of a process that ends while it is read fails with ESRCH,
    // which the stream may report by throwing: that is "gone", not an error.
    try {
        std::ifstream in(path, std::ios::binary);
        std::ostringstream text;
        text << in.rdbuf();
        return text.str();
    } catch (const std::exception &) {
        return {};
    }
}

void write_file(const fs::path &path, const std::string &text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

fs::path make_temp_dir(const std::string &prefix) {
    const char *tmp_env = std::getenv("TMPDIR");
    const fs::path base = fs::absolute(tmp_env != nullptr && *tmp_env != '\0' ? tmp_env : "/tmp");
    std::string pattern = (base / (prefix + "XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr)
        throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    return pattern;
}

scoped_temp_dir::scoped_temp_dir(const std::string &prefix) : path_(make_temp_dir(prefix)) {}

scoped_temp_dir::~scoped_temp_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
}

}  // namespace oneds::test
