// Files and directories for the tests and their fixtures: whole-file reads and
// writes, and private temporary directories, so that every test and fixture
// does not carry its own copy.
#pragma once

#include <filesystem>
#include <string>

namespace oneds::test {

// The whole file as bytes; "" when it is missing or unreadable (fixtures read
// logs that may not have been written yet, tests /proc files of processes
// that may end meanwhile).
[[nodiscard]] std::string read_file(const std::filesystem::path &path);

// Replaces the file's contents with text; throws std::runtime_error naming the
// path when it cannot be written.
void write_file(const std::filesystem::path &path, const std::string &text);

// A new private (0700) directory "<prefix>XXXXXX" under $TMPDIR (/tmp when it
// is unset or empty), made absolute; throws std::system_error naming the
// pattern when mkdtemp fails. The caller removes it.
[[nodiscard]] std::filesystem::path make_temp_dir(const std::string &prefix);

// make_temp_dir's directory, removed with everything in it when the owner
// goes (never throws then).
class scoped_temp_dir {
public:
    explicit scoped_temp_dir(const std::string &prefix);
    ~scoped_temp_dir();
    scoped_temp_dir(const scoped_temp_dir &) = delete;
    scoped_temp_dir &operator=(const scoped_temp_dir &) = delete;
    scoped_temp_dir(scoped_temp_dir &&) = delete;
    scoped_temp_dir &operator=(scoped_temp_dir &&) = delete;

    [[nodiscard]] const std::filesystem::path &path() const noexcept { return path_; }

private:
    std::filesystem::path path_;
};

}  // namespace oneds::test
