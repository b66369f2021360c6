#define BOOST_TEST_MODULE restic_storage_faults
// The storage half of the fault matrix (docs/faults-storage.md), through
// one_ds_host with the real restic 0.14, a real sshd on loopback, real
// qemu-img and, for S3, the real Ceph gateway (tests/support/ceph_fixture):
//
// * the repository's file system full part way through a backup, read-only
//   before and during a backup, and the repository made immutable (root
//   ignores mode bits, not `chattr +i`), on LOCAL and SFTP (tmpfs mounts: the
//   test runs as root);
// * a missing pack, a corrupted pack and a corrupted index file on LOCAL,
//   SFTP and S3, met by verify (MONITOR), the downloader, backup,
//   increment_flatten and rm.
//
// After every fault one helper (expect_recovery) asserts what the fault matrix
// promises: the request failed naming the cause, no restic lock and no flock
// of ours is left, no snapshot was taken from a failed backup, the next
// backup of the VM succeeds once the fault is gone, and `restic check`
// passes on every repository that was healthy before.
#include "tests/restic/restore_stock_repo.hpp"
#include "tests/support/ceph_fixture.hpp"

#include "common/base64.hpp"

#include <boost/json.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <pugixml.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <set>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

using namespace oneds::test;
namespace fs = std::filesystem;
namespace json = boost::json;
namespace bdata = boost::unit_test::data;

namespace {

std::string describe(const process_result &r) {
    return "exit " + std::to_string(r.exit_code) + (r.killed ? " (killed after the time limit)" : "") + " after " +
           std::to_string(static_cast<int>(r.seconds())) + " s\n--- stdout ---\n" + r.out + "\n--- stderr ---\n" +
           r.err;
}

enum class backend { local, sftp, s3 };

std::string be_name(backend b) { return b == backend::local ? "LOCAL" : b == backend::sftp ? "SFTP" : "S3"; }
std::ostream &operator<<(std::ostream &o, backend b) { return o << be_name(b); }

// A bucket name no other test (or copy of the suite) uses.
std::string fresh_bucket() {
    static std::atomic<int> n{0};
    return "oneds-sf-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

// One backend's datastore: the fixture (sshd, scratch tree), BASE_PATH
// (optionally a tmpfs of its own), and the repository's files reached the
// way an admin would (the file system, or S3 requests through curl with the
// keys in a 0600 config file, never on its command line).
struct site {
    restic_fixture f;
    backend be;
    std::string base;
    std::string bucket, curl_cfg;
    std::unique_ptr<tmpfs_mount> mnt;  // destroyed before f removes the tree

    explicit site(backend b, const std::string &tmpfs_size = {}) : be(b), base(f.base_path()) {
        if (b == backend::s3) {
            auto &ceph = ceph_fixture::shared();
            bucket = fresh_bucket();
            f.use_s3({ceph.s3_endpoint(), bucket, ceph.access_key(), ceph.secret_key()});
            curl_cfg = f.dir().write("curl.conf", "user = \"" + ceph.access_key() + ":" + ceph.secret_key() +
                                                      "\"\naws-sigv4 = \"aws:amz:us-east-1:s3\"\n");
            fs::permissions(curl_cfg, fs::perms::owner_read | fs::perms::owner_write);
        }
        if (!tmpfs_size.empty()) {
            base = f.dir().file("mnt");
            mnt = std::make_unique<tmpfs_mount>(base, tmpfs_size);
        }
    }

    std::map<std::string, std::optional<std::string>> tmpl(
        std::map<std::string, std::optional<std::string>> extra = {}) const {
        if (be == backend::local) extra.emplace("RESTIC_BACKEND", "LOCAL");
        extra.emplace("RESTIC_LOCK_RETRIES", "2");
        return extra;
    }
    std::string with_base(std::string d) const {
        if (base == f.base_path()) return d;
        return std::regex_replace(d, std::regex("<BASE_PATH>[^<]*</BASE_PATH>"), "<BASE_PATH>" + base + "</BASE_PATH>");
    }
    std::string doc(int vm, const std::map<std::string, std::optional<std::string>> &extra = {}) const {
        return with_base(f.document(tmpl(extra), "<VM><ID>" + std::to_string(vm) + "</ID></VM>"));
    }
    std::string image_request(const std::string &image, const std::string &extra = {}) const {
        return oneds::common::base64_encode(with_base(f.document_with_image(image, tmpl(), extra)));
    }
    std::string host() const { return be == backend::local ? "localhost" : "hypervisor"; }
    std::vector<std::string> backup_args(int vm) const {
        return {host() + ":" + f.vm_dir(vm), "0", "one-" + std::to_string(vm), "-", std::to_string(vm), "0"};
    }
    process_result backup(int vm) const { return f.host_action("backup", backup_args(vm), doc(vm)); }
    std::string repo(int vm) const { return base + "/" + std::to_string(vm); }
    process_result restic(int vm, const std::vector<std::string> &args) const { return f.restic(repo(vm), args); }

    // ---- the repository's files: key = "<vm>/data/ab/abcd..." below BASE_PATH or the bucket
    std::vector<std::string> curl(const std::vector<std::string> &extra) const {
        // The gateway wants the payload's hash header, which curl does not add.
        std::vector<std::string> argv = {
            tool("curl"), "-sS", "--fail", "-K", curl_cfg, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return argv;
    }
    std::string object_url(const std::string &key) const {
        return ceph_fixture::shared().s3_endpoint() + "/" + bucket + "/" + key;
    }
    // (key, size) of every file under <vm>/<dir>.
    std::vector<std::pair<std::string, std::uint64_t>> files(int vm, const std::string &dir) const {
        std::vector<std::pair<std::string, std::uint64_t>> out;
        const std::string prefix = std::to_string(vm) + "/" + dir + "/";
        if (be != backend::s3) {
            for (const auto &e : fs::recursive_directory_iterator(base + "/" + prefix))
                if (e.is_regular_file())
                    out.emplace_back(fs::relative(e.path(), base).string(), static_cast<std::uint64_t>(e.file_size()));
            return out;
        }
        const auto xml =
            stock::must(curl({ceph_fixture::shared().s3_endpoint() + "/" + bucket +
                              "?list-type=2&prefix=" + std::regex_replace(prefix, std::regex("/"), "%2F")}),
                        "S3 list " + prefix);
        pugi::xml_document d;
        d.load_string(xml.c_str());
        for (const auto &c : d.child("ListBucketResult").children("Contents"))
            out.emplace_back(c.child_value("Key"), std::stoull(c.child_value("Size")));
        return out;
    }
    std::string largest(int vm, const std::string &dir) const {
        std::pair<std::string, std::uint64_t> best;
        for (const auto &file : files(vm, dir))
            if (file.second > best.second) best = file;
        BOOST_REQUIRE_MESSAGE(!best.first.empty(), "no file under " << vm << "/" << dir);
        return best.first;
    }
    std::string get(const std::string &key) const {
        if (be != backend::s3) return read_file(base + "/" + key);
        const std::string tmp = f.dir().file("s3-get");
        stock::must(curl({"-o", tmp, object_url(key)}), "S3 GET " + key);
        return read_file(tmp);
    }
    void put(const std::string &key, const std::string &data) const {
        if (be != backend::s3) {
            const std::string p = base + "/" + key;
            if (fs::exists(p)) fs::permissions(p, fs::perms::owner_write, fs::perm_options::add);
            std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
            fs::permissions(p, fs::perms::owner_read);  // restic writes its files 0400
            return;
        }
        const std::string tmp = f.dir().write("s3-put", data);
        stock::must(curl({"-X", "PUT", "--data-binary", "@" + tmp, object_url(key)}), "S3 PUT " + key);
    }
    void remove(const std::string &key) const {
        if (be != backend::s3)
            fs::remove(base + "/" + key);
        else
            stock::must(curl({"-X", "DELETE", object_url(key)}), "S3 DELETE " + key);
    }
};

std::string uncached(const site &s, int vm);

// ---- what every fault must leave behind -----------------------------------

// restic's locks in a repository, as restic lists them ("" when none).
std::string restic_locks(const site &s, int vm) {
    const auto r = s.restic(vm, {"list", "locks", "--no-lock"});
    return r.exit_code == 0 ? r.out : "restic list locks failed: " + r.err;
}

// Our own locks: the init flocks (lock_dir) and the state flocks (state_dir)
// of the fixture's config; each must be free (nothing of ours still holds it).
std::vector<std::string> held_flocks(const site &s) {
    std::vector<std::string> held;
    for (const auto &dir : {s.f.dir().file("locks"), s.f.dir().file("state")}) {
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec)) {
            if (!it->is_regular_file() || it->path().extension() != ".lock") continue;
            const int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            if (::flock(fd, LOCK_EX | LOCK_NB) != 0) held.push_back(it->path().string());
            ::close(fd);
        }
    }
    return held;
}

std::vector<std::string> temporary_files(const site &s, int vm) {
    std::vector<std::string> out;
    if (s.be == backend::s3) return out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(s.repo(vm), ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
        if (it->path().filename().string().find("-tmp-") != std::string::npos) out.push_back(it->path().string());
    return out;
}

std::size_t snapshot_count(const site &s, int vm) {
    const auto r = s.restic(vm, {"snapshots", "--json", "--no-lock"});
    if (r.exit_code != 0) return 0;
    return json::parse(r.out).as_array().size();
}

std::string check(const site &s, int vm) {
    const auto r = s.restic(vm, {"--no-cache", "check"});
    return r.exit_code == 0 ? std::string() : r.out + r.err;
}

// A failed backup: exit 255, no "<id> <size> <format>" line, the cause named.
void expect_failed(const process_result &r, const std::string &cause, const std::string &what) {
    BOOST_TEST_MESSAGE(what << ": exit " << r.exit_code << " after " << r.seconds() << " s: "
                            << r.err.substr(r.err.rfind("Error") == std::string::npos ? 0 : r.err.rfind("Error")));
    BOOST_TEST(r.exit_code == 255, what << ": " << describe(r));
    BOOST_TEST(r.out.find(" raw") == std::string::npos, what << ": a backup result was printed: " << r.out);
    BOOST_TEST(r.err.find(cause) != std::string::npos, what << ": the cause \"" << cause << "\" is not named:\n"
                                                            << r.err);
    BOOST_TEST(r.err.find("retry 1/") == std::string::npos, what << ": retried as a lock conflict: " << r.err);
}

struct recovery {
    int vm;                        // the VM whose request met the fault
    std::size_t snapshots_before;  // its snapshots before the fault
    std::vector<int> healthy;      // repositories that were healthy before (other VMs on the same storage)
    bool check_vm = true;          // the VM's own repository must pass check too (storage faults)
    // restic could not remove its lock (the storage was read-only when it
    // failed): the lock must be stale, i.e. go with a plain `restic unlock`,
    // which removes only locks whose process is gone (as the next rm or
    // flatten does on its own, lock_retry.hpp).
    bool stale_lock_left = false;
};

// Once the fault is removed: no lock of ours anywhere, nothing half-written
// taken for a backup, the next backup of the VM succeeds and adds exactly one
// snapshot, and every repository healthy before passes `restic check`.
void expect_recovery(site &s, const recovery &r, const std::string &what) {
    BOOST_TEST_CONTEXT(what) {
        // (Boost.Test builds the message even when the check passes: no front() of an empty list.)
        const auto flocks = held_flocks(s);
        BOOST_TEST(flocks.empty(), "a flock of ours is held: " << (flocks.empty() ? "" : flocks.front()));
        BOOST_TEST(snapshot_count(s, r.vm) == r.snapshots_before, "a snapshot was taken from the failed request");
        // A storage that turned read-only under restic keeps restic's partial
        // pack files (-tmp-), as it keeps its lock: no snapshot refers to
        // them (the snapshot count above, `restic check` below). Elsewhere
        // none may be left.
        if (const auto tmp = temporary_files(s, r.vm); !r.stale_lock_left)
            BOOST_TEST(tmp.empty(), "half-written files left: " << (tmp.empty() ? "" : tmp.front()));
        s.f.make_vm(r.vm, {{0, 8, 1, true}});
        const auto next = s.backup(r.vm);
        BOOST_TEST(next.exit_code == 0, "the next backup failed: " << describe(next));
        BOOST_TEST(std::regex_match(next.out, std::regex("[0-9a-f]{8} [0-9]+ raw\n")), next.out);
        BOOST_TEST(snapshot_count(s, r.vm) == r.snapshots_before + 1);
        if (r.stale_lock_left && !restic_locks(s, r.vm).empty()) {
            BOOST_TEST_MESSAGE("VM " << r.vm << ": a stale lock was left, removed by restic unlock");
            BOOST_TEST(s.restic(r.vm, {"unlock"}).exit_code == 0);
        }
        BOOST_TEST(restic_locks(s, r.vm) == "", "restic lock left in VM " << r.vm);
        if (r.check_vm) BOOST_TEST(check(s, r.vm) == "", "VM " << r.vm);
        for (const int h : r.healthy) {
            BOOST_TEST(restic_locks(s, h) == "", "restic lock left in VM " << h);
            BOOST_TEST(check(s, h) == "", "the healthy repository of VM " << h << " was harmed");
        }
    }
}

// The restic cache of a repository (the plugin's restic and the fixture's use
// the same user's cache) is removed, so that the next restic reads the
// repository itself, as on a backup server whose cache never held it.
std::string uncached(const site &s, int vm) {
    const auto cfg = s.restic(vm, {"cat", "config", "--no-lock"});
    if (cfg.exit_code != 0) return cfg.err;
    const std::string id(json::parse(cfg.out).as_object().at("id").as_string());
    const char *xdg = std::getenv("XDG_CACHE_HOME");
    const char *home = std::getenv("HOME");
    const std::string root =
        xdg != nullptr && *xdg != '\0' ? xdg : std::string(home != nullptr ? home : "/root") + "/.cache";
    std::error_code ec;
    fs::remove_all(root + "/restic/" + id, ec);
    return {};
}

}  // namespace

// ---------------------------------------------------------------------------
// The repository's file system: full, read-only, immutable. LOCAL and SFTP
// (an S3 bucket has no file system of ours to fill or remount).

const auto k_fs_backends = std::vector<backend>{backend::local, backend::sftp};

BOOST_AUTO_TEST_SUITE(file_system)

// 24 MiB of random data into a 40 MiB tmpfs that already holds two VMs'
// backups: the space runs out part way through the backup.
BOOST_DATA_TEST_CASE(full_part_way_through_a_backup, bdata::make(k_fs_backends), be) {
    site s(be, "40m");
    BOOST_TEST_REQUIRE(s.mnt->ok(), "this case needs root to mount a tmpfs");
    s.f.make_vm(7, {{0, 8, 2, true}});
    s.f.make_vm(8, {{0, 8, 2, true}});
    for (int vm : {7, 8}) BOOST_TEST_REQUIRE(s.backup(vm).exit_code == 0);
    s.f.make_vm(7, {{0, 64, 48, true}});
    const auto r = s.backup(7);
    expect_failed(r, "no space left on the repository's storage", "full");
    // Part way: some of the new data had been stored when it ran out.
    BOOST_TEST(s.mnt->resize("256m"));
    expect_recovery(s, {7, 1, {8}}, "full");
}

BOOST_DATA_TEST_CASE(read_only_before_a_backup, bdata::make(k_fs_backends), be) {
    site s(be, "64m");
    BOOST_TEST_REQUIRE(s.mnt->ok(), "this case needs root to mount a tmpfs");
    s.f.make_vm(7, {{0, 8, 1, true}});
    s.f.make_vm(8, {{0, 8, 1, true}});
    for (int vm : {7, 8}) BOOST_TEST_REQUIRE(s.backup(vm).exit_code == 0);
    BOOST_TEST_REQUIRE(s.mnt->set_read_only(true));
    s.f.make_vm(7, {{0, 8, 1, true}});
    const auto r = s.backup(7);
    expect_failed(r, "the repository's storage is read-only", "read-only");
    BOOST_TEST(s.mnt->set_read_only(false));
    expect_recovery(s, {7, 1, {8}}, "read-only");
}

// The remount happens while restic writes packs (held to 1 MiB/s).
BOOST_DATA_TEST_CASE(read_only_in_the_middle_of_a_backup, bdata::make(k_fs_backends), be) {
    site s(be, "128m");
    BOOST_TEST_REQUIRE(s.mnt->ok(), "this case needs root to mount a tmpfs");
    s.f.make_vm(7, {{0, 8, 1, true}});
    s.f.make_vm(8, {{0, 8, 1, true}});
    for (int vm : {7, 8}) BOOST_TEST_REQUIRE(s.backup(vm).exit_code == 0);
    s.f.make_vm(7, {{0, 32, 16, true}});
    spawned_process p(s.f.host_argv("backup", s.backup_args(7)), s.doc(7, {{"RESTIC_BWLIMIT", "1024"}}));
    BOOST_TEST_REQUIRE(find_process_with({"backup", "--tag=one-7"}, std::chrono::seconds(60)) > 0);
    // A pack has been written: restic is in the middle of its work.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    const auto packs = s.files(7, "data").size();
    while (s.files(7, "data").size() == packs && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    BOOST_TEST_REQUIRE(s.mnt->set_read_only(true));
    const auto r = p.wait(std::chrono::seconds(120));
    expect_failed(r, "the repository's storage is read-only", "read-only mid-backup");
    // restic could not remove its lock from a read-only file system: it is
    // stale once the storage is writable again, and the next backup removes it.
    BOOST_TEST(s.mnt->set_read_only(false));
    expect_recovery(s, {7, 1, {8}, true, true}, "read-only mid-backup");
}

// Root ignores mode bits; an immutable repository (chattr +i on every file
// and directory) refuses root too, as a lost permission refuses oneadmin.
BOOST_DATA_TEST_CASE(an_immutable_repository_refuses_the_backup, bdata::make(k_fs_backends), be) {
    site s(be, "64m");
    BOOST_TEST_REQUIRE(s.mnt->ok(), "this case needs root to mount a tmpfs");
    s.f.make_vm(7, {{0, 8, 1, true}});
    s.f.make_vm(8, {{0, 8, 1, true}});
    for (int vm : {7, 8}) BOOST_TEST_REQUIRE(s.backup(vm).exit_code == 0);
    stock::must({tool("chattr"), "-R", "+i", s.repo(7)}, "chattr +i");
    s.f.make_vm(7, {{0, 8, 1, true}});
    const auto r = s.backup(7);
    stock::must({tool("chattr"), "-R", "-i", s.repo(7)}, "chattr -i");
    expect_failed(r, "the repository's storage refused access", "immutable");
    expect_recovery(s, {7, 1, {8}}, "immutable");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
// A damaged repository, on every backend: VM 7 loses its largest pack, VM 8
// has bytes of its largest pack overwritten, VM 9 has an index file
// overwritten; VM 10 stays healthy. Each is met by verify, the downloader,
// increment_flatten, backup and rm; then the damage is repaired (the file
// put back) and the matrix's promises are checked.

const auto k_all_backends = std::vector<backend>{backend::local, backend::sftp, backend::s3};

BOOST_AUTO_TEST_SUITE(damaged_repository)

namespace {

struct damage {
    int vm;
    std::string what, key, saved;
};

std::string flip_middle(std::string data) {
    const std::size_t at = data.size() / 2;
    for (std::size_t i = at; i < at + 32 && i < data.size(); ++i) data[i] = static_cast<char>(~data[i]);
    return data;
}

// The verify state of a repository after the MONITOR cycles ("" when none).
std::string verify_result(const site &s, int vm, std::string *message = nullptr) {
    const std::string file = s.f.dir().file("state") + "/100/verify.json";
    if (!fs::exists(file)) return {};
    const auto st = json::parse(read_file(file)).as_object();
    const auto *repos = st.if_contains("repositories");
    if (repos == nullptr || !repos->as_object().contains(std::to_string(vm))) return {};
    const auto &e = repos->as_object().at(std::to_string(vm)).as_object();
    if (message != nullptr) *message = std::string(e.at("message").as_string());
    return std::string(e.at("result").as_string());
}

}  // namespace

BOOST_DATA_TEST_CASE(missing_pack_corrupted_pack_and_corrupted_index, bdata::make(k_all_backends), be) {
    site s(be);
    std::map<int, std::unique_ptr<stock::chain>> chains;
    for (int vm : {7, 8, 9, 10}) {
        chains[vm] = std::make_unique<stock::chain>(s.f, vm, std::vector<stock::disk>{{0, 16, 6, true}});
        chains[vm]->backup(2);
    }
    std::vector<damage> damages = {{7, "missing pack", s.largest(7, "data"), {}},
                                   {8, "corrupted pack", s.largest(8, "data"), {}},
                                   {9, "corrupted index", s.largest(9, "index"), {}}};
    for (auto &d : damages) {
        d.saved = s.get(d.key);
        if (d.vm == 7)
            s.remove(d.key);
        else
            s.put(d.key, flip_middle(d.saved));
        BOOST_TEST_REQUIRE(uncached(s, d.vm) == "");
    }
    std::map<int, std::size_t> before;
    for (int vm : {7, 8, 9, 10}) before[vm] = snapshot_count(s, vm);

    // verify: one repository per MONITOR cycle, each read whole (a budget
    // larger than the repository).
    for (int cycle = 0; cycle < 4; ++cycle) {
        const auto m = s.f.host_action(
            "monitor", {"100"},
            oneds::common::base64_encode(s.with_base(s.f.document(s.tmpl({{"RESTIC_VERIFY_BUDGET_MB", "1000"}})))),
            {{"verify_foreground", "yes"}});
        BOOST_TEST(m.exit_code == 0, "MONITOR: " << describe(m));
    }
    for (const auto &d : damages) {
        std::string msg;
        BOOST_TEST(verify_result(s, d.vm, &msg) == "damaged", be << " " << d.what << ": verify said: " << msg);
        BOOST_TEST_MESSAGE(be << " " << d.what << " verify: " << msg);
    }
    BOOST_TEST(verify_result(s, 10) == "ok");

    const std::string tmp = s.f.dir().file("rtmp");
    fs::create_directories(tmp);
    for (const auto &d : damages) {
        const auto &c = *chains[d.vm];
        BOOST_TEST_CONTEXT(be << " " << d.what) {
            // The downloader of the last increment (the whole chain).
            const auto dl = s.f.host_action("downloader", {"--stdout", c.url(0, 1)},
                                            s.with_base(s.f.document(s.tmpl({{"RESTIC_TMP_DIR", tmp}}))));
            BOOST_TEST_MESSAGE(be << " " << d.what << " download: exit " << dl.exit_code << " in "
                                  << static_cast<int>(dl.seconds()) << " s: " << dl.err.substr(0, 600));
            if (dl.exit_code == 0) {
                const std::string got = s.f.dir().write("got", dl.out);
                BOOST_TEST(stock::compare_images(c.expected_image(0, 1), got) == "",
                           "the downloader answered with wrong data");
            } else {
                BOOST_TEST(dl.exit_code == 255, describe(dl));
                BOOST_TEST(dl.err.find("damaged") != std::string::npos, "the damage is not named: " << dl.err);
            }
            BOOST_TEST(stock::files_under(tmp).empty(), "the downloader left files");

            // increment_flatten (KEEP_LAST 1): merges both increments.
            const auto fl =
                s.f.host_action("increment_flatten", {"42"},
                                s.image_request(c.image_xml(), "<EXTRA_DATA><KEEP_LAST>1</KEEP_LAST></EXTRA_DATA>"));
            BOOST_TEST_MESSAGE(be << " " << d.what << " flatten: exit " << fl.exit_code << " in "
                                  << static_cast<int>(fl.seconds()) << " s: " << fl.err.substr(0, 600));
            if (fl.exit_code != 0) {
                BOOST_TEST(fl.err.find("damaged") != std::string::npos, "the damage is not named: " << fl.err);
                BOOST_TEST(snapshot_count(s, d.vm) == before[d.vm], "a failed flatten changed the snapshots");
            }
        }
    }
    for (const auto &d : damages) {
        BOOST_TEST_CONTEXT(be << " " << d.what) {
            // A backup of new data.
            s.f.make_vm(d.vm, {{0, 16, 2, true}});
            const auto b = s.backup(d.vm);
            BOOST_TEST_MESSAGE(
                be << " " << d.what << " backup: exit " << b.exit_code << ": "
                   << b.err.substr(b.err.rfind("Error") == std::string::npos ? 0 : b.err.rfind("Error"), 600));
            if (b.exit_code == 0) {
                // What it claims it stored, it stored.
                const auto id = b.out.substr(0, 8);
                const auto dumped =
                    s.restic(d.vm, {"--no-cache", "dump", "--quiet", id, s.f.backup_dir(d.vm) + "/disk.0.0"});
                BOOST_TEST(dumped.exit_code == 0, "the new snapshot cannot be read: " << dumped.err);
                BOOST_TEST((dumped.out == read_file(s.f.backup_dir(d.vm) + "/disk.0.0")),
                           "the new snapshot holds other data than the disk");
                ++before[d.vm];
            } else {
                expect_failed(b, "damaged", d.what);
                BOOST_TEST(snapshot_count(s, d.vm) == before[d.vm]);
            }
            // rm of the image.
            const auto rm = s.f.host_action("rm", {"42"}, s.image_request(chains[d.vm]->image_xml()));
            BOOST_TEST_MESSAGE(be << " " << d.what << " rm: exit " << rm.exit_code << ": " << rm.err.substr(0, 600));
            if (rm.exit_code != 0) BOOST_TEST(rm.err.find("damaged") != std::string::npos, rm.err);
            before[d.vm] = snapshot_count(s, d.vm);
        }
    }
    // Repair: the file put back (S3 and SFTP: the same bytes, as from a copy).
    // restic keeps the index files it read in its cache and trusts them: a
    // corrupted one read before the repair stays there, so the repair
    // includes dropping the repository's cache (docs/faults-storage.md).
    for (const auto &d : damages) {
        s.put(d.key, d.saved);
        BOOST_TEST(uncached(s, d.vm) == "");
    }
    for (const auto &d : damages) expect_recovery(s, {d.vm, before[d.vm], {10}, true}, be_name(be) + " " + d.what);
}

BOOST_AUTO_TEST_SUITE_END()
