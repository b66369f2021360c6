#define BOOST_TEST_MODULE restic_bad_input_passwords
// Passwords that look hostile but are valid (docs/bad-input.md): quotes, '$',
// backticks, backslashes, blanks and Unicode. Each must work end to end: a
// real backup (restic on the "hypervisor" through the real sshd for SFTP,
// restic here for LOCAL) and a download of the disk back, compared with the
// original; the repository opens with exactly that password (after stock's
// stripping of one pair of surrounding quotes) and with no other.
#include "tests/restic/restic_fixture.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <regex>

using namespace oneds::test;
namespace fs = std::filesystem;
namespace bdata = boost::unit_test::data;

namespace {

struct password_case {
    std::string name, password, effective;  // effective: what restic gets
};
std::ostream &operator<<(std::ostream &o, const password_case &c) { return o << c.name; }

const std::vector<password_case> k_passwords = {
    {"double quote", "a\"b\"", "a\"b\""},
    {"single quote", "it's o'clock", "it's o'clock"},
    {"dollar", "$HOME$(id)${PATH}$", "$HOME$(id)${PATH}$"},
    {"backticks", "`id`;`touch /tmp/x`", "`id`;`touch /tmp/x`"},
    {"backslashes", "a\\b\\\\c\\", "a\\b\\\\c\\"},
    {"blanks", " lead and trail ", " lead and trail "},
    {"unicode", "p\xc3\xa4ssw\xc3\xb6rd-\xe5\xaf\x86\xe7\xa0\x81-\xf0\x9f\x94\x91", ""},
    {"one pair of quotes (stripped, as stock)", "'quoted'", "quoted"},
};

std::string describe(const process_result &r) {
    return "exit " + std::to_string(r.exit_code) + "\n--- stderr ---\n" + r.err;
}

// restic itself, with the password in its environment.
process_result restic_with(const std::string &repo, const std::string &password, const std::vector<std::string> &args) {
    std::vector<std::string> argv = {tool("restic"), "--no-cache", "--repo", repo};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, {}, {{"RESTIC_PASSWORD", password}}, std::chrono::seconds(60));
}

}  // namespace

BOOST_DATA_TEST_CASE(a_backup_and_a_download_work_with_the_password, bdata::make(k_passwords), c) {
    const std::string effective = c.effective.empty() ? c.password : c.effective;
    for (const bool local : {false, true}) {
        BOOST_TEST_CONTEXT((local ? "LOCAL" : "SFTP")) {
            restic_fixture f;
            f.make_vm(7, {{0, 8, 1}});
            std::map<std::string, std::optional<std::string>> t = {{"RESTIC_PASSWORD", c.password}};
            if (local) t.insert({{"RESTIC_BACKEND", "LOCAL"}, {"RESTIC_SFTP_SERVER", std::nullopt}});
            const auto doc = f.document(t, "<VM><ID>7</ID></VM>");
            const auto b = f.host_action(
                "backup", {(local ? "localhost:" : "hypervisor:") + f.vm_dir(7), "0", "one-7", "-", "7", "0"}, doc);
            BOOST_TEST_REQUIRE(b.exit_code == 0, describe(b));
            BOOST_TEST_REQUIRE(std::regex_match(b.out, std::regex("[0-9a-f]{8} [0-9]+ raw\n")), b.out);
            const std::string snap = b.out.substr(0, 8);
            const std::string repo = f.base_path() + "/7";

            // The repository opens with exactly the effective password.
            BOOST_TEST(restic_with(repo, effective, {"cat", "config"}).exit_code == 0);
            BOOST_TEST(restic_with(repo, effective + "x", {"cat", "config"}).exit_code != 0);

            const std::string url = "restic://100//0:" + snap + f.backup_dir(7) + "/disk.0.0";
            const auto d = f.host_action("downloader", {"--stdout", url}, doc);
            BOOST_TEST_REQUIRE(d.exit_code == 0, describe(d));
            const std::string got = f.dir().file("downloaded.qcow2");
            std::ofstream(got, std::ios::binary) << d.out;
            const auto cmp = run_process({tool("qemu-img"), "compare", "-q", f.backup_dir(7) + "/disk.0.0", got});
            BOOST_TEST(cmp.exit_code == 0, "downloaded disk differs: " << cmp.out << cmp.err);
            // Never in an error text or a progress line.
            BOOST_TEST(b.err.find(c.password) == std::string::npos);
            BOOST_TEST(d.err.find(c.password) == std::string::npos);
        }
    }
}
