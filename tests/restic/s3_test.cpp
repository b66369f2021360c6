#define BOOST_TEST_MODULE restic_s3
// RESTIC_BACKEND=S3 through one_ds_host on a real Ceph RADOS Gateway
// (tests/support/ceph_fixture.hpp), with the real restic 0.14, sshd (the
// backup runs on the "hypervisor" through it, the keys on its stdin) and
// qemu-img; the fake oned (tests/oned) where an action talks to oned. The
// SFTP backend's flows run again here: backup, incremental chain, download,
// flatten, rm, stat, ls, restore, monitor and backup_cancel; then the errors
// a wrong key, a missing bucket, an unreachable endpoint and a bad CA file
// give. Each test has a bucket of its own.
#include "tests/oned/fake_oned.hpp"
#include "tests/restic/restore_stock_repo.hpp"
#include "tests/support/ceph_fixture.hpp"

#include "adapters/oned/xmlrpc_one_api.hpp"
#include "common/base64.hpp"
#include "common/strings.hpp"

#include <boost/json.hpp>
#include <pugixml.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <regex>
#include <set>
#include <thread>

#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

using namespace oneds::test;
namespace fs = std::filesystem;
namespace oned = oneds::test::oned;

namespace {

std::string describe(const process_result &r) {
    return "exit " + std::to_string(r.exit_code) + (r.killed ? " (killed after the time limit)" : "") +
           "\n--- stdout ---\n" + r.out + "\n--- stderr ---\n" + r.err;
}

// A bucket name no other test (or copy of the suite) uses.
std::string fresh_bucket() {
    static std::atomic<int> n{0};
    return "oneds-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

// The fixture's datastore in a bucket of its own on the shared gateway.
struct s3_setup {
    restic_fixture f;
    ceph_fixture &ceph = ceph_fixture::shared();
    std::string bucket = fresh_bucket();
    s3_setup() { f.use_s3({ceph.s3_endpoint(), bucket, ceph.access_key(), ceph.secret_key()}); }
    std::string url(const std::string &repo_id) const {
        return "s3:" + ceph.s3_endpoint() + "/" + bucket + "/" + repo_id;
    }
    // Every secret an output must not hold.
    std::vector<std::string> secrets() const { return {ceph.access_key(), ceph.secret_key(), k_password}; }
};

std::vector<std::string> backup_args(const restic_fixture &f, int vm, const std::string &bj = "-") {
    return {"hypervisor:" + f.vm_dir(vm), "0:1", "one-" + std::to_string(vm), bj, std::to_string(vm), "0"};
}

std::string request(const restic_fixture &f, const std::string &image, const std::string &extra = {}) {
    return oneds::common::base64_encode(f.document_with_image(image, {}, extra));
}

std::string without_secrets_problem(const s3_setup &s, const std::string &text) {
    for (const auto &secret : s.secrets())
        if (text.find(secret) != std::string::npos) return "a secret appears in: " + text.substr(0, 400);
    return {};
}

// The locks restic sees in a repository (none must be left).
std::string locks(const restic_fixture &f, const std::string &repo) {
    const auto r = f.restic(repo, {"list", "locks", "--no-lock"});
    return r.exit_code == 0 ? r.out : "restic list locks failed: " + r.err;
}

std::set<std::string> short_ids(const std::vector<stock::snapshot_info> &s) {
    std::set<std::string> out;
    for (const auto &x : s) out.insert(x.short_id);
    return out;
}

// The argv of this test's own processes that hold a secret, polled while
// `running` is set (restic, sh, ssh and the host, here and through sshd).
class argv_watch {
public:
    explicit argv_watch(std::vector<std::string> secrets)
        : secrets_(std::move(secrets)), thread_([this](std::stop_token stop) {
              while (!stop.stop_requested()) {
                  for (const pid_t pid : own_descendants()) {
                      ++looked_;
                      for (const auto &word : process_argv(pid))
                          for (const auto &s : secrets_)
                              if (word.find(s) != std::string::npos) found_ = true;
                  }
                  std::this_thread::sleep_for(std::chrono::milliseconds(20));
              }
          }) {}
    bool found() const { return found_; }
    long looked() const { return looked_; }

private:
    std::vector<std::string> secrets_;
    std::atomic<bool> found_{false};
    std::atomic<long> looked_{0};
    std::jthread thread_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(s3_backup)

BOOST_AUTO_TEST_CASE(backup_on_the_hypervisor_creates_the_repository_in_the_bucket_and_no_key_is_in_any_argv) {
    s3_setup s;
    s.f.make_vm(7, {{0, 16, 2}, {1, 8, 1, true}});
    process_result first, second;
    long looked = 0;
    {
        argv_watch watch(s.secrets());
        first = s.f.host_action("backup", backup_args(s.f, 7), s.f.document());
        second = s.f.host_action("backup", backup_args(s.f, 7), s.f.document());
        BOOST_TEST(!watch.found(), "an S3 key or the password was in the argv of a process");
        looked = watch.looked();
    }
    BOOST_TEST(looked > 0);
    for (const auto *r : {&first, &second}) {
        BOOST_TEST_MESSAGE("backup stderr: " << r->err);
        BOOST_REQUIRE_MESSAGE(r->exit_code == 0, describe(*r));
        BOOST_TEST(std::regex_match(r->out, std::regex("[0-9a-f]{8} [0-9]+ raw\n")), r->out);
        BOOST_TEST(without_secrets_problem(s, r->out + r->err) == "");
    }
    BOOST_TEST(first.err.find("creating restic repository " + s.url("7")) != std::string::npos, first.err);
    BOOST_TEST(second.err.find("creating") == std::string::npos, "the second backup must find the repository");

    const std::string repo = s.f.base_path() + "/7";
    const auto snaps = stock::snapshots(s.f, repo);
    BOOST_TEST(short_ids(snaps) == (std::set<std::string>{first.out.substr(0, 8), second.out.substr(0, 8)}));
    BOOST_REQUIRE(!snaps.empty());
    auto paths = snaps[0].paths;
    std::sort(paths.begin(), paths.end());
    const std::vector<std::string> want = {s.f.backup_dir(7) + "/disk.0.0", s.f.backup_dir(7) + "/disk.1.0",
                                           s.f.backup_dir(7) + "/vm.xml"};
    BOOST_TEST(paths == want, boost::test_tools::per_element());
    BOOST_TEST(snaps[0].tags == std::vector<std::string>{"one-7"}, boost::test_tools::per_element());
    const auto dumped = s.f.restic(repo, {"dump", "--quiet", first.out.substr(0, 8), s.f.backup_dir(7) + "/disk.0.0"});
    BOOST_TEST(dumped.exit_code == 0);
    BOOST_TEST((dumped.out == read_file(s.f.backup_dir(7) + "/disk.0.0")), "the stored disk differs from the source");
    BOOST_TEST(stock::check_repository(s.f, repo) == "");
    BOOST_TEST(locks(s.f, repo) == "");
}

BOOST_AUTO_TEST_CASE(backups_of_two_vms_at_once_share_a_job_repository) {
    s3_setup s;
    s.f.make_vm(7, {{0, 8, 1, true}});
    s.f.make_vm(8, {{0, 8, 1, true}});
    process_result a, b;
    std::thread other([&] { b = s.f.host_action("backup", backup_args(s.f, 8, "3"), s.f.document()); });
    a = s.f.host_action("backup", backup_args(s.f, 7, "3"), s.f.document());
    other.join();
    BOOST_REQUIRE_MESSAGE(a.exit_code == 0, describe(a));
    BOOST_REQUIRE_MESSAGE(b.exit_code == 0, describe(b));
    const std::string repo = s.f.base_path() + "/job_3";
    BOOST_TEST(short_ids(stock::snapshots(s.f, repo)) ==
               (std::set<std::string>{a.out.substr(0, 8), b.out.substr(0, 8)}));
    BOOST_TEST(stock::check_repository(s.f, repo) == "");
}

BOOST_AUTO_TEST_CASE(backup_cancel_stops_the_backup_and_leaves_no_lock) {
    s3_setup s;
    s.f.make_vm(7, {{0, 512, 400, true}});
    auto running = std::make_unique<spawned_process>(s.f.host_argv("backup", backup_args(s.f, 7)), s.f.document());
    // restic runs (through sshd, on the "hypervisor") once its argv shows,
    // and is at work on the repository once its lock is in the bucket.
    BOOST_REQUIRE_MESSAGE(wait_for_process_with({"backup", s.f.backup_dir(7) + "/vm.xml"}, std::chrono::seconds(60)),
                          "the backup's restic did not start");
    const std::string repo = s.f.base_path() + "/7";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::string held = locks(s.f, repo);
    while ((held.empty() || held.starts_with("restic list locks failed")) &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        held = locks(s.f, repo);
    }
    BOOST_REQUIRE_MESSAGE(!held.empty() && !held.starts_with("restic list locks failed"),
                          "the backup's restic took no lock: " << held);
    // backup_cancel gets <host>:<vm_dir> <deploy_id>, as OpenNebula's VMM driver passes them.
    const auto cancel = s.f.host_action("backup_cancel", {"hypervisor:" + s.f.vm_dir(7), "one-7"}, s.f.document());
    BOOST_TEST(cancel.exit_code == 0, describe(cancel));
    const auto r = running->wait(std::chrono::seconds(120));
    BOOST_TEST(r.exit_code != 0, "the cancelled backup must fail: " << describe(r));
    // restic removes a lock it has registered on SIGINT; one that SIGINT met
    // between writing its lock and registering it goes with the plugin's
    // clean-up, which under a heavy load can miss its bound and then says so.
    const auto left = locks(s.f, repo);
    BOOST_TEST((left.empty() || lock_cleanup_reported_failure(r.err)),
               "the cancelled restic's lock was left without a word: " << left << "\n"
                                                                       << describe(r));
    // The next backup of the same VM succeeds and leaves no lock.
    s.f.make_vm(7, {{0, 8, 1}});
    const auto next = s.f.host_action("backup", backup_args(s.f, 7), s.f.document());
    BOOST_TEST(next.exit_code == 0, describe(next));
    BOOST_TEST(locks(s.f, repo) == "", "a lock was left after the next backup");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
// The restore side on a chain written the stock driver's way into the bucket.

BOOST_AUTO_TEST_SUITE(s3_restore_side)

BOOST_AUTO_TEST_CASE(download_of_every_increment_equals_the_disk_at_that_increment) {
    s3_setup s;
    stock::chain c(s.f, 7, {{0, 16, 2}, {1, 8, 1}});
    c.backup(3);
    const std::string tmp = s.f.dir().file("rtmp");
    fs::create_directories(tmp);
    for (const auto &d : c.disks())
        for (int k = 0; k < 3; ++k) {
            BOOST_TEST_CONTEXT("disk " << d.id << " increment " << k) {
                const auto r = s.f.host_action("downloader", {"--stdout", c.url(d.id, k)},
                                               s.f.document({{"RESTIC_TMP_DIR", tmp}}));
                BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
                const std::string got = s.f.dir().write("got." + std::to_string(d.id) + "." + std::to_string(k), r.out);
                BOOST_TEST(stock::compare_images(c.expected_image(d.id, k), got) == "");
            }
        }
    BOOST_TEST(fs::is_empty(tmp), "temporary files left in RESTIC_TMP_DIR");
    // The stock lines: S3 prepares the image on the front end, so command=
    // is a plain cat (docs/stock-driver.md#downloader).
    const auto lines = s.f.host_action("downloader", {c.url(0, 2)}, s.f.document({{"RESTIC_TMP_DIR", tmp}}));
    BOOST_REQUIRE_MESSAGE(lines.exit_code == 0, describe(lines));
    BOOST_TEST(lines.out.find("command=") != std::string::npos);
    BOOST_TEST(lines.out.find("ssh") == std::string::npos, lines.out);
    BOOST_TEST(lines.out.find("cat") != std::string::npos, lines.out);
    BOOST_TEST(without_secrets_problem(s, lines.out + lines.err) == "");
    BOOST_TEST(locks(s.f, c.repo()) == "");
}

BOOST_AUTO_TEST_CASE(flatten_rm_stat_and_ls_work_on_the_bucket) {
    s3_setup s;
    stock::chain c(s.f, 7, {{0, 16, 2}, {1, 8, 1}});
    c.backup(4);
    // stat: the disk's size from vm.xml, in MB.
    const auto st =
        s.f.host_action("stat", {"3"}, request(s.f, "<IMAGE><PATH>" + c.url(0, 3) + "</PATH><SIZE>0</SIZE></IMAGE>"));
    BOOST_TEST(st.exit_code == 0, describe(st));
    BOOST_TEST(st.out == "16\n", describe(st));
    // ls: the disks of the last snapshot as restic:// URLs.
    const auto ls =
        s.f.host_action("ls", {"-i", "3"}, s.f.document({}, "<VM><ID>7</ID><NAME>vm7</NAME></VM>" + c.image_xml()));
    BOOST_TEST(ls.exit_code == 0, describe(ls));
    BOOST_TEST(ls.out.find("\"0\":\"restic://100//") != std::string::npos, ls.out);

    // increment_flatten with KEEP_LAST 2 merges increments 0..2 into one.
    const std::string tmp = s.f.dir().file("ftmp");
    fs::create_directories(tmp);
    const auto fl = s.f.host_action(
        "increment_flatten", {"42"},
        oneds::common::base64_encode(s.f.document_with_image(c.image_xml(), {{"RESTIC_TMP_DIR", tmp}},
                                                             "<EXTRA_DATA><KEEP_LAST>2</KEEP_LAST></EXTRA_DATA>")));
    BOOST_REQUIRE_MESSAGE(fl.exit_code == 0, describe(fl));
    std::smatch m;
    const std::string out = fl.out;
    BOOST_REQUIRE_MESSAGE(
        std::regex_match(out, m, std::regex("([0-9]+) 2:([0-9a-f]{8}),3:" + c.at(3).short_id + "\n?")),
        "stdout: " << out);
    const std::string merged = m[2];
    BOOST_TEST(short_ids(stock::snapshots(s.f, c.repo())) == (std::set<std::string>{merged, c.at(3).short_id}));
    for (const auto &d : c.disks()) {
        const auto top = stock::rebuild(s.f, c.repo(), {{2, merged}, {3, c.at(3).short_id}}, d.id,
                                        s.f.dir().file("rebuild." + std::to_string(d.id)));
        BOOST_TEST(stock::compare_images(c.expected_image(d.id, 3), top, true, false) == "");
    }
    BOOST_TEST(stock::check_repository(s.f, c.repo()) == "");

    // rm of the whole (flattened) image: every snapshot of it goes.
    const std::string image = "<IMAGE><ID>42</ID><SOURCE>" + c.at(3).short_id +
                              "</SOURCE><TYPE>6</TYPE><BACKUP_INCREMENTS><INCREMENT><ID>2</ID><SOURCE>" + merged +
                              "</SOURCE></INCREMENT><INCREMENT><ID>3</ID><SOURCE>" + c.at(3).short_id +
                              "</SOURCE></INCREMENT></BACKUP_INCREMENTS><VMS><ID>7</ID></VMS></IMAGE>";
    const auto rm = s.f.host_action("rm", {"42"}, request(s.f, image));
    BOOST_TEST(rm.exit_code == 0, describe(rm));
    BOOST_TEST(stock::snapshots(s.f, c.repo()).empty());
    BOOST_TEST(stock::check_repository(s.f, c.repo()) == "");
    BOOST_TEST(locks(s.f, c.repo()) == "");
    BOOST_TEST(fs::is_empty(tmp));
}

BOOST_AUTO_TEST_CASE(restore_allocates_images_whose_urls_download_from_the_bucket) {
    s3_setup s;
    stock::chain c(s.f, 7, {{0, 16, 2}, {1, 8, 1}});
    c.backup(2);
    oned::fake_oned server;
    oned::datastore_record backup;
    backup.id = 100;
    backup.name = "restic";
    backup.type = "BACKUP_DS";
    {
        pugi::xml_document doc;
        doc.load_string(s.f.datastore_xml().c_str());
        for (const auto &n : doc.child("DATASTORE").child("TEMPLATE").children())
            backup.attributes.set(n.name(), n.text().as_string());
        backup.attributes.set("DS_MAD", "restic");
        backup.attributes.set("BASE_PATH", s.f.base_path());
    }
    server.add_datastore(backup);
    oned::datastore_record images;
    images.id = 1;
    images.name = "default";
    images.attributes.set("DS_MAD", "fs");
    images.attributes.set("TM_MAD", "ssh");
    server.add_datastore(images);
    server.add_user("alice", "alice-secret");
    server.start();
    const std::string auth = s.f.dir().write("one_auth", server.oneadmin_session() + "\n");
    const std::string cipher = s.f.dir().write("onegate_auth", server.serveradmin_credentials() + "\n");
    fs::permissions(cipher, fs::perms::owner_read | fs::perms::owner_write);
    const std::map<std::string, std::string> host = {
        {"oned_endpoint", server.endpoint()}, {"oned_auth_file", auth}, {"one_cipher_auth", cipher}};

    const auto r = s.f.host_action("restore", {"42"},
                                   oneds::common::base64_encode(s.f.document_with_image(
                                       c.image_xml(), {},
                                       "<DESTINATION_DS_ID>1</DESTINATION_DS_ID><TEMPLATE><USERNAME>alice</"
                                       "USERNAME><NAME>back</NAME></TEMPLATE>")),
                                   {}, {}, host);
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
    BOOST_TEST(std::regex_match(r.out, std::regex("[0-9]+ [0-9]+ [0-9]+\n?")), r.out);
    const auto imgs = server.images();
    BOOST_REQUIRE_EQUAL(imgs.size(), 2U);
    for (const auto &img : imgs) {
        const auto path = img.attributes.get("PATH").value_or("");
        BOOST_TEST(path.rfind("restic://100//0:" + c.at(0).short_id + ",1:" + c.at(1).short_id, 0) == 0U, path);
        const int disk = path.find("disk.1.") != std::string::npos ? 1 : 0;
        const auto d = s.f.host_action("downloader", {"--stdout", path}, "", {}, {}, host);
        BOOST_REQUIRE_MESSAGE(d.exit_code == 0, describe(d));
        const std::string got = s.f.dir().write("restored." + std::to_string(disk), d.out);
        BOOST_TEST(stock::compare_images(c.expected_image(disk, 1), got) == "");
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(s3_monitor)

std::map<std::string, long long> monitor_values(const std::string &out) {
    std::map<std::string, long long> v;
    for (const auto &line : oneds::common::split(out, '\n')) {
        const auto eq = line.find('=');
        if (eq != std::string::npos) v[line.substr(0, eq)] = std::stoll(line.substr(eq + 1));
    }
    return v;
}

BOOST_AUTO_TEST_CASE(monitor_reports_the_buckets_own_usage_and_total_mb) {
    s3_setup s;
    s.f.make_vm(7, {{0, 32, 6, true}});
    const auto b = s.f.host_action("backup", backup_args(s.f, 7), s.f.document());
    BOOST_REQUIRE_MESSAGE(b.exit_code == 0, describe(b));
    const auto start = std::chrono::steady_clock::now();
    const auto r =
        s.f.host_action("monitor", {"100"}, oneds::common::base64_encode(s.f.document({{"TOTAL_MB", "2048"}})));
    const auto took = std::chrono::steady_clock::now() - start;
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
    const auto v = monitor_values(r.out);
    // 6 MiB of random data went in: the bucket holds at least that.
    BOOST_TEST(v.at("USED_MB") >= 6);
    BOOST_TEST(v.at("USED_MB") < 64);
    BOOST_TEST(v.at("TOTAL_MB") == 2048);
    BOOST_TEST(v.at("FREE_MB") == 2048 - v.at("USED_MB"));
    BOOST_TEST(std::chrono::duration_cast<std::chrono::seconds>(took).count() < 10);
}

BOOST_AUTO_TEST_CASE(monitor_of_a_bucket_not_made_yet_sums_the_backup_images_as_stock) {
    s3_setup s;  // nothing backed up: the bucket does not exist
    oned::fake_oned server;
    oned::datastore_record backup;
    backup.id = 100;
    backup.name = "restic";
    backup.type = "BACKUP_DS";
    backup.attributes.set("DS_MAD", "restic");
    server.add_datastore(backup);
    server.start();
    const std::string auth = s.f.dir().write("one_auth", server.oneadmin_session() + "\n");
    auto api =
        oneds::adapters::oned::make_one_api({{"host.oned_endpoint", server.endpoint()}, {"host.oned_auth_file", auth}});
    BOOST_REQUIRE(api);
    for (const char *tmpl :
         {"NAME=a\nTYPE=BACKUP\nSIZE=300", "NAME=b\nTYPE=BACKUP\nSIZE=200", "NAME=c\nTYPE=OS\nSIZE=999"})
        BOOST_REQUIRE(
            (*api)->call("one.image.allocate", {std::string(tmpl), std::int32_t{100}, true}, std::stop_token{}));
    const auto r =
        s.f.host_action("monitor", {"100"}, oneds::common::base64_encode(s.f.document({{"TOTAL_MB", "1000"}})), {}, {},
                        {{"oned_endpoint", server.endpoint()}, {"oned_auth_file", auth}});
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
    BOOST_TEST(r.out == "USED_MB=500\nTOTAL_MB=1000\nFREE_MB=500\n", describe(r));
    BOOST_TEST(r.err.find("does not exist yet") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(s3_errors)

BOOST_AUTO_TEST_CASE(a_wrong_secret_key_is_named_and_never_shown) {
    s3_setup s;
    s.f.make_vm(7, {{0, 8, 1}});
    const std::string wrong = "wrong-secret-" + std::to_string(::getpid());
    const auto doc = s.f.document({{"RESTIC_S3_SECRET_ACCESS_KEY", wrong}});
    const auto b = s.f.host_action("backup", backup_args(s.f, 7), doc);
    BOOST_TEST(b.exit_code != 0);
    BOOST_TEST(b.err.find("RESTIC_S3_SECRET_ACCESS_KEY") != std::string::npos, b.err);
    BOOST_TEST(b.err.find(wrong) == std::string::npos, b.err);
    BOOST_TEST(without_secrets_problem(s, b.err) == "");
    const auto m = s.f.host_action("monitor", {"100"}, oneds::common::base64_encode(doc));
    BOOST_TEST(m.exit_code != 0);
    BOOST_TEST(m.err.find("RESTIC_S3_ACCESS_KEY_ID") != std::string::npos, m.err);
}

BOOST_AUTO_TEST_CASE(a_missing_bucket_is_named_by_the_restore_side) {
    s3_setup s;
    stock::chain c(s.f, 7, {{0, 8, 1}});
    c.backup();
    const auto r = s.f.host_action("downloader", {"--stdout", c.url(0, 0)},
                                   s.f.document({{"RESTIC_S3_BUCKET", s.bucket + "-gone"}}));
    BOOST_TEST(r.exit_code != 0);
    BOOST_TEST(r.err.find(s.bucket + "-gone") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("does not exist") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("RESTIC_S3_BUCKET") != std::string::npos, r.err);
    // rm must not take a wrong bucket for "nothing left to remove": oned
    // would drop the image while its snapshot stays in the right bucket.
    const auto rm = s.f.host_action(
        "rm", {"42"},
        oneds::common::base64_encode(s.f.document_with_image(stock::full_image_xml(42, 7, c.at(0).short_id),
                                                             {{"RESTIC_S3_BUCKET", s.bucket + "-gone"}})));
    BOOST_TEST(rm.exit_code != 0, describe(rm));
    BOOST_TEST(rm.err.find("RESTIC_S3_BUCKET") != std::string::npos, rm.err);
    BOOST_TEST(short_ids(stock::snapshots(s.f, c.repo())) == (std::set<std::string>{c.at(0).short_id}));
}

BOOST_AUTO_TEST_CASE(an_unreachable_endpoint_fails_at_once_naming_it) {
    s3_setup s;
    s.f.make_vm(7, {{0, 8, 1}});
    // A port nobody listens on: bound, then closed.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
    BOOST_REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0);
    ::close(fd);
    const std::string ep = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    const auto start = std::chrono::steady_clock::now();
    const auto b = s.f.host_action("backup", backup_args(s.f, 7), s.f.document({{"RESTIC_S3_ENDPOINT", ep}}));
    const auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(b.exit_code != 0);
    BOOST_TEST(b.err.find("127.0.0.1:" + std::to_string(ntohs(a.sin_port))) != std::string::npos, b.err);
    BOOST_TEST(std::chrono::duration_cast<std::chrono::seconds>(took).count() < 15, "restic's retries were waited for");
}

BOOST_AUTO_TEST_CASE(a_bad_ca_file_is_named) {
    s3_setup s;
    s.f.make_vm(7, {{0, 8, 1}});
    const std::string ca = s.f.dir().write("not-a-ca.pem", "this is no certificate\n");
    const auto b = s.f.host_action("backup", backup_args(s.f, 7), s.f.document({{"RESTIC_S3_CACERT", ca}}));
    BOOST_TEST(b.exit_code != 0);
    BOOST_TEST(b.err.find("RESTIC_S3_CACERT") != std::string::npos, b.err);
}

BOOST_AUTO_TEST_SUITE_END()
