#define BOOST_TEST_MODULE restic_health
// Datastore health written back to oned after MONITOR (docs/health.md) and the
// metrics file (docs/metrics.md), with the real restic 0.14, the loopback sshd
// and the fake oned.
#include "tests/oned/fake_oned.hpp"
#include "tests/peer/oned_peer.hpp"
#include "tests/restic/restic_fixture.hpp"

#include "common/base64.hpp"
#include "common/strings.hpp"

#include <boost/test/unit_test.hpp>
#include <pugixml.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

using namespace oneds::test;
namespace fs = std::filesystem;

namespace {

const char *const k_keys[] = {"RESTIC_HEALTH_STATE",       "RESTIC_HEALTH_REASON",       "RESTIC_HEALTH_RESTIC_VERSION",
                              "RESTIC_HEALTH_STORAGE",     "RESTIC_HEALTH_STALE_LOCKS",  "RESTIC_HEALTH_LAST_BACKUP",
                              "RESTIC_HEALTH_LAST_VERIFY", "RESTIC_HEALTH_VERIFY_RESULT"};

std::string describe(const process_result &r) {
    return "exit " + std::to_string(r.exit_code) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

// The fake oned with datastore 100 as the fixture describes it.
struct oned_setup {
    oned::fake_oned server;
    std::string auth_file;

    explicit oned_setup(restic_fixture &f) {
        oned::datastore_record ds;
        ds.id = 100;
        ds.name = "restic";
        ds.type = "BACKUP_DS";
        pugi::xml_document doc;
        doc.load_string(f.datastore_xml().c_str());
        for (const auto &n : doc.child("DATASTORE").child("TEMPLATE").children())
            ds.attributes.set(n.name(), n.text().as_string());
        ds.attributes.set("DS_MAD", "restic");
        ds.attributes.set("TM_MAD", "-");
        ds.attributes.set("BASE_PATH", f.base_path());
        server.add_datastore(ds);
        server.start();
        auth_file = f.dir().write("one_auth." + std::to_string(server.port()), server.oneadmin_session() + "\n");
    }
    std::map<std::string, std::string> host_cfg() const {
        return {{"oned_endpoint", server.endpoint()}, {"oned_auth_file", auth_file}};
    }
    // The health keys oned now holds for datastore 100, as the next
    // MONITOR's template carries them.
    std::map<std::string, std::optional<std::string>> health() const {
        std::map<std::string, std::optional<std::string>> out;
        const auto ds = server.datastore(100);
        BOOST_REQUIRE(ds.has_value());
        for (const char *k : k_keys)
            if (auto v = ds->attributes.get(k)) out[k] = *v;
        return out;
    }
    std::vector<oned::recorded_call> updates() const {
        std::vector<oned::recorded_call> out;
        for (auto &c : server.calls())
            if (c.method == "one.datastore.update") out.push_back(c);
        return out;
    }
};

// The keys a merge update's template text sets.
std::set<std::string> keys_of(const std::string &text) {
    std::set<std::string> keys;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (auto eq = line.find('='); eq != std::string::npos)
            keys.insert(std::string(oneds::common::trim(line.substr(0, eq))));
    return keys;
}

process_result monitor(restic_fixture &f, const std::map<std::string, std::optional<std::string>> &tmpl,
                       const std::map<std::string, std::string> &plugin,
                       const std::map<std::string, std::string> &host) {
    return f.host_action("monitor", {"100"}, oneds::common::base64_encode(f.document(tmpl)), plugin, {}, host);
}

std::vector<std::string> backup_args(const restic_fixture &f, int vm) {
    return {"hypervisor:" + f.vm_dir(vm), "0", "one-" + std::to_string(vm), "-", std::to_string(vm), "0"};
}

// A lock file as a restic that died two hours ago leaves it.
void plant_stale_lock(const restic_fixture &f, const std::string &repo) {
    const std::string dir = f.base_path() + "/" + repo + "/locks";
    fs::create_directories(dir);
    const std::string file = dir + "/" + std::string(64, 'a');
    std::ofstream(file) << "encrypted";
    const auto old = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() - std::chrono::hours(2));
    struct utimbuf times {
        old, old
    };
    BOOST_REQUIRE(::utime(file.c_str(), &times) == 0);
}

// ---- a small parser of Prometheus' text exposition format -----------------

struct sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

struct exposition {
    std::map<std::string, std::string> types, helps;
    std::vector<sample> samples;
    double value(const std::string &name, const std::map<std::string, std::string> &labels) const {
        for (const auto &s : samples)
            if (s.name == name && s.labels == labels) return s.value;
        BOOST_FAIL("no sample " << name);
        return 0;
    }
};

// Fails the test on any line outside the grammar: comments "# HELP name
// text" and "# TYPE name type" (before the family's samples, once each),
// samples `name{label="value",...} value [timestamp]` with escaped values.
exposition parse_exposition(const std::string &text) {
    exposition e;
    const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
    const std::regex label_name_re("[a-zA-Z_][a-zA-Z0-9_]*");
    BOOST_REQUIRE_MESSAGE(!text.empty() && text.back() == '\n', "the file must end with a newline");
    std::istringstream in(text);
    std::set<std::string> seen_samples;
    for (std::string line; std::getline(in, line);) {
        BOOST_REQUIRE_MESSAGE(!line.empty(), "empty line");
        if (line[0] == '#') {
            std::smatch m;
            BOOST_REQUIRE_MESSAGE(std::regex_match(line, m, std::regex("# (HELP|TYPE) ([^ ]+) (.*)")), line);
            BOOST_REQUIRE_MESSAGE(std::regex_match(m[2].str(), name_re), line);
            BOOST_REQUIRE_MESSAGE(!seen_samples.contains(m[2].str()), "comment after samples: " << line);
            auto &map = m[1] == "HELP" ? e.helps : e.types;
            BOOST_REQUIRE_MESSAGE(!map.contains(m[2].str()), "repeated: " << line);
            if (m[1] == "TYPE")
                BOOST_REQUIRE_MESSAGE(
                    std::set<std::string>({"counter", "gauge", "histogram", "summary", "untyped"}).contains(m[3].str()),
                    line);
            map[m[2].str()] = m[3].str();
            continue;
        }
        sample s;
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
        s.name = line.substr(0, i);
        BOOST_REQUIRE_MESSAGE(std::regex_match(s.name, name_re), line);
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (i < line.size() && line[i] != '}') {
                std::size_t eq = line.find('=', i);
                BOOST_REQUIRE_MESSAGE(eq != std::string::npos, line);
                const std::string lname = line.substr(i, eq - i);
                BOOST_REQUIRE_MESSAGE(std::regex_match(lname, label_name_re), line);
                BOOST_REQUIRE_MESSAGE(eq + 1 < line.size() && line[eq + 1] == '"', line);
                std::string value;
                std::size_t j = eq + 2;
                for (; j < line.size() && line[j] != '"'; ++j) {
                    if (line[j] == '\\') {
                        BOOST_REQUIRE_MESSAGE(j + 1 < line.size(), line);
                        const char c = line[++j];
                        BOOST_REQUIRE_MESSAGE(c == '\\' || c == '"' || c == 'n', "bad escape: " << line);
                        value += c == 'n' ? '\n' : c;
                    } else
                        value += line[j];
                }
                BOOST_REQUIRE_MESSAGE(j < line.size(), "unterminated label value: " << line);
                BOOST_REQUIRE_MESSAGE(!s.labels.contains(lname), line);
                s.labels[lname] = value;
                i = j + 1;
                if (i < line.size() && line[i] == ',') ++i;
            }
            BOOST_REQUIRE_MESSAGE(i < line.size(), line);
            ++i;
        }
        BOOST_REQUIRE_MESSAGE(i < line.size() && line[i] == ' ', line);
        const auto fields = oneds::common::split(line.substr(i + 1), ' ');
        BOOST_REQUIRE_MESSAGE(fields.size() == 1 || fields.size() == 2, line);
        std::size_t used = 0;
        s.value = std::stod(fields[0], &used);
        BOOST_REQUIRE_MESSAGE(used == fields[0].size(), line);
        if (fields.size() == 2) BOOST_REQUIRE_MESSAGE(std::regex_match(fields[1], std::regex("-?[0-9]+")), line);
        BOOST_REQUIRE_MESSAGE(e.types.contains(s.name) && e.helps.contains(s.name), "no HELP/TYPE for " << line);
        seen_samples.insert(s.name);
        e.samples.push_back(std::move(s));
    }
    return e;
}

std::int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(health)

BOOST_AUTO_TEST_CASE(monitor_writes_health_once_and_then_only_what_changed) {
    restic_fixture f;
    oned_setup o(f);

    // First MONITOR: the template has no health yet, one merge update.
    auto r = monitor(f, {}, {}, o.host_cfg());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
    BOOST_TEST(r.out.rfind("USED_MB=", 0) == 0u, describe(r));
    auto updates = o.updates();
    BOOST_REQUIRE_MESSAGE(updates.size() == 1u, describe(r));
    BOOST_TEST(updates[0].params.at(1) == "100");
    BOOST_TEST(updates[0].params.at(3) == "1");  // merge
    const std::set<std::string> first = keys_of(updates[0].params.at(2));
    for (const char *k : {"RESTIC_HEALTH_STATE", "RESTIC_HEALTH_STORAGE", "RESTIC_HEALTH_RESTIC_VERSION",
                          "RESTIC_HEALTH_STALE_LOCKS", "RESTIC_HEALTH_VERIFY_RESULT"})
        BOOST_TEST(first.contains(k), k << " in " << updates[0].params.at(2));
    for (const char *k : {"DS_MAD", "TM_MAD", "TYPE", "BASE_PATH", "TOTAL_MB", "FREE_MB", "USED_MB"})
        BOOST_TEST(!first.contains(k), k);
    auto h = o.health();
    BOOST_TEST(h["RESTIC_HEALTH_STATE"].value_or("") == "OK");
    BOOST_TEST(h["RESTIC_HEALTH_STORAGE"].value_or("") == "OK");
    BOOST_TEST(h["RESTIC_HEALTH_RESTIC_VERSION"].value_or("") == "0.14.0");
    BOOST_TEST(h["RESTIC_HEALTH_STALE_LOCKS"].value_or("") == "0");
    BOOST_TEST(h["RESTIC_HEALTH_VERIFY_RESULT"].value_or("") == "NONE");
    BOOST_TEST(o.server.datastore(100)->attributes.get("DS_MAD").value_or("") == "restic");

    // Second MONITOR with what oned now holds: nothing changed, no update.
    r = monitor(f, o.health(), {}, o.host_cfg());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
    BOOST_TEST(o.updates().size() == 1u, describe(r));

    // A stale lock: one update with only the keys that changed.
    plant_stale_lock(f, "7");
    r = monitor(f, o.health(), {}, o.host_cfg());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
    updates = o.updates();
    BOOST_REQUIRE_MESSAGE(updates.size() == 2u, describe(r));
    BOOST_TEST(keys_of(updates[1].params.at(2)) ==
                   (std::set<std::string>{"RESTIC_HEALTH_STATE", "RESTIC_HEALTH_REASON", "RESTIC_HEALTH_STALE_LOCKS"}),
               updates[1].params.at(2));
    h = o.health();
    BOOST_TEST(h["RESTIC_HEALTH_STATE"].value_or("") == "WARNING");
    BOOST_TEST(h["RESTIC_HEALTH_STALE_LOCKS"].value_or("") == "1");
    BOOST_TEST(h["RESTIC_HEALTH_REASON"].value_or("").find("stale restic lock") != std::string::npos);
    BOOST_TEST(h["RESTIC_HEALTH_REASON"].value_or("").find("repository 7") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_failed_backup_is_recorded_and_turns_the_health_to_warning) {
    restic_fixture f;
    oned_setup o(f);
    auto r = monitor(f, {}, {}, o.host_cfg());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
    BOOST_REQUIRE(o.updates().size() == 1u);
    // VM 8 (running, as oned knows it) has no backup folder: the backup fails.
    o.server.set_vm(8, "<VM><ID>8</ID><STATE>3</STATE><LCM_STATE>3</LCM_STATE></VM>");
    const auto b = f.host_action("backup", backup_args(f, 8), f.document());
    BOOST_REQUIRE_MESSAGE(b.exit_code != 0, describe(b));
    r = monitor(f, o.health(), {}, o.host_cfg());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
    const auto updates = o.updates();
    BOOST_REQUIRE_MESSAGE(updates.size() == 2u, describe(r));
    BOOST_TEST(
        keys_of(updates[1].params.at(2)) == (std::set<std::string>{"RESTIC_HEALTH_STATE", "RESTIC_HEALTH_REASON"}),
        updates[1].params.at(2));
    auto h = o.health();
    BOOST_TEST(h["RESTIC_HEALTH_STATE"].value_or("") == "WARNING");
    BOOST_TEST(h["RESTIC_HEALTH_REASON"].value_or("").find("backup of VM 8 failed") != std::string::npos,
               h["RESTIC_HEALTH_REASON"].value_or(""));
    // The state file: 0600 in a 0700 directory, no password.
    const std::string state = f.dir().file("state/100/backups.json");
    struct stat st {};
    BOOST_REQUIRE(::stat(state.c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    BOOST_REQUIRE(::stat(f.dir().file("state/100").c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0700u);
    BOOST_TEST(read_file(state).find(k_password) == std::string::npos);

    // The VM is deleted (DONE): its failed backup no longer counts, and the
    // state forgets it, so the health does not stay at WARNING for good.
    o.server.set_vm(8, "<VM><ID>8</ID><STATE>6</STATE><LCM_STATE>0</LCM_STATE></VM>");
    r = monitor(f, o.health(), {}, o.host_cfg());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
    h = o.health();
    BOOST_TEST(h["RESTIC_HEALTH_STATE"].value_or("") == "OK", h["RESTIC_HEALTH_REASON"].value_or(""));
    BOOST_TEST(read_file(state).find("\"8\"") == std::string::npos, read_file(state));
}

// Verification and health together, on a real repository: a pack corrupted on
// purpose is found by MONITOR's verification (docs/verification.md), and the
// same MONITOR's health update tells oned, naming the VM.
BOOST_AUTO_TEST_CASE(a_corrupted_pack_found_by_verification_turns_the_health_to_error_naming_the_vm) {
    restic_fixture f;
    f.make_vm(7, {{0, 16, 4, true}});
    const auto b = f.host_action("backup", backup_args(f, 7), f.document());
    BOOST_REQUIRE_MESSAGE(b.exit_code == 0, describe(b));
    oned_setup o(f);
    // A budget above the repository's size: the whole repository is read in one cycle (N = 1).
    std::map<std::string, std::optional<std::string>> tmpl = {{"RESTIC_VERIFY_BUDGET_MB", "1024"}};
    const std::map<std::string, std::string> plugin = {{"verify_foreground", "yes"}};
    auto r = monitor(f, tmpl, plugin, o.host_cfg());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
    auto h = o.health();
    BOOST_TEST(h["RESTIC_HEALTH_STATE"].value_or("") == "OK", h["RESTIC_HEALTH_REASON"].value_or(""));
    BOOST_TEST(h["RESTIC_HEALTH_VERIFY_RESULT"].value_or("") == "OK");
    BOOST_TEST(!h["RESTIC_HEALTH_LAST_VERIFY"].value_or("").empty());

    // The largest pack of the repository, bytes overwritten in its middle.
    std::string pack;
    std::uintmax_t biggest = 0;
    for (const auto &e : fs::recursive_directory_iterator(f.base_path() + "/7/data"))
        if (e.is_regular_file() && e.file_size() > biggest) {
            biggest = e.file_size();
            pack = e.path().string();
        }
    BOOST_REQUIRE(!pack.empty());
    {
        fs::permissions(pack, fs::perms::owner_write, fs::perm_options::add);
        std::fstream io(pack, std::ios::in | std::ios::out | std::ios::binary);
        io.seekp(static_cast<std::streamoff>(biggest / 2));
        io.write("CORRUPTED-ON-PURPOSE", 20);
    }
    for (const auto &[k, v] : o.health()) tmpl[k] = v;  // what oned now holds, as its next MONITOR carries it
    r = monitor(f, tmpl, plugin, o.host_cfg());
    BOOST_REQUIRE_MESSAGE(r.exit_code == 0, describe(r));
    h = o.health();
    std::string shown;
    for (const auto &[k, v] : h) shown += "\n  " + k + "=\"" + v.value_or("") + "\"";
    BOOST_TEST_MESSAGE("health as oned received it after the corrupted pack:" << shown);
    BOOST_TEST(h["RESTIC_HEALTH_STATE"].value_or("") == "ERROR", shown);
    BOOST_TEST(h["RESTIC_HEALTH_VERIFY_RESULT"].value_or("").rfind("DAMAGED: ", 0) == 0u, shown);
    BOOST_TEST(h["RESTIC_HEALTH_VERIFY_RESULT"].value_or("").find("7") != std::string::npos, shown);
    BOOST_TEST(h["RESTIC_HEALTH_REASON"].value_or("").find("VM 7") != std::string::npos, shown);
    // Only the keys that changed went in the second update.
    const auto updates = o.updates();
    BOOST_REQUIRE(updates.size() == 2u);
    BOOST_TEST(keys_of(updates[1].params.at(2)).count("RESTIC_HEALTH_RESTIC_VERSION") == 0u);
}

BOOST_AUTO_TEST_CASE(an_unreachable_or_hanging_oned_leaves_the_reply_intact_and_on_time) {
    restic_fixture f;
    // A closed port, and a socket that takes connections and never answers.
    const auto bound = [] {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
        return std::pair<int, int>(fd, ntohs(a.sin_port));
    };
    const auto [closed_fd, closed_port] = bound();
    ::close(closed_fd);
    const auto [hang_fd, hang_port] = bound();
    BOOST_REQUIRE(::listen(hang_fd, 16) == 0);
    const std::string auth = f.dir().write("one_auth.x", "oneadmin:whatever\n");
    const std::string doc = oneds::common::base64_encode(f.document());
    const std::map<std::string, std::string> plugin{{"oned_timeout", "30"}};

    for (const int port : {closed_port, hang_port}) {
        const std::map<std::string, std::string> host{
            {"oned_endpoint", "http://127.0.0.1:" + std::to_string(port) + "/RPC2"}, {"oned_auth_file", auth}};
        // Action mode: the reply is written once the instance is gone.
        const auto a = monitor(f, {}, plugin, host);
        BOOST_TEST_MESSAGE("action mode, port " << port << ": " << a.seconds() << " s");
        BOOST_TEST(a.exit_code == 0, describe(a));
        BOOST_TEST(std::regex_match(a.out, std::regex("USED_MB=[0-9]+\nTOTAL_MB=[0-9]+\nFREE_MB=[0-9]+\n")), a.out);
        BOOST_TEST(a.seconds() < 10.0, describe(a));

        // MAD mode: the reply line comes before any health work, timed from
        // the request as oned sends it.
        oned_peer peer(peer_options{ONEDS_TEST_HOST_PATH,
                                    "-t 2 -d restic -c " + f.write_config(plugin, host) +
                                        " --plugin restic=" + std::string(ONEDS_TEST_RESTIC_PATH),
                                    {},
                                    true});
        BOOST_REQUIRE(peer.init().ok);
        const auto sent = std::chrono::steady_clock::now();
        BOOST_REQUIRE(peer.send_request("MONITOR", 100, doc));
        const auto reply = peer.wait_for_reply("MONITOR", 100, std::chrono::seconds(60));
        BOOST_REQUIRE_MESSAGE(reply.has_value(), peer.transcript());
        const double took = std::chrono::duration<double>(reply->at - sent).count();
        BOOST_TEST_MESSAGE("MAD mode, port " << port << ": reply after " << took << " s");
        BOOST_TEST(reply->success, peer.transcript());
        BOOST_TEST(took < 5.0, peer.transcript());
        const auto exit = peer.finalize();
        BOOST_TEST(exit.clean(), exit.describe());
    }
    ::close(hang_fd);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(metrics)

BOOST_AUTO_TEST_CASE(the_metrics_file_parses_and_carries_the_backup_and_monitor_figures) {
    restic_fixture f;
    const std::string file = f.dir().file("node-exporter/one_ds_restic.prom");
    fs::create_directories(fs::path(file).parent_path());
    const std::map<std::string, std::string> plugin{{"metrics_file", file}};
    f.make_vm(7, {{0, 16, 3}});
    const auto start = now_s();
    const auto b = f.host_action("backup", backup_args(f, 7), f.document(), plugin);
    BOOST_REQUIRE_MESSAGE(b.exit_code == 0, describe(b));
    const auto end = now_s();
    BOOST_REQUIRE(fs::exists(file));
    const auto m = monitor(f, {}, plugin, {});
    BOOST_REQUIRE_MESSAGE(m.exit_code == 0, describe(m));

    struct stat st {};
    BOOST_REQUIRE(::stat(file.c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0644u);
    const auto e = parse_exposition(read_file(file));
    const std::map<std::string, std::string> vm{{"datastore", "100"}, {"vm", "7"}, {"repository", "7"}};
    const std::map<std::string, std::string> ds{{"datastore", "100"}};

    // restic's summary, as the backup logged it ("<x> MiB added", one decimal).
    std::smatch added;
    BOOST_REQUIRE(std::regex_search(b.err, added, std::regex(R"(processed, ([0-9.]+) MiB added)")));
    const double bytes_added = e.value("one_ds_restic_vm_last_backup_added_bytes", vm);
    BOOST_TEST(bytes_added > 0);
    char shown[32];
    std::snprintf(shown, sizeof shown, "%.1f", bytes_added / 1048576.0);
    BOOST_TEST(std::string(shown) == added[1].str());
    const double t = e.value("one_ds_restic_vm_last_backup_timestamp_seconds", vm);
    BOOST_TEST(t >= static_cast<double>(start));
    BOOST_TEST(t <= static_cast<double>(end));
    BOOST_TEST(e.value("one_ds_restic_vm_last_success_timestamp_seconds", vm) == t);
    BOOST_TEST(e.value("one_ds_restic_vm_last_backup_success", vm) == 1.0);
    BOOST_TEST(e.value("one_ds_restic_vm_last_backup_duration_seconds", vm) > 0.0);
    BOOST_TEST(e.value("one_ds_restic_vm_last_backup_duration_seconds", vm) <= static_cast<double>(end - start + 1));

    // Capacity: MONITOR's own figures.
    std::map<std::string, double> figures;
    for (const auto &line : oneds::common::split(m.out, '\n'))
        if (auto eq = line.find('='); eq != std::string::npos)
            figures[line.substr(0, eq)] = std::stod(line.substr(eq + 1));
    BOOST_TEST(e.value("one_ds_restic_datastore_total_bytes", ds) == figures.at("TOTAL_MB") * 1048576.0);
    BOOST_TEST(e.value("one_ds_restic_datastore_used_bytes", ds) == figures.at("USED_MB") * 1048576.0);
    BOOST_TEST(e.value("one_ds_restic_datastore_free_bytes", ds) == figures.at("FREE_MB") * 1048576.0);
    BOOST_TEST(e.value("one_ds_restic_datastore_storage_up", ds) == 1.0);
    BOOST_TEST(e.value("one_ds_restic_datastore_health_state", ds) == 0.0);
    BOOST_TEST(e.value("one_ds_restic_datastore_stale_locks", ds) == 0.0);
    // The repository's size: its files on the storage.
    std::uint64_t on_disk = 0;
    for (const auto &p : fs::recursive_directory_iterator(f.base_path() + "/7"))
        if (p.is_regular_file()) on_disk += p.file_size();
    BOOST_TEST(e.value("one_ds_restic_repository_size_bytes", {{"datastore", "100"}, {"repository", "7"}}) ==
               static_cast<double>(on_disk));

    // A verification result the verification wrote is carried too.
    std::ofstream(f.dir().file("state/100/verify.json"))
        << R"({"repositories": {"7": {"time": 1700000000, "subset": "1/8", "result": "damaged", "message": "pack x", "vm": "7"}}})";
    BOOST_REQUIRE(monitor(f, {}, plugin, {}).exit_code == 0);
    const auto e2 = parse_exposition(read_file(file));
    const std::map<std::string, std::string> repo{{"datastore", "100"}, {"repository", "7"}, {"vm", "7"}};
    BOOST_TEST(e2.value("one_ds_restic_repository_verify_status", repo) == 2.0);
    BOOST_TEST(e2.value("one_ds_restic_repository_last_verify_timestamp_seconds", repo) == 1700000000.0);
    BOOST_TEST(e2.value("one_ds_restic_datastore_health_state", ds) == 2.0);
}

BOOST_AUTO_TEST_CASE(the_parser_reads_escaped_label_values_and_timestamps) {
    const auto e = parse_exposition("# HELP a x\n# TYPE a gauge\na{l=\"q\\\"\\\\\\n\",m=\"\"} 1.5 123\n");
    BOOST_REQUIRE(e.samples.size() == 1u);
    BOOST_TEST(e.samples[0].labels.at("l") == "q\"\\\n");
    BOOST_TEST(e.samples[0].value == 1.5);
}

BOOST_AUTO_TEST_SUITE_END()
