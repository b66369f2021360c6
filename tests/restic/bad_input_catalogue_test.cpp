#define BOOST_TEST_MODULE restic_bad_input_catalogue
// The bad-input catalogue (docs/bad-input.md): one row per input, each sent to
// one_ds_host in action mode as OpenNebula's scripts would, with the real
// restic and sshd behind it but the programs the plugin could start replaced
// by recording stand-ins. Every row must be answered with the error text that
// names what was wrong, exit 255 (1 for the actions stock does not support),
// nothing on stdout, no signal, no sanitizer report, no program started, no
// connection opened to an entity's URL, and nothing stored changed (a real
// repository with a snapshot lies in the datastore throughout).
//
// What other tests already cover is not repeated here: ssh-option-looking
// RESTIC_SFTP_SERVER / RESTIC_SFTP_USER / LAST_BRIDGE values and four
// out-of-range numbers (fault_test.cpp), host names, user names and the
// image id parser at unit level (hostile_input_test.cpp), stdin that is text
// or base64 of text and the host's own command line (action_host_test.cpp).
// The passwords that must work are in bad_input_passwords_test.cpp.
#include "tests/restic/restore_stock_repo.hpp"
#include "tests/support/utf8.hpp"

#include "plugin/restic/model/attributes.hpp"

#include "common/base64.hpp"
#include "common/strings.hpp"

#include <boost/test/unit_test.hpp>

#include <pugixml.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace oneds::test;
namespace fs = std::filesystem;

namespace {

using tmpl_t = std::map<std::string, std::optional<std::string>>;

// Programs that only write down that they ran, first in PATH and named as
// restic: whether anything at all was started.
struct recorders {
    std::string dir, log;
    explicit recorders(const restic_fixture &f) : dir(f.dir().file("recorders")), log(f.dir().file("started.log")) {
        fs::create_directories(dir);
        for (const char *name : {"ssh", "restic", "qemu-img", "qemu-io", "ps", "grep", "kill", "uname", "tar", "rbd",
                                 "nice", "ionice", "systemd-run", "systemctl", "rm", "mkdir", "sh", "bash"}) {
            f.dir().write("recorders/" + std::string(name), "#!/bin/sh\necho \"$0 $*\" >> '" + log + "'\nexit 1\n");
            fs::permissions(dir + "/" + name, fs::perms::owner_all);
        }
    }
    std::map<std::string, std::string> cfg() const {
        return {{"restic_bin", dir + "/restic"}, {"remote_restic_bin", dir + "/restic"}};
    }
    std::map<std::string, std::string> env() const { return {{"PATH", dir}}; }
    std::string started() const { return read_file(log); }
};

// A TCP port that accepts connections but is never served: an external
// entity or DTD pointing at it must never connect.
class trap_port {
public:
    trap_port() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(fd_, reinterpret_cast<sockaddr *>(&a), len) != 0 || ::listen(fd_, 16) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len) != 0)
            throw std::runtime_error("trap_port: cannot listen");
        port_ = ntohs(a.sin_port);
    }
    ~trap_port() { ::close(fd_); }
    trap_port(const trap_port &) = delete;
    trap_port &operator=(const trap_port &) = delete;
    int port() const { return port_; }
    // Connections accepted since the last call.
    int connections() const {
        int n = 0;
        for (int c; (c = ::accept(fd_, nullptr, nullptr)) >= 0; ++n) ::close(c);
        return n;
    }

private:
    int fd_ = -1;
    int port_ = 0;
};

// What is stored: every file under the datastore and the system datastore's
// VM folders, with size and modification time.
std::map<std::string, std::string> stored(const restic_fixture &f) {
    std::map<std::string, std::string> out;
    // (Not the driver's state: a refused backup is a failed backup, which
    // the health records keep by design.)
    for (const auto &root : {f.base_path(), f.dir().file("sys")}) {
        std::error_code ec;
        if (!fs::exists(root, ec)) continue;
        for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator();
             it.increment(ec)) {
            const auto &p = it->path();
            std::string v = fs::is_directory(p, ec) ? "dir" : std::to_string(fs::file_size(p, ec));
            v += " " + std::to_string(fs::last_write_time(p, ec).time_since_epoch().count());
            out[p.string()] = v;
        }
    }
    return out;
}

using oneds::test::utf8;

const std::string k_ls2028 = utf8(0x2028), k_nbsp = utf8(0xa0);
std::string fullwidth(const std::string &digits) {
    std::string s;
    for (char c : digits) s += utf8(0xff10 + static_cast<char32_t>(c - '0'));
    return s;
}

struct row {
    std::string action;
    std::vector<std::string> args;
    std::string input;
    std::string expect;  // a fragment of stderr that names the problem
    int exit_code = 255;
    bool fast = false;  // must be refused about as fast as a trivial refusal (see check)
};

std::string describe(const row &w) {
    std::string s = w.action;
    for (const auto &a : w.args) s += " [" + oneds::common::printable(a) + "]";
    return s + " <stdin " + std::to_string(w.input.size()) +
           " bytes: " + oneds::common::printable(w.input.substr(0, 160)) + ">";
}

// The fixture shared by every row: a datastore holding a real repository of
// VM 7 with one snapshot (made with the real restic, before the stand-ins).
class catalogue {
public:
    catalogue() : rec_(f_) {
        f_.make_vm(7, {{0, 8, 1}});
        const auto b = f_.host_action("backup", backup_args(), f_.document());
        if (b.exit_code != 0) throw std::runtime_error("set-up backup failed: " + b.err);
        snapshot_ = b.out.substr(0, 8);
        // A config where oned is "there" (an endpoint nobody serves, a
        // login): restore's and the downloader's bad inputs are refused
        // before oned is asked.
        auth_ = f_.dir().write("one_auth", "oneadmin:not-used");
        before_ = stored(f_);
        // The time of a trivial refusal here, for the "fast" rows: the
        // slowest of three, as one sample may be quick by luck.
        for (int i = 0; i < 3; ++i) baseline_ = std::max(baseline_, run({"monitor", {}, "", ""}).seconds());
    }

    restic_fixture &f() { return f_; }
    const std::string &snapshot() const { return snapshot_; }
    std::vector<std::string> backup_args(const std::string &host = "hypervisor") const {
        return {host + ":" + f_.vm_dir(7), "0", "one-7", "-", "7", "0"};
    }
    std::string url(const std::string &path_tail = "") const {
        return "restic://100//0:" + snapshot_ + (path_tail.empty() ? f_.backup_dir(7) + "/disk.0.0" : path_tail);
    }
    std::string image() const { return stock::full_image_xml(42, 7, snapshot_); }

    process_result run(const row &w) const {
        std::map<std::string, std::string> host = {{"oned_endpoint", "http://127.0.0.1:1/RPC2"},
                                                   {"oned_auth_file", auth_}};
        return f_.host_action(w.action, w.args, w.input, rec_.cfg(), rec_.env(), host);
    }

    // One row: its answer and what must not have happened.
    void check(const row &w) {
        const auto r = run(w);
        BOOST_TEST_CONTEXT(describe(w)) {
            BOOST_TEST(r.term_signal == 0);
            BOOST_TEST(!r.killed);
            BOOST_TEST(r.exit_code == w.exit_code);
            BOOST_TEST(r.err.find(w.expect) != std::string::npos, "expected '" << w.expect << "' in:\n" << r.err);
            BOOST_TEST(r.out.empty(), r.out.substr(0, 400));
            for (const char *word : {"Sanitizer", "runtime error:", "terminate called", "Fatal: "})
                BOOST_TEST(r.err.find(word) == std::string::npos, r.err);
            // A fast row is refused while reading or before any expansion:
            // about a trivial refusal plus piping up to 64 MiB. Expanding the
            // "laughs" entities (10^12 of them) would not end before the
            // 120 s limit. The slack over the baseline is for a busy machine.
            if (w.fast)
                BOOST_TEST(r.seconds() < 2 * baseline_ + 3.0, r.seconds()
                                                                  << " s, trivial refusal " << baseline_ << " s");
            const auto started = rec_.started();
            BOOST_TEST(started.empty(), "programs were started:\n" << started);
            if (!started.empty()) fs::remove(rec_.log);
            BOOST_TEST(trap_.connections() == 0, "a connection to an entity's URL was made");
        }
        answered_.push_back({describe(w), r.err.substr(0, r.err.find('\n'))});
    }
    void check(const std::vector<row> &rows) {
        for (const auto &w : rows) check(w);
    }

    int trap() const { return trap_.port(); }

    ~catalogue() {
        const auto after = stored(f_);
        for (const auto &[p, v] : before_) {
            const auto it = after.find(p);
            BOOST_TEST((it != after.end() && it->second == v), p << " changed or gone");
        }
        for (const auto &[p, v] : after) BOOST_TEST(before_.contains(p), p << " appeared");
        BOOST_TEST(stock::check_repository(f_, f_.base_path() + "/7").empty());
        std::ostringstream table;
        for (const auto &[in, ans] : answered_) table << in << "\n    -> " << ans << "\n";
        BOOST_TEST_MESSAGE(answered_.size() << " rows answered:\n" << table.str());
    }

private:
    restic_fixture f_;
    recorders rec_;
    trap_port trap_;
    std::string snapshot_, auth_;
    std::map<std::string, std::string> before_;
    double baseline_ = 0;
    std::vector<std::pair<std::string, std::string>> answered_;
};

const std::vector<std::string> k_id_actions = {"monitor", "stat", "rm", "restore", "increment_flatten"};

}  // namespace

// ---- argv ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(every_actions_argv_missing_extra_and_malformed) {
    catalogue c;
    auto &f = c.f();
    const auto doc = f.document();
    const auto img = f.document_with_image(c.image(), {}, "<EXTRA_DATA><KEEP_LAST>1</KEEP_LAST></EXTRA_DATA>");
    auto b = c.backup_args();
    const auto with = [&](std::size_t i, const std::string &v) {
        auto a = b;
        a[i] = v;
        return a;
    };
    auto b5 = b, b7 = b;
    b5.pop_back();
    b7.push_back("extra");
    const std::string usage = "backup: expected <host>:<vm_dir> <disk_ids> <deploy_id> <bj_id|-> <vm_id> <ds_id>";
    std::vector<row> rows = {
        {"backup", {}, doc, usage + ", got 0 arguments"},
        {"backup", b5, doc, usage + ", got 5 arguments"},
        {"backup", b7, doc, usage + ", got 7 arguments"},
        {"backup", with(0, f.vm_dir(7)), doc, "backup: first argument must be <host>:<vm_dir>"},
        {"backup", with(0, ":" + f.vm_dir(7)), doc, "backup: first argument must be <host>:<vm_dir>"},
        {"backup", with(0, "hypervisor:"), doc, "backup: first argument must be <host>:<vm_dir>"},
        {"backup", with(0, "hypervisor:relative/7"), doc, "backup: the folder in <host>:<vm_dir> must be an absolute"},
        {"backup", with(0, "hypervisor:" + f.vm_dir(7) + "/../8"), doc, "must not have '.' or '..' components"},
        {"backup", with(0, "hypervisor:/a\nb"), doc, "backup: the folder in <host>:<vm_dir> must"},
        {"backup", with(0, "hyper visor:" + f.vm_dir(7)), doc, "backup: the host in <host>:<vm_dir> must"},
        {"backup", with(0, "h$(id):" + f.vm_dir(7)), doc, "backup: the host in <host>:<vm_dir> must"},
        {"backup", with(0, "h'x:" + f.vm_dir(7)), doc, "backup: the host in <host>:<vm_dir> must"},
        {"backup", with(4, ""), doc, "backup: VM id must be a number, got ''"},
        {"backup", with(4, "../7"), doc, "backup: VM id must be a number, got '../7'"},
        {"backup", with(4, "7 8"), doc, "backup: VM id must be a number"},
        {"backup", with(4, "7;id"), doc, "backup: VM id must be a number"},
        {"backup", with(4, "-7"), doc, "backup: VM id must be a number"},
        {"backup", with(4, "99999999999"), doc, "backup: VM id must be a number"},
        {"backup", with(3, "../1"), doc, "backup: backup job id must be a number or '-'"},
        {"backup", with(3, "1 `id`"), doc, "backup: backup job id must be a number or '-'"},
        {"backup", with(3, ""), doc, "backup: backup job id must be a number or '-'"},
        {"backup_cancel", {}, "<VM><ID>7</ID></VM>", "backup_cancel: expected <host>:<vm_dir> <deploy_id>, got 0"},
        {"backup_cancel", {"hypervisor:" + f.vm_dir(7)}, "<VM><ID>7</ID></VM>", "got 1 arguments"},
        {"backup_cancel", {"hypervisor:" + f.vm_dir(7), "one-7", "x"}, "<VM><ID>7</ID></VM>", "got 3 arguments"},
        {"backup_cancel", {f.vm_dir(7), "one-7"}, "", "backup_cancel: first argument must be <host>:<vm_dir>"},
        {"backup_cancel", {"hypervisor:rel", "one-7"}, "", "backup_cancel: the folder in <host>:<vm_dir> must"},
        {"backup_cancel", {"hypervisor:" + f.vm_dir(7) + "/..", "one-7"}, "", "must not have '.' or '..' components"},
        {"backup_cancel", {"h;id:" + f.vm_dir(7), "one-7"}, "", "backup_cancel: the host in <host>:<vm_dir> must"},
        {"backup_cancel", {"hypervisor:" + f.vm_dir(7), ""}, "", "backup_cancel: empty deploy id"},
        {"ls", {"-x"}, img, "ls: unknown argument '-x'"},
        {"ls", {"7"}, img, "ls: unknown argument '7'"},
        {"ls", {"-i"}, img, "ls: -i needs an increment id"},
        {"ls", {"-i", "one"}, img, "ls: -i needs an integer increment id, got 'one'"},
        {"ls", {"-i", "1;id"}, img, "ls: -i needs an integer increment id, got '1;id'"},
        {"ls", {"-i", "99999999999"}, img, "ls: -i needs an integer increment id"},
        {"ls", {"-i", "1\x1b[2J"}, img, "got '1\\x1b[2J'"},
        {"ls", {"-i", "0", "-i"}, img, "ls: -i needs an increment id"},
        {"downloader", {}, doc, "downloader: expected [--stdout] <restic:// URL>"},
        {"downloader", {"--stdout"}, doc, "downloader: expected [--stdout] <restic:// URL>"},
        {"downloader", {c.url(), c.url()}, doc, "downloader: expected [--stdout] <restic:// URL>"},
        {"downloader", {"--stdout", "--stdout", c.url()}, doc, "downloader: expected [--stdout] <restic:// URL>"},
        {"downloader", {"/var/tmp/disk.0.0"}, doc, "not a restic:// URL"},
        {"downloader", {"http://100//0:" + c.snapshot() + "/x/7/backup/disk.0.0"}, doc, "not a restic:// URL"},
        {"downloader", {"restic://100"}, doc, "restic URL needs <ds>/<bj>/<chain>/<path>"},
        {"downloader",
         {"restic://1x0//0:" + c.snapshot() + "/x/7/backup/disk.0.0"},
         doc,
         "restic URL datastore id must be a number"},
        {"downloader", {"restic://100/b//x/7/backup/disk.0.0"}, doc, "restic URL backup job id must be a number"},
        {"downloader",
         {"restic://100//" + c.snapshot() + "/x/7/backup/disk.0.0"},
         doc,
         "restic URL chain entry must be <increment>:<snapshot>"},
        {"downloader", {"restic://100//0:zz;id/x/7/backup/disk.0.0"}, doc, "restic URL chain entry has no snapshot id"},
        {"downloader", {"restic://100//0:" + c.snapshot() + "/"}, doc, "restic URL has no file path"},
        {"downloader",
         {"restic://100//0:" + c.snapshot() + "/x/disk.0.0"},
         doc,
         "restic URL path must be .../<vm_id>/backup/<file>"},
        {"doctor", {"--bogus"}, "", "doctor: unexpected argument '--bogus'"},
        {"doctor", {"100", "101"}, "", "doctor: unexpected argument '101'"},
    };
    for (const auto &a : k_id_actions) {
        const auto &in = a == "monitor" ? doc : img;
        const std::string head = a + ": expected one argument, oned's id; ";
        for (const auto &[args, why] :
             std::vector<std::pair<std::vector<std::string>, std::string>>{{{}, "got none"},
                                                                           {{"42", "43"}, "got 2 arguments"},
                                                                           {{"42", ""}, "got 2 arguments"},
                                                                           {{""}, "got ''"},
                                                                           {{"forty-two"}, "got 'forty-two'"},
                                                                           {{"42;id"}, "got '42;id'"},
                                                                           {{"4 2"}, "got '4 2'"},
                                                                           {{"--"}, "got '--'"},
                                                                           {{"-"}, "got '-'"},
                                                                           {{"99999999999"}, "got '99999999999'"},
                                                                           {{fullwidth("42")}, "got '"}})
            rows.push_back({a, args, in, head + why});
    }
    // The actions the stock driver does not have: whatever the arguments.
    for (const std::string a : {"cp", "clone", "mkfs", "snap_delete", "snap_revert", "snap_flatten"}) {
        rows.push_back({a, {}, "", a + ": Operation not supported", 1});
        rows.push_back({a, {"1", "2", "$(id)", "../x"}, img, a + ": Operation not supported", 1});
    }
    c.check(rows);
}

// ---- stdin ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(stdin_empty_huge_not_base64_not_xml_and_with_a_dtd) {
    catalogue c;
    auto &f = c.f();
    const std::string port = std::to_string(c.trap());
    const std::string body = f.document().substr(std::string("<DS_DRIVER_ACTION_DATA>").size());
    const auto with_dtd = [&](const std::string &dtd, const std::string &inner = "") {
        std::string d = "<?xml version=\"1.0\"?>\n<!DOCTYPE DS_DRIVER_ACTION_DATA [" + dtd + "]>\n" +
                        "<DS_DRIVER_ACTION_DATA>" + body;
        if (!inner.empty())
            d = std::regex_replace(d, std::regex("<RESTIC_PASSWORD>[^<]*"), "<RESTIC_PASSWORD>" + inner);
        return d;
    };
    std::string laughs = "<!ENTITY l0 \"lol\">";
    for (int i = 1; i <= 12; ++i)
        laughs += "<!ENTITY l" + std::to_string(i) + " \"" + [&] {
            std::string s;
            for (int k = 0; k < 10; ++k) s += "&l" + std::to_string(i - 1) + ";";
            return s;
        }() + "\">";
    const std::string neither = "standard input is neither XML nor base64-encoded XML";
    const std::string refused = "standard input: XML with a document type declaration (DTD or entity declarations)";
    struct in {
        std::string input, expect;
        bool fast = false;
    };
    // Host-level refusals: the same for every action.
    const std::vector<in> host_level = {
        {std::string(64u << 20, 'A'), "standard input is larger than 32 MiB", true},
        {std::string(40u << 20, '<'), "standard input is larger than 32 MiB", true},
        {"hello <world>", neither},
        {oneds::common::base64_encode("DS_DRIVER_ACTION_DATA"), neither},
        {oneds::common::base64_encode(std::string("\x00\xff\x01<x/>", 6)), neither},
        {"PERTX0RSSVZFUl9BQ1RJT05fREFUQT4=====", neither},
        {with_dtd("<!ELEMENT DS_DRIVER_ACTION_DATA ANY>"), refused},
        {oneds::common::base64_encode(with_dtd("<!ELEMENT DS_DRIVER_ACTION_DATA ANY>")), refused},
        {with_dtd("<!ENTITY pw \"not-the-password\">", "&pw;"), refused},
        {with_dtd(laughs, "&l12;"), refused, true},
        {oneds::common::base64_encode(with_dtd(laughs, "&l12;")), refused, true},
        {with_dtd("<!ENTITY pw SYSTEM \"http://127.0.0.1:" + port + "/pw\">", "&pw;"), refused},
        {with_dtd("<!ENTITY pw SYSTEM \"file:///etc/passwd\">", "&pw;"), refused},
        {with_dtd("<!ENTITY % ext SYSTEM \"http://127.0.0.1:" + port + "/x.dtd\"> %ext;"), refused},
        {"<!DOCTYPE x SYSTEM \"http://127.0.0.1:" + port + "/x.dtd\"><DS_DRIVER_ACTION_DATA>" + body, refused},
    };
    std::vector<row> rows;
    const std::vector<std::string> actions = {"backup", "backup_cancel", "monitor",           "stat",      "ls",
                                              "rm",     "restore",       "increment_flatten", "downloader"};
    const std::map<std::string, std::vector<std::string>> args = {
        {"backup", c.backup_args()},
        {"backup_cancel", {"hypervisor:" + f.vm_dir(7), "one-7"}},
        {"ls", {}},
        {"downloader", {"--stdout", c.url()}},
    };
    const auto args_of = [&](const std::string &a) {
        const auto it = args.find(a);
        return it != args.end() ? it->second : std::vector<std::string>{"42"};
    };
    for (const auto &a : actions)
        for (const auto &i : host_level) rows.push_back({a, args_of(a), i.input, a + ": " + i.expect, 255, i.fast});
    // What the plugin refuses: no document, or not the one it needs.
    for (const auto &a : actions) {
        if (a == "backup_cancel") continue;  // reads the VM from stdin only if there is one
        const std::string need = a == "downloader" ? "Cannot read backup datastore 100"
                                                   : a + ": the request must hold the DS_DRIVER_ACTION_DATA document";
        rows.push_back({a, args_of(a), "", need});
        rows.push_back({a, args_of(a), " \n\t\n", need});
        if (a != "downloader") {
            rows.push_back({a, args_of(a), "<DS_DRIVER_ACTION_DATA><DATASTORE>", need});
            rows.push_back({a, args_of(a), oneds::common::base64_encode("<unclosed attr='x>"), need});
        }
    }
    c.check(rows);
}

// ---- RESTIC_* attributes ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(every_restic_attribute_out_of_range_empty_non_numeric_overflowing_unicode_and_negative) {
    catalogue c;
    auto &f = c.f();
    const std::string conf = "Wrong restic datastore configuration: ";
    struct number {
        std::string name;
        std::string above;  // just past the upper bound
        std::string below;  // a leading '-' that is out of range
        bool empty_is_unset = false;
    };
    const std::vector<number> numbers = {
        {"RESTIC_BWLIMIT", "1073741825", "-2"},
        {"RESTIC_MAXPROC", "65537", "-5"},
        {"RESTIC_CONNECTIONS", "1025", "-1"},
        {"RESTIC_LOCK_RETRIES", "100001", "-1"},
        {"RESTIC_NICE", "20", "-21"},
        {"RESTIC_IONICE", "8", "-2"},
        {"RESTIC_MAX_RIOPS", "1000000001", "-2", true},
        {"RESTIC_MAX_WIOPS", "1000000001", "-3", true},
        {"RESTIC_CPU_QUOTA", "100001", "-100", true},
        {"RESTIC_MEMORY_MAX_MB", "1073741825", "-2", true},
        {"RESTIC_VERIFY_BUDGET_MB", "1099511627777", "-1"},
    };
    std::vector<row> rows;
    const auto backup = [&](const tmpl_t &t, const std::string &expect) {
        rows.push_back({"backup", c.backup_args(), f.document(t, "<VM><ID>7</ID></VM>"), conf + expect});
    };
    for (const auto &n : numbers) {
        const std::string head = n.name + " must be an integer from ";
        for (const std::string &v :
             {n.above, n.below, std::string("ten"), std::string("0x10"), std::string("1_000"), std::string("1e3"),
              std::string("3.5"), std::string("+3"), std::string("--1"), std::string("99999999999999999999999999"),
              std::string("-99999999999999999999999999"), "1" + k_ls2028, "1" + k_nbsp + "000", k_nbsp + "1",
              fullwidth("3"), "1" + utf8(0x200b), std::string("1 2"), std::string("1;id")})
            backup({{n.name, v}}, head);
        if (!n.empty_is_unset) backup({{n.name, ""}}, head);
    }
    // S3's number.
    const tmpl_t s3 = {{"RESTIC_BACKEND", "S3"},
                       {"RESTIC_SFTP_SERVER", std::nullopt},
                       {"RESTIC_S3_BUCKET", "bucket"},
                       {"RESTIC_S3_ACCESS_KEY_ID", "AKIAEXAMPLE"},
                       {"RESTIC_S3_SECRET_ACCESS_KEY", "secretexample"},
                       {"RESTIC_S3_ENDPOINT", "http://127.0.0.1:1"}};
    const auto s3_with = [&](const std::string &k, const std::optional<std::string> &v) {
        auto t = s3;
        t[k] = v;
        return t;
    };
    for (const std::string &v : {std::string("0"), std::string("-1"), std::string(""), std::string("lots"),
                                 std::string("1125899906842625"), "1" + k_ls2028, fullwidth("7")})
        backup(s3_with("TOTAL_MB", v), "TOTAL_MB must be an integer from 1 to ");
    // Words.
    for (const std::string &v : {std::string("fast"), std::string(""), std::string("-auto"), "auto" + k_ls2028,
                                 "max" + k_nbsp, std::string("AUTO")})
        backup({{"RESTIC_COMPRESSION", v}}, "RESTIC_COMPRESSION must be auto, off or max");
    for (const std::string &v : {std::string("ftp"), std::string("-LOCAL"), "LOCAL" + k_ls2028, std::string("S 3")})
        backup({{"RESTIC_BACKEND", v}}, "Unknown RESTIC_BACKEND: ");
    for (const std::string &v : {std::string("25-01"), std::string("01-01"), std::string("a-b"), std::string("-1-5"),
                                 "01" + k_ls2028 + "05", fullwidth("01") + "-05", std::string("")})
        if (!v.empty()) backup({{"RESTIC_VERIFY_WINDOW", v}}, "RESTIC_VERIFY_WINDOW ");
    for (const std::string &v : {std::string("relative/tmp"), std::string("-rf"), std::string("/tmp/a\nb")})
        backup({{"RESTIC_TMP_DIR", v}}, "RESTIC_TMP_DIR must ");
    for (const std::string &v : {std::string("relative"), std::string("-x"), std::string("/a\x1b[2Jb")})
        rows.push_back(
            {"backup", c.backup_args(),
             std::regex_replace(f.document({}, "<VM><ID>7</ID></VM>"), std::regex("<BASE_PATH>[^<]*</BASE_PATH>"),
                                "<BASE_PATH>" + v + "</BASE_PATH>"),
             conf + "BASE_PATH must "});
    backup({{"RESTIC_PASSWORD", std::nullopt}}, "RESTIC_PASSWORD is required");
    backup({{"RESTIC_PASSWORD", ""}}, "RESTIC_PASSWORD must not be empty");
    backup({{"RESTIC_PASSWORD", "''"}}, "RESTIC_PASSWORD must not be empty");
    backup({{"RESTIC_PASSWORD", "\"\""}}, "RESTIC_PASSWORD must not be empty");
    backup({{"RESTIC_SFTP_SERVER", ""}}, "RESTIC_SFTP_SERVER is required when RESTIC_BACKEND is SFTP");
    backup({{"RESTIC_SFTP_SERVER", "back up"}}, "RESTIC_SFTP_SERVER must");
    backup({{"RESTIC_SFTP_USER", "o'neadmin"}}, "RESTIC_SFTP_USER ");
    backup({{"RESTIC_SFTP_USER", "one admin"}}, "RESTIC_SFTP_USER ");
    // S3 words.
    for (const std::string &v : {std::string(""), std::string("-b"), std::string("a b"), std::string("b;id"),
                                 std::string("ab"), "bu" + k_ls2028 + "cket"})
        backup(s3_with("RESTIC_S3_BUCKET", v), v.empty() ? "Missing RESTIC_S3_BUCKET" : "RESTIC_S3_BUCKET must be");
    backup(s3_with("RESTIC_S3_BUCKET", std::nullopt), "Missing RESTIC_S3_BUCKET");
    for (const std::string &v : {std::string("us east"), std::string("us;east"), "us" + k_nbsp + "east"})
        backup(s3_with("RESTIC_S3_REGION", v), "RESTIC_S3_REGION must be");
    for (const std::string &v :
         {std::string("ftp://h"), std::string("http://h/path"), std::string("http://h:99999"),
          std::string("http://h:-1"), std::string("-oX=y"), std::string("h h"), std::string("http://::1")})
        backup(s3_with("RESTIC_S3_ENDPOINT", v), "RESTIC_S3_ENDPOINT ");
    for (const std::string &v : {std::string("maybe"), std::string("1"), "yes" + k_ls2028})
        backup(s3_with("RESTIC_S3_FORCE_PATH_STYLE", v), "RESTIC_S3_FORCE_PATH_STYLE must be yes or no");
    backup(s3_with("RESTIC_S3_INSECURE_TLS", "true"), "RESTIC_S3_INSECURE_TLS must be yes or no");
    backup(s3_with("RESTIC_S3_CACERT", "ca.pem"), "RESTIC_S3_CACERT must be an absolute path");
    backup(s3_with("RESTIC_S3_ACCESS_KEY_ID", "AKIA\nX"), "RESTIC_S3_ACCESS_KEY_ID must not contain control");
    backup(s3_with("RESTIC_S3_SECRET_ACCESS_KEY", std::string("se\x1b[2Jcret")),
           "RESTIC_S3_SECRET_ACCESS_KEY must not contain control");
    backup(s3_with("RESTIC_S3_ACCESS_KEY_ID", ""), "Missing RESTIC_S3_ACCESS_KEY_ID");
    // The prune sizes: read by rm and increment_flatten.
    // Two increments and KEEP_LAST 1: increment_flatten has work to do.
    const auto img = [&](const tmpl_t &t) {
        const std::string two = "<BACKUP_INCREMENTS><INCREMENT><ID>0</ID><SOURCE>" + c.snapshot() +
                                "</SOURCE></INCREMENT><INCREMENT><ID>1</ID><SOURCE>" + c.snapshot() +
                                "</SOURCE></INCREMENT></BACKUP_INCREMENTS>";
        return f.document_with_image(
            std::regex_replace(c.image(), std::regex("<BACKUP_INCREMENTS></BACKUP_INCREMENTS>"), two), t,
            "<EXTRA_DATA><KEEP_LAST>1</KEEP_LAST></EXTRA_DATA>");
    };
    for (const std::string a : {"rm", "increment_flatten"}) {
        for (const std::string &v : {std::string("-1"), std::string("lots"), std::string("5%%"), std::string("5 G"),
                                     "5" + k_ls2028, fullwidth("5"), std::string("5\n;id")})
            rows.push_back(
                {a, {"42"}, img({{"RESTIC_PRUNE_MAX_UNUSED", v}}), conf + "RESTIC_PRUNE_MAX_UNUSED must be a size"});
        if (a == "rm")
            for (const std::string &v : {std::string("-1"), std::string("5%"), "5" + k_nbsp + "G", fullwidth("1")})
                rows.push_back({a,
                                {"42"},
                                img({{"RESTIC_PRUNE_MAX_REPACK", v}}),
                                conf + "RESTIC_PRUNE_MAX_REPACK must be a size"});
    }
    // Every action reads the same attributes: one bad value through each.
    for (const std::string a : {"monitor", "stat", "ls", "rm", "increment_flatten"}) {
        const tmpl_t bad = {{"RESTIC_CONNECTIONS", "1" + k_ls2028}};
        const std::string in = a == "monitor" ? f.document(bad)
                               : a == "stat" ? f.document_with_image("<IMAGE><PATH>" + c.url() + "</PATH></IMAGE>", bad)
                                             : img(bad);
        rows.push_back({a, a == "ls" ? std::vector<std::string>{} : std::vector<std::string>{"100"}, in,
                        conf + "RESTIC_CONNECTIONS must be an integer from 1 to 1024"});
    }
    rows.push_back({"downloader",
                    {"--stdout", c.url()},
                    f.document({{"RESTIC_NICE", "-21"}}),
                    conf + "RESTIC_NICE must be an integer from -20 to 19"});
    c.check(rows);
}

// Values stock takes as "unset" stay accepted (unit level: no action runs).
BOOST_AUTO_TEST_CASE(empty_slice_limits_are_unset_as_stock) {
    for (const std::string name : {"RESTIC_MAX_RIOPS", "RESTIC_MAX_WIOPS", "RESTIC_CPU_QUOTA", "RESTIC_MEMORY_MAX_MB"})
        for (const std::string v : {"", " ", "-1"}) {
            pugi::xml_document doc;
            auto ds = doc.append_child("DATASTORE");
            ds.append_child("ID").text().set(100);
            auto t = ds.append_child("TEMPLATE");
            t.append_child("RESTIC_PASSWORD").text().set("pw");
            t.append_child("RESTIC_SFTP_SERVER").text().set("backup");
            t.append_child(name.c_str()).text().set(v.c_str());
            const auto a = oneds::restic::parse_datastore(ds);
            BOOST_TEST(!a.slice_confined(), name << "='" << v << "'");
        }
}

// ---- ids, paths and URLs --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(ids_paths_and_urls_with_dots_blanks_quotes_and_shell_characters) {
    catalogue c;
    auto &f = c.f();
    const auto doc = f.document();
    const std::string tail = f.backup_dir(7) + "/disk.0.0";
    const std::string s = c.snapshot();
    std::vector<row> rows;
    // restic:// URLs outside the backup folder, to the downloader and stat.
    const std::vector<std::pair<std::string, std::string>> urls = {
        {"restic://101//0:" + s + tail, "downloader: the datastore given is 100, the URL names 101"},
        {"restic://../100//0:" + s + tail, "restic URL datastore id must be a number"},
        {"restic://100/../0:" + s + tail, "restic URL backup job id must be a number or empty"},
        {"restic://100/1 2/0:" + s + tail, "restic URL backup job id must be a number or empty"},
        {"restic://100//0:" + s + "/../../../../etc/7/backup/disk.0.0", "clean absolute path"},
        {"restic://100//0:" + s + f.vm_dir(7) + "/./backup/disk.0.0", "clean absolute path"},
        {"restic://100//0:" + s + f.vm_dir(7) + "/backup/..", "clean absolute path"},
        {"restic://100//0:" + s + "/" + tail, "clean absolute path"},
        {"restic://100//0:" + s + "/%2e%2e/%2E%2E/x/7/backup/disk.0.0", "restic URL must not be percent-encoded"},
        {"restic://100//0:" + s + f.vm_dir(7) + "/backup%2fdisk.0.0", "restic URL must not be percent-encoded"},
        {"restic:///etc/passwd", "restic URL needs <ds>/<bj>/<chain>/<path>"},
        {"restic://100//etc/7/backup/disk.0.0", "restic URL chain entry must be <increment>:<snapshot>"},
        {"restic://100//0:" + s + ",1:$(id)" + tail, "restic URL chain entry has no snapshot id"},
        {"restic://100//0:" + s + ";id" + tail, "restic URL chain entry has no snapshot id"},
        {"restic://100//0:" + s + "'" + tail, "restic URL chain entry has no snapshot id"},
        {"restic://100//0:" + s + "/x/7/backup", "restic URL path must be .../<vm_id>/backup/<file>"},
        {"restic://100//0:" + s + "/x/7 /backup/disk.0.0", "restic URL path must be .../<vm_id>/backup/<file>"},
        {"restic://100//0:" + s + "/x/`id`/backup/disk.0.0", "restic URL path must be .../<vm_id>/backup/<file>"},
    };
    for (const auto &[u, why] : urls) {
        rows.push_back({"downloader", {"--stdout", u}, doc, why});
        rows.push_back({"downloader", {u}, doc, why});
        if (u.rfind("restic://101", 0) != 0)
            rows.push_back({"stat", {"-1"}, f.document_with_image("<IMAGE><PATH>" + u + "</PATH></IMAGE>"), why});
    }
    rows.push_back({"stat",
                    {"-1"},
                    f.document_with_image("<IMAGE><PATH>restic://101//0:" + s + tail + "</PATH></IMAGE>"),
                    "stat: the image's path names datastore 101, the request's datastore is 100"});
    rows.push_back(
        {"stat", {"-1"}, f.document_with_image("<IMAGE><PATH>/etc/passwd</PATH></IMAGE>"), "not a restic:// URL"});
    rows.push_back({"stat", {"-1"}, f.document_with_image("<IMAGE/>"), "not a restic:// URL: ''"});
    // Image documents naming a repository through VMS/ID or BACKUP_JOB_ID.
    const auto image_with = [&](const std::string &inner) {
        return f.document_with_image("<IMAGE><ID>42</ID><SOURCE>" + s + "</SOURCE>" + inner + "</IMAGE>", {},
                                     "<EXTRA_DATA><KEEP_LAST>1</KEEP_LAST></EXTRA_DATA>");
    };
    for (const std::string &inner :
         {std::string("<VMS><ID>../../7</ID></VMS>"), std::string("<VMS><ID>7 8</ID></VMS>"),
          std::string("<VMS><ID>7;id</ID></VMS>"), std::string("<VMS><ID>$(id)</ID></VMS>"),
          std::string("<VMS><ID>'7'</ID></VMS>"),
          std::string("<VMS><ID>7</ID></VMS><TEMPLATE><BACKUP_JOB_ID>../1"
                      "</BACKUP_JOB_ID></TEMPLATE>"),
          std::string("<VMS><ID>7</ID></VMS><TEMPLATE><BACKUP_JOB_ID>1 `id`</BACKUP_JOB_ID></TEMPLATE>")})
        for (const std::string a : {"rm", "ls", "increment_flatten", "restore"})
            rows.push_back({a, a == "ls" ? std::vector<std::string>{} : std::vector<std::string>{"42"},
                            image_with(inner), "Missing datastore or image attributes: "});
    // Snapshot ids (SOURCE / INCREMENT SOURCE) that are not ids.
    for (const std::string &src : {std::string("../x"), std::string("abc;id"), std::string("$(id)"),
                                   std::string("0123 abc"), std::string("--help"), std::string("'0123abcd'")})
        for (const std::string a : {"rm", "ls", "increment_flatten"})
            rows.push_back(
                {a, a == "ls" ? std::vector<std::string>{} : std::vector<std::string>{"42"},
                 f.document_with_image("<IMAGE><ID>42</ID><SOURCE>" + src + "</SOURCE><VMS><ID>7</ID></VMS></IMAGE>",
                                       {}, "<EXTRA_DATA><KEEP_LAST>1</KEEP_LAST></EXTRA_DATA>"),
                 "Missing datastore or image attributes: "});
    c.check(rows);
}

// ---- passwords that cannot work ---------------------------------------------------------

// A line break: restic reads its password as one line from stdin on another
// host, so a backup there is refused naming the attribute, before anything
// runs (stock exports it in a variable; see docs/bad-input.md).
BOOST_AUTO_TEST_CASE(a_password_with_a_line_break_is_refused_where_restic_reads_it_from_stdin) {
    catalogue c;
    auto &f = c.f();
    std::vector<row> rows;
    for (const std::string pw : {"two\nlines", "trailing\n", "cr\rx"})
        rows.push_back({"backup", c.backup_args(), f.document({{"RESTIC_PASSWORD", pw}}, "<VM><ID>7</ID></VM>"),
                        "RESTIC_PASSWORD contains a line break"});
    c.check(rows);
}
