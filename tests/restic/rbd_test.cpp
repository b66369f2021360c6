#define BOOST_TEST_MODULE restic_rbd
// Ceph RBD disks end to end (docs/rbd.md), with the real restic 0.14, sshd,
// a real Ceph cluster (tests/support/ceph_fixture.hpp) and the fake oned for
// restore:
//
// * an RBD image is backed up the way the Ceph TM's prebackup leaves its
//   folder in INCREMENT mode: increment 0 is `rbd export --export-format 2`
//   of snapshot one_backup_0 as disk.<id>.rbd2, increment k is
//   `rbd export-diff --from-snap one_backup_<k-1>` of one_backup_<k> as
//   disk.<id>.<k>.rbdiff, with vm.xml, the folder holding only that
//   increment's files; each is backed up with `one_ds_host action restic
//   backup`, which must print the format rbd;
// * ls and restore must give restic+rbd:// URLs for a FORMAT=rbd image;
// * the downloader must answer restic+rbd://<ds>//<chain up to k><path> with
//   a gzip tar of the chain's files, which, unpacked and imported the way the
//   Ceph side does (`rbd import --export-format 2` of the .rbd2, then
//   `rbd import-diff` of each .rbdiff in increment order) into a NEW image,
//   gives exactly the original at snapshot one_backup_<k>.
#include "tests/oned/fake_oned.hpp"
#include "tests/restic/restore_stock_repo.hpp"
#include "tests/support/ceph_fixture.hpp"

#include "common/base64.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <unistd.h>

using namespace oneds::test;
namespace fs = std::filesystem;
namespace oned = oneds::test::oned;

namespace {

std::string describe(const process_result &r) {
    return "exit " + std::to_string(r.exit_code) + (r.killed ? " (killed after the time limit)" : "") +
           "\n--- stdout ---\n" + (r.out.size() > 4000 ? r.out.substr(0, 4000) + "..." : r.out) + "\n--- stderr ---\n" +
           r.err;
}

std::string files_in(const std::string &dir) {
    std::string out;
    std::error_code ec;
    if (fs::exists(dir, ec))
        for (const auto &e : fs::recursive_directory_iterator(dir, ec)) out += " " + e.path().string();
    return "[" + out + " ]";
}

// rbd (and librbd writes) against the test cluster.
struct cluster {
    ceph_fixture &ceph = ceph_fixture::shared();

    std::string conf() const { return ceph.ceph_conf().string(); }
    std::string image(const std::string &name) const { return ceph.rbd_pool() + "/" + name; }

    std::string rbd(std::vector<std::string> args, const std::string &input = {}) const {
        std::vector<std::string> argv = {tool("rbd"), "-c", conf()};
        argv.insert(argv.end(), args.begin(), args.end());
        std::string what = "rbd";
        for (const auto &a : args) what += " " + a;
        return stock::must(argv, what, input);
    }
    // Writes into an image through librbd: "w,<byte>,<offset>,<length>"
    // fills with a byte, "z,0,<offset>,<length>" discards (reads as zeroes
    // after). qemu-io would do, but Debian's qemu-utils lacks the rbd block
    // module; the librbd Python binding comes with ceph-common.
    void write(const std::string &img, const std::vector<std::string> &ops) const {
        static const std::string script =
            "import sys, rados, rbd\n"
            "conf, pool, name = sys.argv[1:4]\n"
            "with rados.Rados(conffile=conf) as cl:\n"
            "    with cl.open_ioctx(pool) as io:\n"
            "        with rbd.Image(io, name) as im:\n"
            "            for op in sys.argv[4:]:\n"
            "                kind, byte, off, length = op.split(',')\n"
            "                off, length = int(off), int(length)\n"
            "                if kind == 'w':\n"
            "                    im.write(bytes([int(byte)]) * length, off)\n"
            "                else:\n"
            "                    im.discard(off, length)\n";
        const auto slash = img.find('/');
        std::vector<std::string> argv = {"/usr/bin/python3",   "-c", script, conf(), img.substr(0, slash),
                                         img.substr(slash + 1)};
        argv.insert(argv.end(), ops.begin(), ops.end());
        stock::must(argv, "librbd writes to " + img);
    }
};

// A unique image name (one copy of this suite may run beside another on the
// same cluster only through shared(), but names stay unique anyway).
std::string unique(const std::string &stem) {
    static int n = 0;
    return stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

// The fake oned with the backup datastore 100, the image datastore 1 and the
// user alice (for restore, which allocates images as that user).
struct oned_env {
    oned::fake_oned server;
    std::string auth_file, cipher_file;
    int alice = -1;

    explicit oned_env(restic_fixture &f) {
        oned::datastore_record backup;
        backup.id = 100;
        backup.name = "restic";
        backup.type = "BACKUP_DS";
        for (const auto &[k, v] : std::map<std::string, std::string>{{"DS_MAD", "restic"},
                                                                     {"TM_MAD", "-"},
                                                                     {"BASE_PATH", f.base_path()},
                                                                     {"RESTIC_PASSWORD", k_password},
                                                                     {"RESTIC_SFTP_SERVER", "backupserver"},
                                                                     {"RESTIC_SFTP_USER", f.sshd().user()}})
            backup.attributes.set(k, v);
        server.add_datastore(backup);
        oned::datastore_record images;
        images.id = 1;
        images.name = "ceph";
        images.attributes.set("DS_MAD", "ceph");
        images.attributes.set("TM_MAD", "ceph");
        images.attributes.set("BASE_PATH", "/var/lib/one/datastores/1");
        server.add_datastore(images);
        alice = server.add_user("alice", "alice-secret");
        server.start();
        auth_file = f.dir().write("one_auth." + std::to_string(server.port()), server.oneadmin_session() + "\n");
        cipher_file =
            f.dir().write("onegate_auth." + std::to_string(server.port()), server.serveradmin_credentials() + "\n");
        fs::permissions(cipher_file, fs::perms::owner_read | fs::perms::owner_write);
    }
    std::map<std::string, std::string> host_cfg() const {
        return {{"oned_endpoint", server.endpoint()}, {"oned_auth_file", auth_file}, {"one_cipher_auth", cipher_file}};
    }
};

struct increment {
    int id = 0;
    std::string short_id;  // what backup printed (the image SOURCE)
    std::string file;      // disk.0.rbd2 or disk.0.<id>.rbdiff
    std::string expected;  // `rbd export` of the source image at one_backup_<id>
};

// VM 7 with one Ceph disk (disk 0) backed up in INCREMENT mode as the Ceph
// TM and our backup action do it.
class rbd_chain {
public:
    rbd_chain(restic_fixture &f, cluster &c) : f_(f), c_(c), image_(c.image(unique("one-0-7-0"))) {
        c_.rbd({"create", "--size", "16M", image_});
        work_ = f_.dir().file("rbd-work");
        fs::create_directories(work_);
    }

    const std::string &image() const { return image_; }
    const std::vector<increment> &increments() const { return incs_; }
    const increment &at(int k) const { return incs_.at(static_cast<std::size_t>(k)); }
    std::string backup_dir() const { return f_.backup_dir(7); }

    // Writes, snapshots, exports (full the first time, a diff after) into a
    // fresh backup folder and backs it up with one_ds_host.
    const increment &backup(const std::vector<std::string> &writes) {
        c_.write(image_, writes);
        increment inc;
        inc.id = static_cast<int>(incs_.size());
        const std::string snap = "one_backup_" + std::to_string(inc.id);
        c_.rbd({"snap", "create", image_ + "@" + snap});
        c_.rbd({"snap", "protect", image_ + "@" + snap});

        // prebackup: the folder is made anew with vm.xml and this increment's file.
        const std::string bk = backup_dir();
        fs::remove_all(bk);
        fs::create_directories(bk);
        std::ofstream(bk + "/vm.xml") << base64(stock::vm_document(7, {{0, 16, 2}})) << "\n";
        if (inc.id == 0) {
            inc.file = "disk.0.rbd2";
            c_.rbd({"export", "--export-format", "2", image_ + "@" + snap, bk + "/" + inc.file});
        } else {
            inc.file = "disk.0." + std::to_string(inc.id) + ".rbdiff";
            c_.rbd({"export-diff", "--from-snap", "one_backup_" + std::to_string(inc.id - 1), image_ + "@" + snap,
                    bk + "/" + inc.file});
            // ... and the TM drops the snapshot before it.
            const std::string old = image_ + "@one_backup_" + std::to_string(inc.id - 1);
            c_.rbd({"snap", "unprotect", old});
            c_.rbd({"snap", "rm", old});
        }
        inc.expected = work_ + "/expected." + std::to_string(inc.id);
        c_.rbd({"export", image_ + "@" + snap, inc.expected});

        const auto r =
            f_.host_action("backup", {"hypervisor:" + f_.vm_dir(7), "0", "one-7", "-", "7", "0"}, f_.document());
        BOOST_TEST_MESSAGE("backup " << inc.id << " stderr: " << r.err);
        BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "backup of increment " << inc.id << ": " << describe(r));
        std::smatch m;
        BOOST_REQUIRE_MESSAGE(std::regex_match(r.out, m, std::regex("([0-9a-f]{8}) [0-9]+ (raw|rbd)\n")),
                              "expected '<id> <size> <format>' from backup, got '" << r.out << "'");
        BOOST_TEST(m[2].str() == "rbd", "expected backup of " << inc.file << " to print the format rbd: " << r.out);
        inc.short_id = m[1];
        incs_.push_back(inc);
        return incs_.back();
    }

    // "0:a,1:b,..." with ids <= up_to.
    std::string chain_text(int up_to) const {
        std::string s;
        for (const auto &i : incs_)
            if (i.id <= up_to) s += (s.empty() ? "" : ",") + std::to_string(i.id) + ":" + i.short_id;
        return s;
    }
    std::string url(int up_to) const {
        return "restic+rbd://100//" + chain_text(up_to) + backup_dir() + "/" + at(up_to).file;
    }

    // The IMAGE oned sends for this backup image (FORMAT rbd, INCREMENT mode).
    std::string image_xml() const {
        std::ostringstream x;
        x << "<IMAGE><ID>42</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME>"
          << "<NAME>7 01-Jan 10.00.00</NAME><TYPE>6</TYPE><DISK_TYPE>0</DISK_TYPE><PERSISTENT>0</PERSISTENT>"
          << "<REGTIME>1704103200</REGTIME><SOURCE>" << incs_.front().short_id << "</SOURCE><PATH></PATH>"
          << "<FORMAT>rbd</FORMAT><FS></FS><SIZE>16</SIZE><STATE>1</STATE><DATASTORE_ID>100</DATASTORE_ID>"
          << "<DATASTORE>restic</DATASTORE><VMS><ID>7</ID></VMS><TEMPLATE></TEMPLATE><BACKUP_INCREMENTS>";
        for (const auto &i : incs_)
            x << "<INCREMENT><DATE>" << 1704103200 + 86400 * i.id << "</DATE><ID>" << i.id << "</ID><PARENT_ID>"
              << i.id - 1 << "</PARENT_ID><SIZE>16</SIZE><SOURCE>" << i.short_id << "</SOURCE><TYPE>"
              << (i.id == 0 ? "FULL" : "INCREMENT") << "</TYPE></INCREMENT>";
        x << "</BACKUP_INCREMENTS><BACKUP_DISK_IDS><ID>0</ID></BACKUP_DISK_IDS></IMAGE>";
        return x.str();
    }

private:
    restic_fixture &f_;
    cluster &c_;
    std::string image_, work_;
    std::vector<increment> incs_;
};

// Writes that touch new blocks, zero some, and overwrite one block shared by
// every increment, so that a chain applied out of order or incompletely
// gives a different image.
constexpr int k_mib = 1024 * 1024;
std::string op(char kind, int byte, long off, long len) {
    return std::string(1, kind) + "," + std::to_string(byte) + "," + std::to_string(off) + "," + std::to_string(len);
}
const std::vector<std::vector<std::string>> k_writes = {
    {op('w', 0x11, 0, 2 * k_mib), op('w', 0x12, 12 * k_mib, k_mib / 2)},
    {op('w', 0x21, 4 * k_mib, k_mib), op('w', 0x22, 64 * 1024, 64 * 1024), op('z', 0, 12 * k_mib, 128 * 1024)},
    {op('w', 0x31, 8 * k_mib, k_mib), op('w', 0x32, 64 * 1024, 64 * 1024), op('z', 0, k_mib, k_mib / 2)},
};

// What the Ceph side does with the tarball (docs/rbd.md): unpack it, then
// `rbd import --export-format 2` of the disk.*.rbd2 into a new image and
// `rbd import-diff` of each disk.*.*.rbdiff in increment order; it then
// drops the one_backup_* snapshots the import brought along. Returns the
// `rbd export` of the new image.
std::string import_as_ceph_does(restic_fixture &f, cluster &c, const std::string &tarball, const std::string &name,
                                std::vector<std::string> &members) {
    const std::string dir = f.dir().file("unpacked/" + name);
    fs::create_directories(dir);
    stock::must({tool("tar"), "-xzf", tarball, "-C", dir}, "tar -xzf " + tarball);
    std::string base;
    std::vector<std::pair<int, std::string>> diffs;
    members.clear();
    for (const auto &e : fs::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        members.push_back(n);
        std::smatch m;
        if (std::regex_match(n, std::regex(R"(disk\.[^.]+\.rbd2)")))
            base = e.path().string();
        else if (std::regex_match(n, m, std::regex(R"(disk\.[^.]+\.([0-9]+)\.rbdiff)")))
            diffs.emplace_back(std::stoi(m[1]), e.path().string());
    }
    std::sort(members.begin(), members.end());
    std::sort(diffs.begin(), diffs.end());
    if (base.empty()) throw std::runtime_error("no disk.*.rbd2 in the tarball: " + files_in(dir));
    const std::string target = c.image(unique("one-99"));
    // (The Ceph side feeds each file on stdin; a path is the same to rbd.)
    c.rbd({"import", "--export-format", "2", base, target});
    for (const auto &[id, file] : diffs) c.rbd({"import-diff", file, target});
    const std::string out = f.dir().file("imported." + name);
    c.rbd({"export", target, out});
    return out;
}

std::string read_all(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// "" when equal, else where they differ.
std::string byte_diff(const std::string &want_file, const std::string &got_file) {
    const auto want = read_all(want_file), got = read_all(got_file);
    if (want.size() != got.size())
        return "sizes differ: " + std::to_string(want.size()) + " expected, " + std::to_string(got.size()) + " got";
    const auto mm = std::mismatch(want.begin(), want.end(), got.begin());
    if (mm.first == want.end()) return "";
    return "first difference at byte " + std::to_string(mm.first - want.begin());
}

std::vector<std::string> expected_members(const rbd_chain &ch, int k) {
    std::vector<std::string> out;
    for (int i = 0; i <= k; ++i) out.push_back(ch.at(i).file);
    std::sort(out.begin(), out.end());
    return out;
}

std::string joined(const std::vector<std::string> &v) {
    std::string s;
    for (const auto &x : v) s += (s.empty() ? "" : ", ") + x;
    return "[" + s + "]";
}

}  // namespace

BOOST_AUTO_TEST_CASE(rbd_chain_downloads_import_into_a_new_image_equal_to_the_original) {
    restic_fixture f;
    cluster c;
    rbd_chain ch(f, c);
    for (const auto &w : k_writes) ch.backup(w);
    const std::string tmp = f.dir().file("restic-tmp");
    fs::create_directories(tmp);

    // ---- ls and restore name the chain with restic+rbd:// --------------------
    const std::string image = ch.image_xml();
    const auto ls = f.host_action("ls", {}, f.document({}, "<VM><ID>7</ID><NAME>vm7</NAME></VM>" + image));
    BOOST_TEST_REQUIRE(ls.exit_code == 0, describe(ls));
    const auto json = boost::json::parse(ls.out).as_object();
    BOOST_TEST_REQUIRE(json.contains("0"), ls.out);
    BOOST_TEST(std::string(json.at("0").as_string()) == ch.url(2), "ls: " << ls.out);

    {
        oned_env o(f);
        const std::string extra =
            "<DESTINATION_DS_ID>1</DESTINATION_DS_ID><TEMPLATE><USERNAME>alice</USERNAME><NAME>restored</NAME>"
            "<INCREMENT_ID>1</INCREMENT_ID></TEMPLATE>";
        const auto doc = oneds::common::base64_encode(f.document_with_image(image, {}, extra));
        const auto r = f.host_action("restore", {"5"}, doc, {}, {}, o.host_cfg());
        BOOST_TEST_REQUIRE(r.exit_code == 0, describe(r));
        std::smatch m;
        BOOST_TEST_REQUIRE(std::regex_match(r.out, m, std::regex("(-1|[0-9]+) ([0-9]+)\n?")), r.out);
        const auto img = o.server.image(std::stoi(m[2]));
        BOOST_TEST_REQUIRE(img.has_value());
        BOOST_TEST(img->attributes.get("PATH").value_or("<absent>") == ch.url(1),
                   "restore's image PATH for INCREMENT_ID 1");
    }

    // ---- each increment, streamed (--stdout) over SFTP, and with the stock
    //      command= / clean_command= lines on a LOCAL repository ----------------
    const std::map<std::string, std::optional<std::string>> sftp = {{"RESTIC_TMP_DIR", tmp}};
    const std::map<std::string, std::optional<std::string>> local = {
        {"RESTIC_TMP_DIR", tmp}, {"RESTIC_BACKEND", "LOCAL"}, {"RESTIC_SFTP_SERVER", std::nullopt}};
    for (int k = 0; k < 3; ++k) {
        BOOST_TEST_CONTEXT("increment " << k << ": " << ch.url(k)) {
            // --stdout, the backend over SFTP: tar runs on the backup server.
            const std::string tarball = f.dir().file("download/stdout." + std::to_string(k) + ".tar.gz");
            fs::create_directories(fs::path(tarball).parent_path());
            const auto d = f.host_action("downloader", {"--stdout", ch.url(k)}, f.datastore_xml(sftp));
            BOOST_TEST_MESSAGE("downloader stderr: " << d.err);
            BOOST_TEST_REQUIRE(d.exit_code == 0, describe(d));
            std::ofstream(tarball, std::ios::binary) << d.out;
            BOOST_TEST(d.out.substr(0, 2) == std::string("\x1f\x8b"), "expected a gzip stream");
            std::vector<std::string> members;
            const auto got = import_as_ceph_does(f, c, tarball, "stdout." + std::to_string(k), members);
            BOOST_TEST(joined(members) == joined(expected_members(ch, k)), "the tarball's members");
            BOOST_TEST(byte_diff(ch.at(k).expected, got) == "",
                       "the image imported from the download vs the original at one_backup_" << k);
            BOOST_TEST(fs::is_empty(tmp), "expected RESTIC_TMP_DIR empty after --stdout, got " << files_in(tmp));

            // The stock lines, the repository LOCAL: tar runs here.
            const auto l = f.host_action("downloader", {ch.url(k)}, f.datastore_xml(local));
            BOOST_TEST_REQUIRE(l.exit_code == 0, describe(l));
            const std::string target = f.dir().file("download/lines." + std::to_string(k) + ".tar.gz");
            const auto streamed =
                run_process({tool("bash"), "-c",
                             "eval \"$(printf '%s\\n' \"$ONEDS_OUT\" | grep -e '^command=' -e '^clean_command=')\"; "
                             "printf '%s\\n' \"$command\" >&2; eval \"$command\" > \"$ONEDS_TARGET\" && "
                             "eval \"$clean_command\""},
                            {}, {{"ONEDS_OUT", l.out}, {"ONEDS_TARGET", target}}, std::chrono::seconds(120));
            BOOST_TEST_REQUIRE(streamed.exit_code == 0, describe(streamed));
            BOOST_TEST(streamed.err.find(".tar.gz") != std::string::npos,
                       "expected command to cat a .tar.gz, got " << streamed.err);
            const auto got_l = import_as_ceph_does(f, c, target, "lines." + std::to_string(k), members);
            BOOST_TEST(joined(members) == joined(expected_members(ch, k)), "the tarball's members");
            BOOST_TEST(byte_diff(ch.at(k).expected, got_l) == "",
                       "the image imported from the download vs the original at one_backup_" << k);
            BOOST_TEST(fs::is_empty(tmp), "expected RESTIC_TMP_DIR empty after clean_command, got " << files_in(tmp));
        }
    }
}

BOOST_AUTO_TEST_CASE(rbd_tarball_keeps_the_stock_name) {
    restic_fixture f;
    cluster c;
    rbd_chain ch(f, c);
    ch.backup(k_writes[0]);
    ch.backup(k_writes[1]);
    const std::string tmp = f.dir().file("restic-tmp");
    fs::create_directories(tmp);
    const auto l = f.host_action("downloader", {ch.url(1)}, f.datastore_xml({{"RESTIC_TMP_DIR", tmp}}));
    BOOST_TEST_REQUIRE(l.exit_code == 0, describe(l));
    // disk.<idx>.<first character of the last snapshot id>.tar.gz, as stock.
    const std::string name = "disk.0." + ch.at(1).short_id.substr(0, 1) + ".tar.gz";
    BOOST_TEST(l.out.find("/" + name) != std::string::npos, "expected command to cat .../" << name << ": " << l.out);
    // Only the tarball is left for command to stream; clean_command removes it.
    std::vector<std::string> left;
    for (const auto &e : fs::recursive_directory_iterator(tmp))
        if (e.is_regular_file()) left.push_back(e.path().filename().string());
    BOOST_TEST(joined(left) == joined({name}), "expected only the tarball in RESTIC_TMP_DIR, got " << files_in(tmp));
    const auto cl = run_process({tool("bash"), "-c",
                                 "eval \"$(printf '%s\\n' \"$ONEDS_OUT\" | grep '^clean_command=')\"; "
                                 "eval \"$clean_command\""},
                                {}, {{"ONEDS_OUT", l.out}});
    BOOST_TEST(cl.exit_code == 0, describe(cl));
    BOOST_TEST(fs::is_empty(tmp), files_in(tmp));
}

BOOST_AUTO_TEST_CASE(rbd_download_failure_leaves_nothing_behind) {
    restic_fixture f;
    cluster c;
    rbd_chain ch(f, c);
    ch.backup(k_writes[0]);
    const std::string tmp = f.dir().file("restic-tmp");
    fs::create_directories(tmp);
    // A chain whose second snapshot does not exist.
    const std::string url =
        "restic+rbd://100//0:" + ch.at(0).short_id + ",1:deadbeef" + ch.backup_dir() + "/disk.0.1.rbdiff";
    const auto d = f.host_action("downloader", {"--stdout", url}, f.datastore_xml({{"RESTIC_TMP_DIR", tmp}}));
    BOOST_TEST(d.exit_code == 255, describe(d));
    BOOST_TEST(d.err.find("deadbeef") != std::string::npos, d.err);
    BOOST_TEST(d.out.empty(), "expected nothing streamed");
    BOOST_TEST(fs::is_empty(tmp), files_in(tmp));

    // A tar that fails after the pulls succeeded (LOCAL: tar runs here, a
    // failing one first in PATH): the pulled files and the work folder go too.
    const std::string bin = f.dir().file("failing-tar-bin");
    fs::create_directories(bin);
    f.dir().write("failing-tar-bin/tar", "#!/bin/sh\necho 'tar: simulated failure' >&2\nexit 2\n");
    fs::permissions(bin + "/tar", fs::perms::owner_all);
    const char *path = std::getenv("PATH");
    const auto t = f.host_action(
        "downloader", {"--stdout", ch.url(0)},
        f.datastore_xml({{"RESTIC_TMP_DIR", tmp}, {"RESTIC_BACKEND", "LOCAL"}, {"RESTIC_SFTP_SERVER", std::nullopt}}),
        {}, {{"PATH", bin + ":" + (path != nullptr ? path : "/usr/bin:/bin")}});
    BOOST_TEST(t.exit_code == 255, describe(t));
    BOOST_TEST(t.err.find("simulated failure") != std::string::npos, t.err);
    BOOST_TEST(t.out.empty(), "expected nothing streamed");
    BOOST_TEST(fs::is_empty(tmp), files_in(tmp));
}
