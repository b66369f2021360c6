#define BOOST_TEST_MODULE restic_backup_folder
// The backup's folder lister (plugin/restic/actions/backup_folder.hpp) run
// by the real shells it meets: its constant script under each installed
// POSIX shell, and the whole remote line (the login shell runs the quoted
// line, which starts the script with sh) in a folder whose name a shell would
// expand or split if it ever parsed it.
#include "plugin/restic/actions/backup_folder.hpp"
#include "plugin/restic/cli/restic_command.hpp"

#include "adapters/ssh/shell_quote.hpp"
#include "tests/adapters/ssh/hostile_words.hpp"
#include "tests/support/sshd_fixture.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace bdata = boost::unit_test::data;
namespace fs = std::filesystem;
using namespace oneds;
using namespace oneds::restic;

namespace {

struct temp_root {
    fs::path path;
    temp_root() {
        std::string pattern = (fs::temp_directory_path() / "oneds-lister-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp " + pattern);
        path = pattern;
    }
    ~temp_root() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

// The shells the script may run under (its own `sh`, and the login shell
// for the line around it); those installed here.
std::vector<std::string> shells() {
    std::vector<std::string> out;
    for (const char *sh : {"/bin/sh", "/bin/dash", "/bin/bash", "/bin/ksh", "/bin/mksh"})
        if (fs::exists(sh)) out.emplace_back(sh);
    return out;
}

// The lister for dir under shell, running `printf '%s\0' first ...` in
// restic's place: the words it was given come back NUL-separated after the
// report lines.
std::vector<std::string> lister_argv(const std::string &shell, const fs::path &dir) {
    auto argv = remote_lister(dir.string());
    argv.front() = shell;
    argv.insert(argv.end(), {"printf", "%s\\0", "first"});
    return argv;
}

struct run_output {
    int status = -1;
    lister_report report;
    std::vector<std::string> words;  // what "restic" got
};

run_output run_lister(const std::vector<std::string> &argv) {
    run_output r;
    std::string out;
    std::string err;
    r.status = test::run_argv(argv, &out, &err);
    BOOST_TEST(err.empty(), err);
    std::size_t start = 0;
    for (auto nl = out.find('\n'); nl != std::string::npos && out.compare(start, 6, "ONEDS_") == 0;
         nl = out.find('\n', start)) {
        BOOST_TEST(r.report.take(std::string_view(out).substr(start, nl - start)));
        start = nl + 1;
    }
    r.words = test::split_nul(out.substr(start));
    return r;
}

fs::path hostile_folder(const fs::path &root) {
    const auto dir = root / "it's a $HOME `id` * [x] \"dir\"";
    fs::create_directories(dir);
    for (const char *name : {"disk.0.0", "disk.1.0", "disk.$(id)", "disk.", "disk", "Disk.2", "xdisk.3", "vm.xml"})
        std::ofstream(dir / name).close();
    fs::create_directory(dir / "disk.sub");
    return dir;
}

std::vector<std::string> expected_disks(const fs::path &dir) {
    std::vector<std::string> out;
    for (const char *name : {"disk.", "disk.$(id)", "disk.0.0", "disk.1.0", "disk.sub"})
        out.push_back((dir / name).string());
    return out;
}

}  // namespace

// Every disk.* entry (files and folders alike, as the stock glob), in the
// same order in the report and on the command line, then vm.xml.
BOOST_DATA_TEST_CASE(the_script_names_exactly_the_matching_files_of_a_hostile_folder, bdata::make(shells()), shell) {
    const temp_root root;
    const auto dir = hostile_folder(root.path);
    const auto r = run_lister(lister_argv(shell, dir));
    BOOST_TEST_REQUIRE(r.status == 0);
    BOOST_TEST(r.report.files().missing.empty());
    BOOST_TEST(r.report.files().disks == expected_disks(dir), boost::test_tools::per_element());
    std::vector<std::string> words{"first"};
    words.insert(words.end(), r.report.files().disks.begin(), r.report.files().disks.end());
    words.push_back((dir / "vm.xml").string());
    BOOST_TEST(r.words == words, boost::test_tools::per_element());
}

// The same through the remote line as sshd runs it: the login shell (each
// shell in turn) parses the quoted line, which starts the script under sh.
BOOST_DATA_TEST_CASE(the_quoted_remote_line_reaches_the_script_intact, bdata::make(shells()), shell) {
    const temp_root root;
    const auto dir = hostile_folder(root.path);
    const auto line = adapters::ssh::remote_command_line(lister_argv("sh", dir), {{"X", "it's"}}, false);
    const auto r = run_lister({shell, "-c", line});
    BOOST_TEST_REQUIRE(r.status == 0);
    BOOST_TEST(r.report.files().disks == expected_disks(dir), boost::test_tools::per_element());
    BOOST_TEST(r.words.size() == expected_disks(dir).size() + 2);
}

// Nothing runs without a disk or without vm.xml; the report says which.
BOOST_DATA_TEST_CASE(an_incomplete_folder_runs_nothing, bdata::make(shells()), shell) {
    const temp_root root;
    const auto dir = root.path / "empty 'dir'";
    fs::create_directories(dir);
    std::ofstream(dir / "vm.xml").close();
    std::ofstream(dir / "Disk.0.0").close();
    auto r = run_lister(lister_argv(shell, dir));
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.report.files().missing == (dir / "disk.*").string());
    BOOST_TEST(r.words.empty());

    fs::remove(dir / "vm.xml");
    std::ofstream(dir / "disk.0.0").close();
    r = run_lister(lister_argv(shell, dir));
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.report.files().missing == (dir / "vm.xml").string());
    BOOST_TEST(r.words.empty());

    // A folder that is not there (postbackup ran early) names no disk.
    r = run_lister(lister_argv(shell, root.path / "gone"));
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.report.files().missing == (root.path / "gone" / "disk.*").string());
}

// The local listing names the same files, in byte order.
BOOST_AUTO_TEST_CASE(the_local_listing_agrees_with_the_script) {
    const temp_root root;
    const auto dir = hostile_folder(root.path);
    const auto files = list_backup_folder(dir.string());
    BOOST_TEST(files.error.empty());
    BOOST_TEST(files.missing.empty());
    BOOST_TEST(files.disks == expected_disks(dir), boost::test_tools::per_element());
    fs::remove(dir / "vm.xml");
    BOOST_TEST(list_backup_folder(dir.string()).missing == (dir / "vm.xml").string());
    BOOST_TEST(list_backup_folder((root.path / "gone").string()).missing == (root.path / "gone/disk.*").string());
}

// The picker of the restic to run on another host (restic_words in
// cli/restic_command.hpp) under each shell: OpenNebula's copy when it is an
// executable file, else restic from PATH (said on stderr), else nothing (said
// on stderr, exit 127). A stand-in restic prints the words it got.
namespace {

struct picked {
    int status = -1;
    std::string err;
    std::vector<std::string> words;
};

picked run_picker(const std::string &shell, const fs::path &ours, const fs::path &path_dir) {
    repo_site site;
    site.host = "node1";
    site.restic_bin = ours.string();
    site.path_fallback = true;
    auto words = restic_words(site);
    BOOST_TEST_REQUIRE(words.size() == 5U);
    words.front() = shell;
    words.insert(words.begin(), {"/usr/bin/env", "PATH=" + path_dir.string()});
    words.insert(words.end(), {"--json", "it's a $HOME"});
    picked p;
    std::string out;
    p.status = test::run_argv(words, &out, &p.err);
    p.words = test::split_nul(out);
    return p;
}

void make_stand_in(const fs::path &file) {
    fs::create_directories(file.parent_path());
    std::ofstream(file) << "#!/bin/sh\nprintf '%s\\0' \"$0\" \"$@\"\n";
    fs::permissions(file, fs::perms::owner_all);
}

}  // namespace

BOOST_DATA_TEST_CASE(the_picker_runs_opennebula_restic_else_path_restic_else_says_none, bdata::make(shells()), shell) {
    const temp_root root;
    const fs::path ours = root.path / "var 'tmp' $one" / "restic";
    const fs::path path_dir = root.path / "bin";
    fs::create_directories(path_dir);

    // Neither: nothing runs, the marker names OpenNebula's copy.
    auto p = run_picker(shell, ours, path_dir);
    BOOST_TEST(p.status == 127);
    BOOST_TEST(p.err == "ONEDS_RESTIC_MISSING=" + ours.string() + "\n");
    BOOST_TEST(p.words.empty());

    // Only on PATH: that one, said on stderr.
    make_stand_in(path_dir / "restic");
    p = run_picker(shell, ours, path_dir);
    BOOST_TEST(p.status == 0);
    BOOST_TEST(p.err == "ONEDS_RESTIC_FROM_PATH=" + (path_dir / "restic").string() + "\n");
    const std::vector<std::string> from_path{(path_dir / "restic").string(), "--json", "it's a $HOME"};
    BOOST_TEST(p.words == from_path, boost::test_tools::per_element());

    // OpenNebula's copy, not executable or a directory: still PATH.
    fs::create_directories(ours);
    p = run_picker(shell, ours, path_dir);
    BOOST_TEST(p.err.starts_with("ONEDS_RESTIC_FROM_PATH="), p.err);
    fs::remove(ours);

    // OpenNebula's copy: it runs, silently.
    make_stand_in(ours);
    p = run_picker(shell, ours, path_dir);
    BOOST_TEST(p.status == 0);
    BOOST_TEST(p.err.empty(), p.err);
    const std::vector<std::string> from_ours{ours.string(), "--json", "it's a $HOME"};
    BOOST_TEST(p.words == from_ours, boost::test_tools::per_element());
}
