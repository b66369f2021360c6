// A private temporary directory for one test, removed with everything in it
// when the test ends.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <system_error>

namespace oneds::test {

class scratch_dir {
public:
    scratch_dir() {
        std::string templ = (std::filesystem::temp_directory_path() / "oneds-it-XXXXXX").string();
        if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = templ;
    }
    ~scratch_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    scratch_dir(const scratch_dir &) = delete;
    scratch_dir &operator=(const scratch_dir &) = delete;

    const std::filesystem::path &path() const noexcept { return path_; }
    std::string file(const std::string &name) const { return (path_ / name).string(); }

    // Writes content to name (replacing it) and returns its path.
    std::string write(const std::string &name, const std::string &content) const {
        const auto p = file(name);
        std::ofstream(p, std::ios::trunc) << content;
        return p;
    }
    // The whole file, or "" when it does not exist.
    std::string read(const std::string &name) const {
        std::ifstream in(file(name));
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }

private:
    std::filesystem::path path_;
};

}  // namespace oneds::test
