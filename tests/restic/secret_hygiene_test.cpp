#define BOOST_TEST_MODULE restic_secret_hygiene
// Secret hygiene as a test (docs/secrets-and-stress.md): a backup, a failing
// backup (wrong password), a download, a restore and a MONITOR (health and
// metrics) on every backend (SFTP, LOCAL, S3 on the Ceph fixture), with the
// real restic, sshd and qemu-img and the fake oned. While each runs, a
// scanner looks every 20 ms at
//   * the argv of every process of the machine (/proc/*/cmdline),
//   * the environment of every process (/proc/*/environ, read as root): a
//     process that carries a secret there must be restic (or nice, ionice or
//     sh on their way to exec it, or a child restic starts itself, e.g. its
//     ssh for sftp:), and must not be readable by another user (checked by
//     reading it as nobody with setpriv when the test runs as root),
//   * every file under the host's TMPDIR (a fresh directory), the state
//     directory, the lock directory and the directory of the log and
//     metrics files;
// and after each action at the action's stdout and stderr, the MAD
// transcript (replies and LOG lines), the host log file, every call the fake
// oned received (the health attributes written included), the metrics file
// and every file left in the scratch tree and TMPDIR. The secrets: the
// restic password (and the wrong one), the S3 keys, oned's passwords and any
// server_cipher session. The first case shows the scanner catching secrets
// planted in each place.
#include "tests/integration/oned_requests.hpp"
#include "tests/oned/fake_oned.hpp"
#include "tests/peer/oned_peer.hpp"
#include "tests/restic/restore_stock_repo.hpp"
#include "tests/support/ceph_fixture.hpp"

#include "common/base64.hpp"
#include "common/strings.hpp"

#include <boost/test/unit_test.hpp>
#include <pugixml.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

using namespace oneds::test;
namespace fs = std::filesystem;
namespace oned = oneds::test::oned;

namespace {

std::string describe(const process_result &r) {
    return "exit " + std::to_string(r.exit_code) + "\n--- stdout ---\n" + r.out.substr(0, 2000) + "\n--- stderr ---\n" +
           r.err;
}

std::string marker(const std::string &what) { return what + "Mark" + std::to_string(::getpid()) + "x"; }

// ---- the scanner ---------------------------------------------------------------

std::string slurp(const std::string &path, std::size_t limit = 64u << 20) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec || size > limit) return {};
    return read_file(path);
}

std::string base_name(const std::string &p) { return fs::path(p).filename().string(); }

pid_t parent_of(pid_t pid) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream in(stat.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    in >> state >> ppid;
    return ppid;
}

std::string exe_of(pid_t pid) {
    std::error_code ec;
    return fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec).string();
}

bool is_restic(pid_t pid) {
    const auto exe = base_name(exe_of(pid));
    return exe == "restic" || exe.rfind("restic ", 0) == 0;
}

class secret_scanner {
public:
    // Each secret is also looked for in base64, at each of the three
    // alignments it can have inside a longer encoded text (a request
    // document, base64 as oned sends it, logged or written somewhere).
    secret_scanner(std::vector<std::string> secrets, std::vector<std::string> dirs)
        : secrets_(with_base64_forms(std::move(secrets))), dirs_(std::move(dirs)), me_(::getpid()) {}

    static std::vector<std::string> with_base64_forms(std::vector<std::string> secrets) {
        const auto n = secrets.size();
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t k = 0; k < 3; ++k) {
                // k bytes before the secret: the first 4 characters (k > 0)
                // and the last 4 depend on its neighbours, the rest only on it.
                const auto enc = base64(std::string(k, '\0') + secrets[i]);
                const std::size_t from = k == 0 ? 0 : 4;
                if (enc.size() >= from + 4 + 12) secrets.push_back(enc.substr(from, enc.size() - from - 4));
            }
        return secrets;
    }
    ~secret_scanner() { stop(); }

    void start() {
        thread_ = std::jthread([this](std::stop_token stop) {
            while (!stop.stop_requested()) {
                sweep();
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
        });
    }
    void stop() {
        if (thread_.joinable()) {
            thread_.request_stop();
            thread_.join();
        }
    }
    // One full sweep (processes and directories) now.
    void sweep() {
        sweep_processes();
        for (const auto &d : dirs_) sweep_dir(d);
        ++sweeps_;
    }
    // Scans text from a sink (stdout, a transcript, a file...) now.
    void scan_text(const std::string &where, const std::string &text) {
        for (const auto &s : secrets_)
            if (!s.empty() && text.find(s) != std::string::npos) add(where + ": holds secret '" + s + "'");
        // A server_cipher session (serveradmin:<user>:<token>) is a
        // credential too, whatever its token.
        static const std::regex cipher("serveradmin:[^:\\s]+:[A-Za-z0-9+/=]{8,}");
        if (std::regex_search(text, cipher)) add(where + ": holds a server_cipher session");
    }
    void scan_tree(const std::string &dir, const std::set<std::string> &skip = {}) {
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            if (!it->is_regular_file(ec) || skip.count(it->path().string()) != 0) continue;
            ++files_;
            scan_text("file " + it->path().string(), slurp(it->path().string()));
        }
    }

    std::vector<std::string> findings() const {
        std::lock_guard l(m_);
        return {findings_.begin(), findings_.end()};
    }
    void clear() {
        std::lock_guard l(m_);
        findings_.clear();
    }
    long sweeps() const { return sweeps_; }
    long processes() const { return processes_; }
    long files() const { return files_; }
    // Processes seen with a secret in their environment (allowed ones).
    long env_carriers() const { return static_cast<long>(env_pids_.size()); }
    std::string carrier_programs() const {
        std::lock_guard l(m_);
        std::string out;
        for (const auto &c : carriers_) out += " " + c;
        return out;
    }

private:
    void add(const std::string &f) {
        std::lock_guard l(m_);
        findings_.insert(f);
    }
    bool has_secret(const std::string &text) const {
        for (const auto &s : secrets_)
            if (!s.empty() && text.find(s) != std::string::npos) return true;
        return false;
    }
    std::string who(pid_t pid) const {
        std::string out = std::to_string(pid) + " (" + exe_of(pid) + ")";
        for (const auto &a : process_argv(pid)) out += " " + a.substr(0, 80);
        return out;
    }

    void sweep_processes() {
        std::error_code ec;
        for (const auto &e : fs::directory_iterator("/proc", ec)) {
            const auto name = e.path().filename().string();
            if (name.find_first_not_of("0123456789") != std::string::npos) continue;
            const pid_t pid = std::stoi(name);
            if (pid == me_) continue;  // the test itself holds every secret
            ++processes_;
            const std::string cmdline = read_file("/proc/" + name + "/cmdline");
            if (has_secret(cmdline)) add("argv of process " + who(pid));
            const std::string environ = read_file("/proc/" + name + "/environ");
            if (has_secret(environ)) judge_environment(pid);
        }
    }

    // A process with a secret in its environment: which one it may be, and
    // whether another user can read it.
    void judge_environment(pid_t pid) {
        const bool first = env_pids_.insert(pid).second;
        if (first) {
            std::lock_guard l(m_);
            carriers_.insert(base_name(exe_of(pid)));
        }
        bool allowed = is_restic(pid);
        if (!allowed) {
            // nice, ionice or the restic picker's sh, about to exec restic.
            const auto exe = base_name(exe_of(pid));
            const auto argv = process_argv(pid);
            const bool execs_restic = std::any_of(argv.begin(), argv.end(), [](const std::string &a) {
                return a == "restic" || a.ends_with("/restic") || a.find("exec \"$p\"") != std::string::npos;
            });
            if ((exe == "nice" || exe == "ionice" || exe == "dash" || exe == "bash" || exe == "sh") && execs_restic)
                allowed = true;
        }
        if (!allowed)
            // A child of restic (its ssh for an sftp: repository) inherits
            // restic's environment: restic's doing, same user.
            for (pid_t p = parent_of(pid), n = 0; p > 1 && n < 10; p = parent_of(p), ++n)
                if (is_restic(p)) {
                    allowed = true;
                    break;
                }
        if (!allowed) add("a secret in the environment of process " + who(pid));
        struct stat st {};
        const std::string env_path = "/proc/" + std::to_string(pid) + "/environ";
        if (::stat(env_path.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
            add("the environment of " + who(pid) + " is readable by group or others");
        if (first && ::geteuid() == 0) {
            // Read it as another user (nobody): the kernel must refuse.
            const auto r = run_process(
                {tool("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups", "--", tool("cat"), env_path});
            if (r.exit_code == 0 && has_secret(r.out))
                add("user nobody can read the environment of process " + who(pid));
        }
    }

    void sweep_dir(const std::string &dir) {
        std::error_code ec;
        for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            std::error_code e2;
            if (!it->is_regular_file(e2)) continue;
            const auto p = it->path().string();
            const auto size = it->file_size(e2);
            const auto mtime = it->last_write_time(e2).time_since_epoch().count();
            auto &seen = seen_[p];
            if (seen.first == size && seen.second == mtime) continue;
            seen = {size, mtime};
            ++files_;
            scan_text("file " + p + " (during the action)", slurp(p));
        }
    }

    std::vector<std::string> secrets_;
    std::vector<std::string> dirs_;
    pid_t me_;
    mutable std::mutex m_;
    std::set<std::string> findings_;
    std::set<pid_t> env_pids_;
    std::set<std::string> carriers_;
    std::map<std::string, std::pair<std::uintmax_t, long long>> seen_;
    std::atomic<long> sweeps_{0}, processes_{0}, files_{0};
    std::jthread thread_;
};

std::string joined(const std::vector<std::string> &v) {
    std::string out;
    for (const auto &s : v) out += "\n  " + s;
    return out;
}

// ---- one backend's run -----------------------------------------------------------

enum class backend { sftp, local, s3 };

struct hygiene_run {
    backend kind;
    restic_fixture f;
    std::optional<s3_bucket> bucket;
    std::string password = marker("Pw") + " p w'$x\"q`\\";
    std::string wrong_password = marker("Wrong") + " '$`";
    oned::fake_oned server{oned::fake_oned::options{marker("OneadminPw"), marker("ServeradminPw"), "6.10.0"}};
    std::string tmpdir;
    std::string out_dir = f.dir().file("out");
    std::string log_file = out_dir + "/one_ds_host.log";
    std::string metrics_file = out_dir + "/one_ds_restic.prom";
    std::string auth_file, cipher_file;
    std::set<std::string> inputs;  // files that hold a secret on purpose

    explicit hygiene_run(backend k) : kind(k) {
        f.set_password(password);
        if (k == backend::s3) {
            auto &ceph = ceph_fixture::shared();
            bucket = s3_bucket{ceph.s3_endpoint(), "oneds-hyg-" + std::to_string(::getpid()) + "-" + name(),
                               ceph.access_key(), ceph.secret_key()};
            f.use_s3(*bucket);
        }
        fs::create_directories(out_dir);
        std::string templ = (fs::temp_directory_path() / "oneds-hyg-tmp-XXXXXX").string();
        BOOST_REQUIRE(::mkdtemp(templ.data()) != nullptr);
        tmpdir = templ;
        fs::create_directories(tmpdir + "/restic");

        oned::datastore_record backup;
        backup.id = 100;
        backup.name = "restic";
        backup.type = "BACKUP_DS";
        pugi::xml_document doc;
        doc.load_string(f.datastore_xml(tmpl()).c_str());
        for (const auto &n : doc.child("DATASTORE").child("TEMPLATE").children())
            backup.attributes.set(n.name(), n.text().as_string());
        backup.attributes.set("DS_MAD", "restic");
        backup.attributes.set("TM_MAD", "-");
        backup.attributes.set("BASE_PATH", f.base_path());
        server.add_datastore(backup);
        oned::datastore_record images;
        images.id = 1;
        images.name = "default";
        images.attributes.set("DS_MAD", "fs");
        images.attributes.set("TM_MAD", "ssh");
        server.add_datastore(images);
        server.add_user("alice", marker("AlicePw"));
        server.start();
        auth_file = f.dir().write("one_auth", server.oneadmin_session() + "\n");
        cipher_file = f.dir().write("onegate_auth", server.serveradmin_credentials() + "\n");
        fs::permissions(cipher_file, fs::perms::owner_read | fs::perms::owner_write);
        inputs = {auth_file, cipher_file, f.password_file()};
    }
    ~hygiene_run() {
        std::error_code ec;
        fs::remove_all(tmpdir, ec);
    }

    std::string name() const { return kind == backend::sftp ? "sftp" : kind == backend::local ? "local" : "s3"; }

    std::map<std::string, std::optional<std::string>> tmpl() const {
        std::map<std::string, std::optional<std::string>> t = {{"RESTIC_TMP_DIR", tmpdir + "/restic"}};
        if (kind == backend::local) {
            t["RESTIC_BACKEND"] = "LOCAL";
            t["RESTIC_SFTP_SERVER"] = std::nullopt;
        }
        return t;
    }

    std::vector<std::string> secrets() const {
        std::vector<std::string> s = {password,          wrong_password,           marker("Pw"),
                                      marker("Wrong"),   marker("OneadminPw"),     marker("ServeradminPw"),
                                      marker("AlicePw"), server.oneadmin_session()};
        if (bucket) s.insert(s.end(), {bucket->access_key, bucket->secret_key});
        return s;
    }
    std::vector<std::string> watched_dirs() const {
        return {tmpdir, f.dir().file("state"), f.dir().file("locks"), out_dir};
    }
    std::map<std::string, std::string> plugin_cfg() const { return {{"metrics_file", metrics_file}}; }
    std::map<std::string, std::string> host_cfg() const {
        return {{"oned_endpoint", server.endpoint()},
                {"oned_auth_file", auth_file},
                {"one_cipher_auth", cipher_file},
                {"log_file", log_file}};
    }
    std::map<std::string, std::string> env() const { return {{"TMPDIR", tmpdir}}; }

    process_result action(const std::string &what, const std::vector<std::string> &args, const std::string &input) {
        return f.host_action(what, args, input, plugin_cfg(), env(), host_cfg());
    }

    // Every sink that exists after an action.
    void scan_after(secret_scanner &s, const std::string &label) {
        s.scan_text(label + ": host log file", read_file(log_file));
        s.scan_text(label + ": metrics file", read_file(metrics_file));
        for (const auto &c : server.calls()) {
            std::string text = c.method;
            for (const auto &p : c.params) text += " " + p;
            s.scan_text(label + ": call to oned " + c.method, text);
        }
        if (const auto ds = server.datastore(100))
            for (const auto &a : ds->attributes.attributes)
                if (a.name.rfind("RESTIC_HEALTH", 0) == 0) s.scan_text(label + ": health attribute " + a.name, a.value);
        for (const auto &img : server.images()) s.scan_text(label + ": image template", img.allocate_template);
        for (const auto &t : server.vm_templates()) s.scan_text(label + ": VM template", t.body);
        s.scan_tree(f.dir().path().string(), inputs);
        s.scan_tree(tmpdir);
    }
};

std::vector<std::string> backup_args(const restic_fixture &f, int vm, bool local) {
    return {(local ? "localhost:" : "hypervisor:") + f.vm_dir(vm),
            "0",
            "one-" + std::to_string(vm),
            "-",
            std::to_string(vm),
            "0"};
}

void run_backend(backend kind) {
    hygiene_run h(kind);
    auto &f = h.f;
    f.make_vm(7, {{0, 8, 1}});
    stock::chain c(f, 8, {{0, 8, 1}});
    c.backup(2);

    secret_scanner scan(h.secrets(), h.watched_dirs());
    scan.start();
    const auto t0 = std::chrono::steady_clock::now();

    // 1. A backup that works.
    const auto b = h.action("backup", backup_args(f, 7, kind == backend::local), f.document(h.tmpl()));
    BOOST_TEST(b.exit_code == 0, describe(b));
    scan.scan_text("backup stdout/stderr", b.out + b.err);

    // 2. A backup that fails: the same repository with a wrong password.
    auto wrong = h.tmpl();
    wrong["RESTIC_PASSWORD"] = h.wrong_password;
    const auto bad = h.action("backup", backup_args(f, 7, kind == backend::local), f.document(wrong));
    BOOST_TEST(bad.exit_code != 0, describe(bad));
    BOOST_TEST(bad.err.find("password") != std::string::npos, describe(bad));
    scan.scan_text("failing backup stdout/stderr", bad.out + bad.err);

    // 3. A download of increment 1 of a chain.
    const auto d = h.action("downloader", {"--stdout", c.url(0, 1)}, f.document(h.tmpl()));
    BOOST_TEST(d.exit_code == 0, describe(d));
    scan.scan_text("downloader stderr", d.err);
    if (d.exit_code == 0) {
        const auto got = f.dir().write("got.qcow2", d.out);
        BOOST_TEST(stock::compare_images(c.expected_image(0, 1), got) == "");
        fs::remove(got);
    }

    // The downloader's other form: the image prepared in RESTIC_TMP_DIR
    // (under TMPDIR) and a command= line for the caller.
    const auto d2 = h.action("downloader", {c.url(0, 1)}, f.document(h.tmpl()));
    BOOST_TEST(d2.exit_code == 0, describe(d2));
    scan.scan_text("downloader (command=) stdout/stderr", d2.out + d2.err);

    // 4. Through one MAD-mode host: a RESTORE (as alice, through
    // server_cipher) and a MONITOR, whose health and metrics follow.
    {
        peer_options o{ONEDS_TEST_HOST_PATH,
                       "-t 2 -d restic -c " + f.write_config(h.plugin_cfg(), h.host_cfg()) +
                           " --plugin restic=" + std::string(ONEDS_TEST_RESTIC_PATH),
                       h.env(), true};
        oned_peer peer(o);
        BOOST_REQUIRE(peer.init().ok);
        const auto restore_doc = oneds::common::base64_encode(f.document_with_image(
            c.image_xml(), h.tmpl(),
            "<DESTINATION_DS_ID>1</DESTINATION_DS_ID><TEMPLATE><USERNAME>alice</USERNAME><NAME>back</NAME></"
            "TEMPLATE>"));
        BOOST_REQUIRE(peer.send_request("RESTORE", 41, restore_doc));
        const auto r = peer.wait_for_reply("RESTORE", 41, std::chrono::seconds(120));
        BOOST_REQUIRE_MESSAGE(r.has_value(), peer.transcript());
        BOOST_TEST(r->success, peer.transcript());
        // An RM with the wrong password: its FAILURE text goes to oned.
        const auto rm_doc = oneds::common::base64_encode(f.document_with_image(c.image_xml(), wrong));
        BOOST_REQUIRE(peer.send_request("RM", 42, rm_doc));
        const auto rm = peer.wait_for_reply("RM", 42, std::chrono::seconds(120));
        BOOST_REQUIRE_MESSAGE(rm.has_value(), peer.transcript());
        BOOST_TEST(!rm->success, peer.transcript());
        const auto updates_before = h.server.call_count("one.datastore.update");
        BOOST_REQUIRE(peer.send_request("MONITOR", 100, oneds::common::base64_encode(f.document(h.tmpl()))));
        const auto m = peer.wait_for_reply("MONITOR", 100, std::chrono::seconds(120));
        BOOST_REQUIRE_MESSAGE(m.has_value(), peer.transcript());
        BOOST_TEST(m->success, peer.transcript());
        // The health worker writes after the reply.
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (h.server.call_count("one.datastore.update") == updates_before &&
               std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        BOOST_TEST(h.server.call_count("one.datastore.update") > updates_before, "no health update came");
        // A MONITOR's info is base64: decode it as oned does.
        std::string text = peer.transcript();
        for (const auto &rep : peer.replies())
            if (rep.action == "MONITOR")
                if (auto plain = base64_decode(rep.info)) text += "\n" + *plain;
        const auto exit = peer.finalize();
        BOOST_TEST(exit.clean(), exit.describe());
        scan.scan_text("MAD transcript", text + peer.transcript());
    }
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    scan.stop();
    scan.sweep();
    h.scan_after(scan, h.name());
    BOOST_TEST_MESSAGE(h.name() << ": " << took << " s, " << scan.sweeps() << " sweeps, " << scan.processes()
                                << " process looks, " << scan.files() << " file reads, " << scan.env_carriers()
                                << " processes carried a secret in their environment:" << scan.carrier_programs());
    BOOST_TEST(scan.sweeps() > 10);
    // The sinks were written, so scanning them meant something.
    BOOST_TEST(read_file(h.log_file).find("restic") != std::string::npos, "the host log file is empty");
    BOOST_TEST(read_file(h.metrics_file).find("one_ds_restic_") != std::string::npos, "no metrics written");
    BOOST_TEST(!stock::files_under(f.dir().file("state")).empty(), "nothing in the state directory");
    BOOST_TEST_MESSAGE(h.name() << ": " << stock::files_under(h.tmpdir).size() << " files left in TMPDIR");
    BOOST_TEST(h.server.images().size() == 1U, "the restore should have made one image");
    const auto found = scan.findings();
    BOOST_TEST(found.empty(), h.name() << ": secrets found:" << joined(found));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(scanner)

// The scanner is able to fail: a secret planted in a file, in an argv, in
// the environment of a process that is not restic, in one another user can
// read, and in a text sink are each reported.
BOOST_AUTO_TEST_CASE(the_scanner_finds_secrets_planted_in_each_place) {
    scratch_dir dir;
    const std::string secret = marker("Planted");
    secret_scanner scan({secret}, {dir.path().string()});
    scan.start();
    dir.write("left-behind", "before " + secret + " after");
    // Not "sleep 3" alone: a shell may exec its last command (bash does, and
    // so may a dash), and the secret would leave the argv at once.
    spawned_process in_argv({tool("sh"), "-c", "sleep 3; exit 0", "sh", secret}, "");
    spawned_process in_env({tool("sleep"), "3"}, "", {{"SOME_TOKEN", secret}});
    std::unique_ptr<spawned_process> as_nobody;
    if (::geteuid() == 0)
        as_nobody = std::make_unique<spawned_process>(
            std::vector<std::string>{tool("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                                     tool("env"), "RESTIC_PASSWORD=" + secret, tool("sleep"), "3"},
            "");
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    scan.stop();
    scan.scan_text("a log", "LOG I 3 oops " + secret);
    scan.scan_text("a reply", "RESTORE FAILURE 41 serveradmin:alice:QUJDREVGR0hJSktMTU5PUA==");
    scan.scan_text("a payload", "bad request: " + base64("<DATASTORE><P>" + secret + "</P>"));
    const auto found = joined(scan.findings());
    BOOST_TEST_MESSAGE("planted findings:" << found);
    BOOST_TEST(found.find("file " + dir.file("left-behind")) != std::string::npos, found);
    BOOST_TEST(found.find("argv of process " + std::to_string(in_argv.pid())) != std::string::npos, found);
    BOOST_TEST(found.find("environment of process " + std::to_string(in_env.pid())) != std::string::npos, found);
    if (as_nobody) BOOST_TEST(found.find("user nobody can read the environment") != std::string::npos, found);
    BOOST_TEST(found.find("a log: holds secret") != std::string::npos, found);
    BOOST_TEST(found.find("a reply: holds a server_cipher session") != std::string::npos, found);
    BOOST_TEST(found.find("a payload: holds secret") != std::string::npos, found);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(every_backend)

BOOST_AUTO_TEST_CASE(sftp_no_secret_anywhere) { run_backend(backend::sftp); }
BOOST_AUTO_TEST_CASE(local_no_secret_anywhere) { run_backend(backend::local); }
BOOST_AUTO_TEST_CASE(s3_no_secret_anywhere) { run_backend(backend::s3); }

BOOST_AUTO_TEST_SUITE_END()
