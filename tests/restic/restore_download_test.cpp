#define BOOST_TEST_MODULE restic_restore_download
// The restic:// downloader and the restore action through one_ds_host,
// against repositories written the stock driver's way
// (restore_stock_repo.hpp), with the real restic 0.14, sshd and qemu-img, and
// the fake oned (tests/oned) standing in for oned's XML-RPC API: the
// downloader reads the backup datastore with one.datastore.info, restore
// allocates images and a VM template. Expectations come from
// docs/stock-driver.md#the-restic-url-grammar, #restore and #downloader.
//
// The test plays downloader.sh: it keeps the command= and clean_command=
// lines, evals them in bash, streams "$command" into a file and runs
// "$clean_command" (production never involves a shell in our code; the
// stock downloader.sh does). An `ssh` wrapper first in PATH adds -F with the
// fixture's ssh_config, as the oneadmin account's own ~/.ssh/config would.
#include "tests/oned/fake_oned.hpp"
#include "tests/restic/restore_stock_repo.hpp"

#include "common/base64.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

using namespace oneds::test;
namespace fs = std::filesystem;
namespace oned = oneds::test::oned;

namespace {

std::string describe(const process_result &r) {
    return "exit " + std::to_string(r.exit_code) + (r.killed ? " (killed after the time limit)" : "") +
           "\n--- stdout ---\n" + r.out + "\n--- stderr ---\n" + r.err;
}

std::string joined(const std::vector<std::string> &s) {
    std::string out;
    for (const auto &x : s) out += (out.empty() ? "" : ", ") + x;
    return "[" + out + "]";
}

// The fake oned with the backup datastore 100 (the attributes of
// restic_fixture::document(), decrypted), the image datastore 1 and the user
// alice; the host reaches it through oned_endpoint / oned_auth_file, and
// restore through one_cipher_auth (serveradmin's credentials, as
// onegate_auth holds them).
struct oned_env {
    oned::fake_oned server;
    std::string auth_file;
    std::string cipher_file;
    int alice = -1;

    explicit oned_env(restic_fixture &f, const std::map<std::string, std::optional<std::string>> &tmpl = {}) {
        std::map<std::string, std::optional<std::string>> t = {
            {"DS_MAD", std::string("restic")},
            {"TM_MAD", std::string("-")},
            {"BASE_PATH", f.base_path()},
            {"RESTIC_PASSWORD", k_password},
            {"RESTIC_SFTP_SERVER", std::string("backupserver")},
            {"RESTIC_SFTP_USER", f.sshd().user()},
        };
        for (const auto &[k, v] : tmpl) t[k] = v;
        oned::datastore_record backup;
        backup.id = 100;
        backup.name = "restic";
        backup.type = "BACKUP_DS";
        for (const auto &[k, v] : t)
            if (v) backup.attributes.set(k, *v);
        server.add_datastore(backup);

        oned::datastore_record images;
        images.id = 1;
        images.name = "default";
        images.attributes.set("DS_MAD", "fs");
        images.attributes.set("TM_MAD", "ssh");
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

// ---- downloader.sh, played by the test ----------------------------------------

std::map<std::string, std::string> shell_env(restic_fixture &f, std::map<std::string, std::string> extra = {}) {
    const std::string bin = f.dir().file("bin");
    if (!fs::exists(bin + "/ssh")) {
        fs::create_directories(bin);
        f.dir().write("bin/ssh",
                      "#!/bin/sh\nexec " + tool("ssh") + " -F '" + f.sshd().ssh_config_file().string() + "' \"$@\"\n");
        fs::permissions(bin + "/ssh", fs::perms::owner_all);
    }
    const char *path = std::getenv("PATH");
    extra["PATH"] = bin + ":" + (path != nullptr ? path : "/usr/bin:/bin");
    return extra;
}

process_result bash(restic_fixture &f, const std::string &script, const std::map<std::string, std::string> &env) {
    return run_process({tool("bash"), "-c", script}, {}, shell_env(f, env), std::chrono::seconds(300));
}

struct download {
    process_result action;  // one_ds_host action restic downloader <url>
    std::string lines;      // its command= and clean_command= lines
    int command_lines = 0, clean_lines = 0;
    std::string command, clean_command;  // their values after eval
    std::string tmp_path;                // the file command cats
    process_result stream;               // eval "$command" > target
};

// Runs the downloader and, when it printed its two lines, streams the image
// into target. Does not run clean_command (see clean()).
download run_download(restic_fixture &f, const oned_env &o, const std::string &url, const std::string &target) {
    download d;
    d.action = f.host_action("downloader", {url}, "", {}, {}, o.host_cfg());
    std::istringstream in(d.action.out);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("command=", 0) == 0)
            ++d.command_lines;
        else if (line.rfind("clean_command=", 0) == 0)
            ++d.clean_lines;
        else
            continue;
        d.lines += line + "\n";
    }
    if (d.action.exit_code != 0 || d.command_lines == 0) return d;
    const auto values =
        bash(f, "eval \"$ONEDS_LINES\"; printf '%s\\n%s' \"$command\" \"$clean_command\"", {{"ONEDS_LINES", d.lines}});
    const auto nl = values.out.find('\n');
    d.command = values.out.substr(0, nl);
    d.clean_command = nl == std::string::npos ? std::string() : values.out.substr(nl + 1);
    const auto last = bash(f, "eval \"set -- $ONEDS_CMD\"; printf '%s' \"${@: -1}\"", {{"ONEDS_CMD", d.command}});
    d.tmp_path = last.out;
    // The remote command is one argument quoted for the remote shell: unquote
    // it the way that shell will, then drop the leading "cat".
    if (d.tmp_path.find_first_of("'\"\\") != std::string::npos)
        d.tmp_path = bash(f, "eval \"set -- $ONEDS_ARG\"; printf '%s' \"$*\"", {{"ONEDS_ARG", d.tmp_path}}).out;
    if (d.tmp_path.rfind("cat ", 0) == 0) d.tmp_path = d.tmp_path.substr(4);
    if (!target.empty()) {
        fs::create_directories(fs::path(target).parent_path());
        d.stream = bash(f, "eval \"$ONEDS_LINES\"; eval \"$command\" > \"$ONEDS_TARGET\"",
                        {{"ONEDS_LINES", d.lines}, {"ONEDS_TARGET", target}});
    }
    return d;
}

process_result clean(restic_fixture &f, const download &d) {
    return bash(f, "eval \"$ONEDS_LINES\"; eval \"$clean_command\"", {{"ONEDS_LINES", d.lines}});
}

// The downloader printed the stock lines (docs/stock-driver.md#downloader, SFTP):
//   command="ssh ... '<user>@<server>' cat '<tmp_path>'"
//   clean_command="ssh ... '<user>@<server>' rm -rf '<tmp_dir>/'"
// and the streamed image is there. Returns false (after failing the test)
// when there is nothing to go on.
bool check_stock_lines(restic_fixture &f, const download &d) {
    BOOST_TEST_MESSAGE("downloader stdout:\n" << d.action.out << "downloader stderr: " << d.action.err);
    BOOST_TEST(d.action.exit_code == 0, "expected the downloader to succeed: " << describe(d.action));
    BOOST_TEST((d.command_lines == 1 && d.clean_lines == 1),
               "expected one command= and one clean_command= line on stdout, got: " << d.action.out);
    if (d.action.exit_code != 0 || d.command_lines != 1) return false;
    const std::string who = f.sshd().user() + "@backupserver";
    BOOST_TEST((d.command.find("ssh") != std::string::npos && d.command.find(who) != std::string::npos &&
                d.command.find("cat") != std::string::npos),
               "expected command to be \"ssh ... '" << who << "' cat '<tmp path>'\", got: " << d.command);
    BOOST_TEST(
        (d.clean_command.find("ssh") != std::string::npos && d.clean_command.find(who) != std::string::npos &&
         d.clean_command.find("rm") != std::string::npos),
        "expected clean_command to be \"ssh ... '" << who << "' rm -rf '<tmp dir>/'\", got: " << d.clean_command);
    BOOST_TEST(fs::path(d.tmp_path).is_absolute(),
               "expected command to cat an absolute path, got '" << d.tmp_path << "'");
    BOOST_TEST(d.stream.exit_code == 0, "expected \"$command\" to stream the image: " << describe(d.stream));
    return d.stream.exit_code == 0;
}

// The entry directly under root that holds path (the per-download temporary
// directory), or path itself.
fs::path entry_under(const fs::path &root, const fs::path &path) {
    const auto rel = path.lexically_relative(root);
    if (rel.empty() || *rel.begin() == "..") return path;
    return root / *rel.begin();
}

std::string dirs_and_files(const std::string &dir) {
    std::vector<std::string> out;
    std::error_code ec;
    if (fs::exists(dir, ec))
        for (const auto &e : fs::recursive_directory_iterator(dir, ec)) out.push_back(e.path().string());
    return joined(out);
}

}  // namespace

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(downloader)

BOOST_AUTO_TEST_CASE(download_of_a_full_backup_equals_the_source_disk) {
    restic_fixture f;
    oned_env o(f);  // RESTIC_TMP_DIR unset: /var/tmp (docs/stock-driver.md#datastore-attributes)
    stock::chain c(f, 7, {{0, 16, 2}, {1, 8, 1}});
    c.backup();
    const std::string url = "restic://100//0:" + c.at(0).short_id + c.backup_dir() + "/disk.0.0";
    BOOST_TEST(url == c.url(0, 0));
    const std::string target = f.dir().file("download/disk.0.0");
    const auto d = run_download(f, o, url, target);
    if (!check_stock_lines(f, d)) return;

    BOOST_TEST(d.tmp_path.rfind("/var/tmp/", 0) == 0u,
               "expected the default RESTIC_TMP_DIR /var/tmp, got " << d.tmp_path);
    BOOST_TEST(fs::exists(d.tmp_path), "expected the pulled image at " << d.tmp_path << " before clean_command");
    const auto cmp = run_process({tool("qemu-img"), "compare", c.source_image(0, 0), target});
    BOOST_TEST(cmp.exit_code == 0,
               "expected qemu-img compare <source disk.0.0> <download> to find them equal: " << describe(cmp));
    BOOST_TEST(stock::compare_images(c.expected_image(0, 0), target) == "");

    const auto cl = clean(f, d);
    BOOST_TEST(cl.exit_code == 0, "expected clean_command to succeed: " << describe(cl));
    const auto tmp_dir = entry_under("/var/tmp", d.tmp_path);
    BOOST_TEST(!fs::exists(tmp_dir), "expected clean_command to remove " << tmp_dir);
    std::error_code ec;
    if (tmp_dir != "/var/tmp" && tmp_dir.string().rfind("/var/tmp/", 0) == 0) fs::remove_all(tmp_dir, ec);  // no litter
}

BOOST_AUTO_TEST_CASE(download_of_increment_k_yields_the_disk_as_it_was_at_k) {
    restic_fixture f;
    const std::string tmp = f.dir().file("restic-tmp");
    fs::create_directories(tmp);
    oned_env o(f, {{"RESTIC_TMP_DIR", tmp}});
    stock::chain c(f, 7, {{0, 16, 2}, {1, 8, 1}});
    c.backup(4);
    for (int k = 0; k < 4; ++k) {
        for (const auto &disk : c.disks()) {
            BOOST_TEST_CONTEXT("disk " << disk.id << " at increment " << k << ": " << c.url(disk.id, k)) {
                const std::string target =
                    f.dir().file("download/disk." + std::to_string(disk.id) + "." + std::to_string(k));
                const auto d = run_download(f, o, c.url(disk.id, k), target);
                if (!check_stock_lines(f, d)) continue;
                // A standalone qcow2 (the chain converted, docs/stock-driver.md#downloader step 3).
                BOOST_TEST(stock::compare_images(c.expected_image(disk.id, k), target) == "");
                const auto cl = clean(f, d);
                BOOST_TEST(cl.exit_code == 0, describe(cl));
                BOOST_TEST(fs::is_empty(tmp),
                           "expected RESTIC_TMP_DIR empty after clean_command, got " << dirs_and_files(tmp));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(download_from_a_job_repository) {
    restic_fixture f;
    const std::string tmp = f.dir().file("restic-tmp");
    fs::create_directories(tmp);
    oned_env o(f, {{"RESTIC_TMP_DIR", tmp}});
    stock::chain c(f, 12, {{0, 8, 1}}, 5), other(f, 13, {{0, 8, 1}}, 5);
    c.backup(2);
    other.backup();
    const std::string url = c.url(0, 1);
    BOOST_TEST(url.rfind("restic://100/5/0:", 0) == 0u);
    const auto d = run_download(f, o, url, f.dir().file("download/job"));
    if (!check_stock_lines(f, d)) return;
    BOOST_TEST(stock::compare_images(c.expected_image(0, 1), f.dir().file("download/job")) == "");
    BOOST_TEST(clean(f, d).exit_code == 0);
    BOOST_TEST(fs::is_empty(tmp), dirs_and_files(tmp));
}

BOOST_AUTO_TEST_CASE(restic_tmp_dir_is_honoured_and_left_empty_even_after_a_failed_download) {
    restic_fixture f;
    const std::string tmp = f.dir().file("restic-tmp");
    fs::create_directories(tmp);
    oned_env o(f, {{"RESTIC_TMP_DIR", tmp}});
    stock::chain c(f, 7, {{0, 16, 2}});
    c.backup(2);

    const auto d = run_download(f, o, c.url(0, 1), f.dir().file("download/disk.0.1"));
    if (check_stock_lines(f, d)) {
        BOOST_TEST(d.tmp_path.rfind(tmp + "/", 0) == 0u,
                   "expected the pulled image under RESTIC_TMP_DIR " << tmp << ", got " << d.tmp_path);
        BOOST_TEST(fs::exists(d.tmp_path), "expected the pulled image at " << d.tmp_path << " before clean_command");
        BOOST_TEST(stock::compare_images(c.expected_image(0, 1), f.dir().file("download/disk.0.1")) == "");
    }
    if (d.clean_lines == 1) {
        const auto cl = clean(f, d);
        BOOST_TEST(cl.exit_code == 0, describe(cl));
        BOOST_TEST(fs::is_empty(tmp), "expected RESTIC_TMP_DIR empty after clean_command, got " << dirs_and_files(tmp));
    }
    if (!fs::is_empty(tmp)) {  // so that the checks below see only what the failed downloads leave
        BOOST_TEST_MESSAGE("emptying RESTIC_TMP_DIR: " << dirs_and_files(tmp));
        for (const auto &e : fs::directory_iterator(tmp)) fs::remove_all(e.path());
    }

    // A snapshot that does not exist, alone or after one that does.
    const std::vector<std::string> bad = {
        "restic://100//0:deadbeef" + c.backup_dir() + "/disk.0.0",
        "restic://100//0:" + c.at(0).short_id + ",1:deadbeef" + c.backup_dir() + "/disk.0.1",
    };
    for (const auto &url : bad) {
        BOOST_TEST_CONTEXT(url) {
            const auto failed = run_download(f, o, url, {});
            BOOST_TEST(failed.action.exit_code == 255, "expected exit 255: " << describe(failed.action));
            BOOST_TEST(failed.command_lines == 0,
                       "expected no command= line (downloader.sh must fail), got: " << failed.action.out);
            BOOST_TEST(failed.action.err.find("deadbeef") != std::string::npos,
                       "expected the error to name the missing snapshot deadbeef, got: " << failed.action.err);
            BOOST_TEST(fs::is_empty(tmp),
                       "expected nothing left in RESTIC_TMP_DIR after a failed download, got " << dirs_and_files(tmp));
        }
    }
}

// Beyond the stock driver, whose command lines break here too: "$command" is
// eval'ed by downloader.sh AND re-split by the remote shell that ssh hands
// the joined arguments to, so a path needs quoting for both.
BOOST_AUTO_TEST_CASE(restic_tmp_dir_with_a_blank_survives_both_shells) {
    restic_fixture f;
    const std::string tmp = f.dir().file("restic tmp");
    fs::create_directories(tmp);
    oned_env o(f, {{"RESTIC_TMP_DIR", tmp}});
    stock::chain c(f, 7, {{0, 16, 2}});
    c.backup(2);
    const auto d = run_download(f, o, c.url(0, 1), f.dir().file("download/disk.0.1"));
    if (check_stock_lines(f, d)) {
        BOOST_TEST(d.tmp_path.rfind(tmp + "/", 0) == 0u,
                   "expected the pulled image under '" << tmp << "', got '" << d.tmp_path << "'");
        BOOST_TEST(stock::compare_images(c.expected_image(0, 1), f.dir().file("download/disk.0.1")) == "");
    }
    if (d.clean_lines == 1) {
        const auto cl = clean(f, d);
        BOOST_TEST(cl.exit_code == 0, describe(cl));
    }
    BOOST_TEST(fs::is_empty(tmp), "expected RESTIC_TMP_DIR empty after clean_command, got " << dirs_and_files(tmp));
}

// restic+rbd:// is served as stock serves it: the chain's files packed in a
// gzip tar (docs/rbd.md; tests/restic/rbd_test.cpp imports real Ceph chains).
// Here the scheme alone decides, whatever the files are.
BOOST_AUTO_TEST_CASE(restic_rbd_url_is_served_as_a_tarball) {
    restic_fixture f;
    const std::string tmp = f.dir().file("restic-tmp");
    fs::create_directories(tmp);
    oned_env o(f, {{"RESTIC_TMP_DIR", tmp}});
    stock::chain c(f, 7, {{0, 8, 1}});
    c.backup();
    const std::string target = f.dir().file("download/rbd");
    const auto d = run_download(f, o, c.url(c.disk_path(0, 0), 0, "restic+rbd"), target);
    if (check_stock_lines(f, d)) {
        BOOST_TEST(d.tmp_path.ends_with(".tar.gz"), "expected command to cat a .tar.gz, got " << d.tmp_path);
        const auto list = run_process({tool("tar"), "-tzf", target});
        BOOST_TEST(list.out == "disk.0.0\n", "expected the tarball to hold disk.0.0 alone: " << describe(list));
        BOOST_TEST(clean(f, d).exit_code == 0);
    }
    BOOST_TEST(fs::is_empty(tmp), dirs_and_files(tmp));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
// docs/stock-driver.md#restore: images (and a VM template) in oned for a backup image.
BOOST_AUTO_TEST_SUITE(restore)

namespace {

std::string restore_extra(const std::map<std::string, std::string> &options, int destination = 1) {
    std::string x = "<DESTINATION_DS_ID>" + std::to_string(destination) + "</DESTINATION_DS_ID><TEMPLATE>";
    for (const auto &[k, v] : options) x += "<" + k + "><![CDATA[" + v + "]]></" + k + ">";
    return x + "</TEMPLATE>";
}

// No line the host writes holds serveradmin's password or a login token
// (the host runs with log_level debug).
void check_no_cipher_secret(const oned_env &o, const process_result &r) {
    const auto creds = o.server.serveradmin_credentials();
    const auto password = creds.substr(creds.find(':') + 1);
    for (const auto *text : {&r.out, &r.err}) {
        BOOST_TEST(text->find(password) == std::string::npos, "serveradmin's password in the output: " << *text);
        BOOST_TEST(text->find("serveradmin:alice:") == std::string::npos, "a login session in the output: " << *text);
        BOOST_TEST(text->find("serveradmin:carol:") == std::string::npos, "a login session in the output: " << *text);
    }
}

process_result run_restore(restic_fixture &f, const oned_env &o, const std::string &image, const std::string &extra,
                           const std::map<std::string, std::string> &plugin_cfg = {},
                           const std::map<std::string, std::string> &host_cfg = {}) {
    const auto doc = oneds::common::base64_encode(f.document_with_image(image, {}, extra));
    auto cfg = o.host_cfg();
    for (const auto &[k, v] : host_cfg) cfg[k] = v;
    const auto r = f.host_action("restore", {"5"}, doc, plugin_cfg, {}, cfg);
    BOOST_TEST_MESSAGE("restore stderr: " << r.err);
    check_no_cipher_secret(o, r);
    return r;
}

struct restored {
    int template_id = -2;
    std::vector<int> images;
};

// "<template_id or -1> <image_id> <image_id>..."
restored parse_restore(const process_result &r) {
    std::smatch m;
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "expected restore to succeed: " << describe(r));
    BOOST_REQUIRE_MESSAGE(std::regex_match(r.out, m, std::regex("(-1|[0-9]+)((?: [0-9]+)+)\n?")),
                          "expected stdout '<template_id or -1> <image_id>...', got '" << r.out << "'");
    restored out;
    out.template_id = std::stoi(m[1]);
    std::istringstream ids(m[2]);
    for (int id; ids >> id;) out.images.push_back(id);
    return out;
}

std::string value_of(const oned::one_template &t, const std::string &name) { return t.get(name).value_or("<absent>"); }

// The image restored for disk n: named "<base>-disk-<n>", in datastore 1,
// owned by alice, with the stock attributes.
void check_image(const oned_env &o, int id, const std::string &base, int n, const std::string &url,
                 std::optional<int> job = std::nullopt) {
    BOOST_TEST_CONTEXT("image " << id << " for disk " << n) {
        const auto img = o.server.image(id);
        BOOST_REQUIRE_MESSAGE(img, "image " << id << " printed on stdout was not allocated in oned");
        BOOST_TEST(img->name == base + "-disk-" + std::to_string(n));
        BOOST_TEST(img->datastore_id == 1, "expected the image in DESTINATION_DS_ID 1, got " << img->datastore_id);
        BOOST_TEST(value_of(img->attributes, "TYPE") == (n == 0 ? "OS" : "DATABLOCK"));
        BOOST_TEST(value_of(img->attributes, "PATH") == url);
        BOOST_TEST(value_of(img->attributes, "FROM_BACKUP_DS") == "100");
        if (job)
            BOOST_TEST(value_of(img->attributes, "BACKUP_JOB_ID") == std::to_string(*job));
        else
            BOOST_TEST(!img->attributes.contains("BACKUP_JOB_ID"), "a per-VM backup has no BACKUP_JOB_ID");
        BOOST_TEST(img->uid == o.alice,
                   "expected the image owned by USERNAME alice (uid " << o.alice << "), got uid " << img->uid);
        BOOST_TEST(img->gid == 1, "expected the image in alice's group (1), got gid " << img->gid);
        BOOST_TEST_MESSAGE("allocate template of image " << id << ":\n" << img->allocate_template);
    }
}

std::vector<const oned::template_attribute *> vectors(const oned::one_template &t, const std::string &name) {
    std::vector<const oned::template_attribute *> out;
    for (const auto *a : t.all(name))
        if (a->vector) out.push_back(a);
    return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(restore_creates_one_image_per_disk_and_a_vm_template) {
    restic_fixture f;
    oned_env o(f);
    const std::vector<stock::disk> disks = {{0, 16, 2}, {1, 8, 1}};
    stock::chain c(f, 7, disks);
    c.set_vm_xml(stock::vm_document(7, disks, true));
    c.set_tpm(true);
    c.backup(4);

    const auto r = run_restore(f, o, c.image_xml(), restore_extra({{"USERNAME", "alice"}, {"NAME", "restored"}}));
    const auto got = parse_restore(r);
    BOOST_REQUIRE_MESSAGE(got.images.size() == 2u,
                          "expected 2 image ids on stdout (one per disk), got '" << r.out << "'");
    BOOST_TEST(o.server.images().size() == 2u, "expected exactly 2 images allocated in oned");
    check_image(o, got.images[0], "restored", 0, c.url(0, 3));
    check_image(o, got.images[1], "restored", 1, c.url(1, 3));

    const auto t = o.server.vm_template(got.template_id);
    BOOST_REQUIRE_MESSAGE(t, "template " << got.template_id << " printed on stdout was not allocated in oned");
    BOOST_TEST_MESSAGE("VM template:\n" << t->body);
    BOOST_TEST(t->name == "restored");
    BOOST_TEST(t->uid == o.alice, "expected the template owned by alice, got uid " << t->uid);
    const auto disk_vectors = vectors(t->attributes, "DISK");
    std::set<std::string> image_ids;
    for (const auto *d : disk_vectors) image_ids.insert(d->get("IMAGE_ID").value_or("<none>"));
    const std::set<std::string> want_ids = {std::to_string(got.images[0]), std::to_string(got.images[1])};
    BOOST_TEST((image_ids == want_ids), "expected the template's DISKs to use the new images "
                                            << got.images[0] << ", " << got.images[1] << ", got " << t->body);
    const auto nics = vectors(t->attributes, "NIC");
    BOOST_TEST(nics.size() == 1u, "expected the NIC kept without NO_NIC, got " << t->body);
    if (!nics.empty()) BOOST_TEST(nics[0]->get("IP").value_or("") == "10.0.0.7");
    BOOST_TEST(!vectors(t->attributes, "GRAPHICS").empty(), "expected GRAPHICS kept, got " << t->body);
    BOOST_TEST(!vectors(t->attributes, "OS").empty(), "expected OS kept, got " << t->body);
    BOOST_TEST(!vectors(t->attributes, "CONTEXT").empty(), "expected CONTEXT kept, got " << t->body);
    for (const auto *g : vectors(t->attributes, "GRAPHICS"))
        BOOST_TEST(!g->get("PORT"), "expected GRAPHICS/PORT stripped, got " << t->body);
    for (const auto *os : vectors(t->attributes, "OS"))
        BOOST_TEST(!os->get("UUID"), "expected OS/UUID stripped, got " << t->body);
    for (const auto *ctx : vectors(t->attributes, "CONTEXT"))
        for (const auto &[k, v] : ctx->pairs)
            BOOST_TEST(k.rfind("ETH", 0) != 0u, "expected CONTEXT/ETH* stripped, got " << k << " in " << t->body);
    BOOST_TEST(value_of(t->attributes, "DESCRIPTION") == "stock test VM 7", "expected USER_TEMPLATE merged in");
    const auto tpm = oneds::common::base64_decode(value_of(t->attributes, "TPM_STATE"));
    BOOST_TEST((tpm && *tpm == c.at(3).tpm), "expected TPM_STATE = base64 of the last snapshot's disk.tpm.0");

    // Made by alice herself (a server_cipher login, as the stock restore),
    // never given to her afterwards.
    const auto calls = o.server.calls();
    BOOST_TEST(calls.size() == 3u, "expected 2 image and 1 template allocations, got " << calls.size());
    for (const auto &call : calls) {
        BOOST_TEST(call.user == "alice", call.method << " ran as '" << call.user << "', expected alice");
        BOOST_TEST(call.method.find("chown") == std::string::npos, "unexpected " << call.method);
        BOOST_TEST(call.method != "one.userpool.info");
    }
    BOOST_TEST(t->gid == 1, "expected the template in alice's group, got gid " << t->gid);
}

BOOST_AUTO_TEST_CASE(restore_of_an_increment_uses_the_chain_up_to_it) {
    restic_fixture f;
    oned_env o(f);
    const std::vector<stock::disk> disks = {{0, 16, 2}, {1, 8, 1}};
    stock::chain c(f, 7, disks);
    c.set_vm_xml(stock::vm_document(7, disks, true));
    c.set_tpm(true);
    c.backup(4);
    // No NAME: the base is "<vm id>-<selected snapshot>".
    const auto r = run_restore(f, o, c.image_xml(), restore_extra({{"USERNAME", "alice"}, {"INCREMENT_ID", "1"}}));
    const auto got = parse_restore(r);
    BOOST_REQUIRE(got.images.size() == 2u);
    const std::string base = "7-" + c.at(1).short_id;
    check_image(o, got.images[0], base, 0, c.url(0, 1));
    check_image(o, got.images[1], base, 1, c.url(1, 1));
    const auto t = o.server.vm_template(got.template_id);
    BOOST_REQUIRE_MESSAGE(t, "no template " << got.template_id << " in oned");
    BOOST_TEST(t->name == base);
    const auto tpm = oneds::common::base64_decode(value_of(t->attributes, "TPM_STATE"));
    BOOST_TEST((tpm && *tpm == c.at(1).tpm), "expected TPM_STATE from increment 1's disk.tpm.0");
}

BOOST_AUTO_TEST_CASE(restore_of_one_disk_creates_only_its_image_and_no_template) {
    restic_fixture f;
    oned_env o(f);
    stock::chain c(f, 7, {{0, 16, 2}, {1, 8, 1}});
    c.backup(2);
    const auto r =
        run_restore(f, o, c.image_xml(), restore_extra({{"USERNAME", "alice"}, {"NAME", "one"}, {"DISK_ID", "1"}}));
    const auto got = parse_restore(r);
    BOOST_TEST(got.template_id == -1, "expected '-1' for the template with DISK_ID, got '" << r.out << "'");
    BOOST_REQUIRE_MESSAGE(got.images.size() == 1u, "expected one image id, got '" << r.out << "'");
    check_image(o, got.images[0], "one", 1, c.url(1, 1));
    BOOST_TEST(o.server.images().size() == 1u);
    BOOST_TEST(o.server.vm_templates().empty(), "expected no VM template with DISK_ID");
}

BOOST_AUTO_TEST_CASE(restore_with_no_nic_drops_the_nics_and_with_no_ip_their_addresses) {
    restic_fixture f;
    oned_env o(f);
    stock::chain c(f, 7, {{0, 8, 1}});
    c.backup();
    auto got = parse_restore(
        run_restore(f, o, c.image_xml(), restore_extra({{"USERNAME", "alice"}, {"NAME", "nonic"}, {"NO_NIC", "YES"}})));
    auto t = o.server.vm_template(got.template_id);
    BOOST_REQUIRE(t);
    BOOST_TEST(vectors(t->attributes, "NIC").empty(), "expected no NIC with NO_NIC=YES, got " << t->body);

    got = parse_restore(
        run_restore(f, o, c.image_xml(), restore_extra({{"USERNAME", "alice"}, {"NAME", "noip"}, {"NO_IP", "YES"}})));
    t = o.server.vm_template(got.template_id);
    BOOST_REQUIRE(t);
    const auto nics = vectors(t->attributes, "NIC");
    BOOST_TEST(nics.size() == 1u, "expected the NIC kept with NO_IP=YES, got " << t->body);
    for (const auto *n : nics) {
        BOOST_TEST(!n->get("IP"), "expected NIC/IP stripped with NO_IP=YES, got " << t->body);
        BOOST_TEST(!n->get("MAC"), "expected NIC/MAC stripped with NO_IP=YES, got " << t->body);
    }
}

BOOST_AUTO_TEST_CASE(restore_stops_at_the_first_refused_image_and_names_the_restored_ones) {
    restic_fixture f;
    oned_env o(f);
    stock::chain c(f, 7, {{0, 8, 1}, {1, 8, 1}});
    c.backup();
    o.server.refuse_image_allocation_from(2);
    const auto r = run_restore(f, o, c.image_xml(), restore_extra({{"USERNAME", "alice"}, {"NAME", "half"}}));
    BOOST_TEST(r.exit_code == 255, "expected exit 255 when oned refuses the second image: " << describe(r));
    BOOST_TEST(r.out.empty(), "expected no stdout on error, got '" << r.out << "'");
    const auto images = o.server.images();
    BOOST_REQUIRE_MESSAGE(images.size() == 1u, "expected exactly the first image allocated, got " << images.size());
    BOOST_TEST(r.err.find("Error restoring disk image") != std::string::npos,
               "expected 'Error restoring disk image: <oned's message>', got: " << r.err);
    BOOST_TEST(r.err.find("Not enough free space") != std::string::npos, "expected oned's reason, got: " << r.err);
    BOOST_TEST(r.err.find("The following images were restored: " + std::to_string(images[0].id)) != std::string::npos,
               "expected 'The following images were restored: " << images[0].id << "', got: " << r.err);
    BOOST_TEST(o.server.vm_templates().empty(), "expected no VM template after a failed image");
}

BOOST_AUTO_TEST_CASE(restore_of_a_job_backup_carries_the_job_id) {
    restic_fixture f;
    oned_env o(f);
    stock::chain c(f, 12, {{0, 8, 1}}, 5);
    c.backup(2);
    // Restore needs the cipher auth file only, not oned_auth_file's credentials.
    const auto got =
        parse_restore(run_restore(f, o, c.image_xml(), restore_extra({{"USERNAME", "alice"}, {"NAME", "j"}}), {},
                                  {{"oned_auth_file", f.dir().file("no-such-one_auth")}}));
    BOOST_REQUIRE(got.images.size() == 1u);
    BOOST_TEST(c.url(0, 1).rfind("restic://100/5/", 0) == 0u);
    check_image(o, got.images[0], "j", 0, c.url(0, 1), 5);
}

// oned applies alice's quota: 1 image in datastore 1. The second disk is
// refused with oned's text, and the first is named.
BOOST_AUTO_TEST_CASE(restore_stops_at_the_users_image_quota) {
    restic_fixture f;
    oned_env o(f);
    stock::chain c(f, 7, {{0, 8, 1}, {1, 8, 1}});
    c.backup();
    o.server.set_image_quota(o.alice, 1, 1);
    const auto r = run_restore(f, o, c.image_xml(), restore_extra({{"USERNAME", "alice"}, {"NAME", "q"}}));
    BOOST_TEST(r.exit_code == 255, describe(r));
    const auto images = o.server.images();
    BOOST_REQUIRE_MESSAGE(images.size() == 1u, "expected the first image only, got " << images.size());
    BOOST_TEST(images[0].uid == o.alice);
    const std::string uid = std::to_string(o.alice);
    const std::string want = "Error restoring disk image: one.image.allocate: [one.image.allocate] User [" + uid +
                             "] : user [" + uid +
                             "] limit of 1 reached for IMAGES quota in DATASTORE with ID: 1. (code 512) The "
                             "following images were restored: " +
                             std::to_string(images[0].id);
    BOOST_TEST(r.err.find(want) != std::string::npos, "expected '" << want << "', got: " << r.err);
    BOOST_TEST(o.server.vm_templates().empty());
}

// A NIC with a MAC and no IP keeps its MAC in the restored template. NIC/MAC
// is one of oned's restricted attributes: refused for alice, accepted for
// carol of group oneadmin.
BOOST_AUTO_TEST_CASE(restore_of_a_restricted_attribute_is_refused_outside_group_oneadmin) {
    restic_fixture f;
    oned_env o(f);
    const std::vector<stock::disk> disks = {{0, 8, 1}};
    stock::chain c(f, 7, disks);
    c.set_vm_xml(std::regex_replace(stock::vm_document(7, disks), std::regex("<IP>[^<]*</IP>"), ""));
    c.backup();
    auto r = run_restore(f, o, c.image_xml(), restore_extra({{"USERNAME", "alice"}, {"NAME", "mac"}}));
    BOOST_TEST(r.exit_code == 255, describe(r));
    BOOST_REQUIRE_EQUAL(o.server.images().size(), 1u);
    const std::string want = "Error creating VM template: one.template.allocate: [one.template.allocate] User [" +
                             std::to_string(o.alice) +
                             "] : VM Template includes a restricted attribute MAC. (code 512) The following "
                             "images were restored: " +
                             std::to_string(o.server.images()[0].id);
    BOOST_TEST(r.err.find(want) != std::string::npos, "expected '" << want << "', got: " << r.err);
    BOOST_TEST(o.server.vm_templates().empty());

    const int carol = o.server.add_user("carol", "carol-secret", 0);
    const auto got =
        parse_restore(run_restore(f, o, c.image_xml(), restore_extra({{"USERNAME", "carol"}, {"NAME", "mac-admin"}})));
    const auto t = o.server.vm_template(got.template_id);
    BOOST_REQUIRE(t);
    BOOST_TEST(t->uid == carol);
    BOOST_TEST(t->gid == 0);
    const auto nics = vectors(t->attributes, "NIC");
    BOOST_REQUIRE_EQUAL(nics.size(), 1u);
    BOOST_TEST(nics[0]->get("MAC").value_or("") == "02:00:0a:00:00:07", t->body);
}

// The cipher auth file missing, unreachable or malformed: a clear error that
// names the file and the fix, before any restic or oned call.
BOOST_AUTO_TEST_CASE(restore_without_usable_cipher_credentials_starts_nothing) {
    restic_fixture f;
    oned_env o(f);
    stock::chain c(f, 7, {{0, 8, 1}});
    c.backup();
    const std::string marker = f.dir().file("restic-ran");
    const std::string wrapper = f.dir().write(
        "restic-wrapper", "#!/bin/sh\necho ran >> '" + marker + "'\nexec " + tool("restic") + " \"$@\"\n");
    fs::permissions(wrapper, fs::perms::owner_all);
    const std::map<std::string, std::string> plugin = {{"restic_bin", wrapper}, {"remote_restic_bin", wrapper}};
    const std::string blocker = f.dir().write("not-a-dir", "x");
    const struct {
        std::string name, file, problem;
    } cases[] = {
        {"missing", f.dir().file("absent/onegate_auth"), "does not exist"},
        {"unreachable", blocker + "/onegate_auth", "cannot be reached"},
        {"a directory", f.dir().path().string(), "is a directory"},
        {"malformed", f.dir().write("malformed", "serveradmin no-colon-secret-value\n"), "is malformed"},
        {"empty", f.dir().write("empty", "\n"), "is empty"},
    };
    for (const auto &bad : cases) {
        BOOST_TEST_CONTEXT(bad.name) {
            const auto r = run_restore(f, o, c.image_xml(), restore_extra({{"USERNAME", "alice"}, {"NAME", "x"}}),
                                       plugin, {{"one_cipher_auth", bad.file}});
            BOOST_TEST(r.exit_code == 255, describe(r));
            const std::string want =
                "Cannot log in to oned as alice: oned server_cipher auth file " + bad.file + " " + bad.problem;
            BOOST_TEST(r.err.find(want) != std::string::npos, "expected '" << want << "', got: " << r.err);
            BOOST_TEST(r.err.find("serveradmin") != std::string::npos, "expected the fix, got: " << r.err);
            BOOST_TEST(r.err.find("mode 600") != std::string::npos, "expected the fix, got: " << r.err);
            BOOST_TEST(r.err.find("no-colon-secret-value") == std::string::npos, "the file's content: " << r.err);
            BOOST_TEST(!fs::exists(marker), "restic ran before the login was checked");
            BOOST_TEST(o.server.calls().empty(), "oned was called");
        }
    }
    // The wrapper is the one restic the restore runs: with good credentials it runs.
    parse_restore(run_restore(f, o, c.image_xml(), restore_extra({{"USERNAME", "alice"}, {"NAME", "ok"}}), plugin));
    BOOST_TEST(fs::exists(marker), "the restic wrapper did not run, so the test above proves nothing");
}

BOOST_AUTO_TEST_CASE(restore_without_username_or_destination_fails_and_allocates_nothing) {
    restic_fixture f;
    oned_env o(f);
    stock::chain c(f, 7, {{0, 8, 1}});
    c.backup();
    auto r = run_restore(f, o, c.image_xml(), restore_extra({{"NAME", "x"}}));
    BOOST_TEST(r.exit_code == 255, describe(r));
    BOOST_TEST(r.err.find("USERNAME") != std::string::npos, "expected the error to name USERNAME, got: " << r.err);
    r = run_restore(f, o, c.image_xml(), "<TEMPLATE><USERNAME>alice</USERNAME></TEMPLATE>");
    BOOST_TEST(r.exit_code == 255, describe(r));
    BOOST_TEST(r.err.find("DESTINATION_DS_ID") != std::string::npos,
               "expected the error to name DESTINATION_DS_ID, got: " << r.err);
    BOOST_TEST(o.server.images().empty());
    BOOST_TEST(o.server.vm_templates().empty());
}

BOOST_AUTO_TEST_SUITE_END()
