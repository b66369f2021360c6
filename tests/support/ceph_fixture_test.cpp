#define BOOST_TEST_MODULE ceph_fixture_test
#include <boost/test/unit_test.hpp>

#include "common/proc.hpp"
#include "tests/support/ceph_fixture.hpp"
#include "tests/support/files.hpp"
#include "tests/support/run_capture.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using oneds::test::ceph_fixture;

namespace {

using result = oneds::test::captured;

// A scratch directory of this test, outside the fixture's.
const fs::path &scratch() {
    static const oneds::test::scoped_temp_dir dir("oneds-ceph-test-");
    return dir.path();
}

// argv with env added to this process's environment; the secrets stay in the
// child's environment. Output goes through files in the scratch directory (the
// tools used here never print the keys).
result run(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env) {
    return oneds::test::run_captured(argv, env, scratch());
}

std::map<std::string, std::string> restic_env(const ceph_fixture &ceph, const std::string &secret) {
    return {{"AWS_ACCESS_KEY_ID", ceph.access_key()},
            {"AWS_SECRET_ACCESS_KEY", secret},
            {"RESTIC_PASSWORD", "ceph-fixture-test"},
            {"RESTIC_CACHE_DIR", (scratch() / "restic-cache").string()}};
}

std::size_t count_of(const std::string &text, const std::string &what) {
    std::size_t n = 0;
    for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + what.size())) ++n;
    return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(restic_backs_up_to_the_gateway_with_the_users_keys_only) {
    auto &ceph = ceph_fixture::shared();
    BOOST_TEST(ceph.s3_endpoint() == "http://127.0.0.1:" + std::to_string(ceph.s3_port()));
    const std::string repo = "s3:" + ceph.s3_endpoint() + "/oneds-bucket/repo";
    const auto env = restic_env(ceph, ceph.secret_key());

    const auto init = run({"restic", "-r", repo, "init"}, env);
    BOOST_TEST_REQUIRE(init.status == 0, init.err);

    fs::create_directories(scratch() / "data");
    std::ofstream(scratch() / "data" / "small.txt") << "ceph fixture test data\n";
    const std::string data = (scratch() / "data").string();
    const auto backup = run({"restic", "-r", repo, "backup", data}, env);
    BOOST_TEST_REQUIRE(backup.status == 0, backup.err);

    const auto snapshots = run({"restic", "-r", repo, "snapshots", "--json"}, env);
    BOOST_TEST_REQUIRE(snapshots.status == 0, snapshots.err);
    BOOST_TEST(count_of(snapshots.out, "\"short_id\"") == 1u, snapshots.out);
    BOOST_TEST(snapshots.out.find('"' + data + '"') != std::string::npos, snapshots.out);

    // The same access key with a wrong secret is refused.
    std::string wrong = ceph.secret_key();
    wrong.back() = wrong.back() == 'x' ? 'y' : 'x';
    const auto refused = run({"restic", "-r", repo, "snapshots", "--json"}, restic_env(ceph, wrong));
    BOOST_TEST(refused.status != 0);
    BOOST_TEST(refused.out.find("\"short_id\"") == std::string::npos, refused.out);
    // The fixture's keys never reach restic's output.
    BOOST_TEST(refused.err.find(ceph.secret_key()) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(rbd_creates_and_lists_an_image_in_the_pool) {
    auto &ceph = ceph_fixture::shared();
    const std::map<std::string, std::string> env{{"CEPH_CONF", ceph.ceph_conf().string()}};
    const auto create = run({"rbd", "create", "--size", "8", ceph.rbd_pool() + "/img"}, env);
    BOOST_TEST_REQUIRE(create.status == 0, create.err);
    const auto list = run({"rbd", "ls", ceph.rbd_pool()}, env);
    BOOST_TEST_REQUIRE(list.status == 0, list.err);
    BOOST_TEST(list.out == "img\n");
}

// Last in this file: it stops the program's shared cluster.
BOOST_AUTO_TEST_CASE(stop_leaves_no_daemon_and_no_directory) {
    auto &ceph = ceph_fixture::shared();
    const auto pids = ceph.daemon_pids();
    BOOST_TEST_REQUIRE(pids.size() == 3u);
    const auto tree = oneds::common::descendant_pids(::getpid());
    for (const pid_t pid : pids) BOOST_TEST((std::find(tree.begin(), tree.end(), pid) != tree.end()), pid);
    BOOST_TEST_REQUIRE(fs::is_directory(ceph.dir()));

    const auto started = std::chrono::steady_clock::now();
    ceph.stop();
    BOOST_TEST_MESSAGE(
        "stopping took "
        << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
        << " ms");
    BOOST_TEST(ceph.stopped());
    BOOST_TEST(ceph.daemon_pids().empty());
    for (const pid_t pid : oneds::common::descendant_pids(::getpid())) {
        const auto args = oneds::common::process_arguments(pid);
        const std::string name = args.empty() ? "" : fs::path(args.front()).filename().string();
        BOOST_TEST((name != "ceph-mon" && name != "ceph-osd" && name != "radosgw"), "left running: " << pid);
        BOOST_TEST((std::find(pids.begin(), pids.end(), pid) == pids.end()), "left running: " << pid);
    }
    BOOST_TEST(!fs::exists(ceph.dir()));
    ceph.stop();  // again: nothing to do
}
