// Specification of one_ds_host in MAD mode, as oned sees it: the host is started
// and driven by oned_peer exactly as oned's Driver<MSG> does (one ARGUMENTS
// argv element, fd 2 closed, INIT read in one 31-byte read, "<A>  <id> <b64>"
// requests, FINALIZE then both pipes closed). The protocol is described in
// docs/oned-protocol.md (starting and stopping, line grammar, actions); the test plugin's behaviours in
// tests/plugins/test_plugin.cpp.
#define BOOST_TEST_MODULE host_mad
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>

#include "host/mad_protocol.hpp"
#include "tests/integration/oned_requests.hpp"
#include "tests/integration/scratch_dir.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using oneds::test::action_data;
using oneds::test::action_data_payload;
using oneds::test::driver_line;
using oneds::test::exit_report;
using oneds::test::image_xml;
using oneds::test::oned_peer;
using oneds::test::peer_clock;
using oneds::test::reply;
using oneds::test::scratch_dir;
using oneds::test::test_behaviour;
namespace built = oneds::test::built;

// A reply that should come at once; long enough for a loaded CI machine.
constexpr auto k_reply_wait = 10s;

std::string testdrv_plugin_arg() { return std::string("--plugin testdrv=") + built::testdrv_plugin(); }

// A CP request document for an image on a datastore served by ds_mad, with an
// optional test plugin behaviour.
std::string cp_payload(const std::string &ds_mad, int image_id, const std::string &behaviour = {}) {
    action_data d;
    d.ds_mad = ds_mad;
    d.image = image_xml(image_id);
    if (!behaviour.empty()) d.extra_xml = test_behaviour(behaviour);
    return action_data_payload(d);
}

std::string monitor_payload(const std::string &ds_mad, const std::string &behaviour = {}) {
    action_data d;
    d.ds_mad = ds_mad;
    if (!behaviour.empty()) d.extra_xml = test_behaviour(behaviour);
    return action_data_payload(d);
}

bool current_test_failed() {
    using namespace boost::unit_test;
    return !results_collector.results(framework::current_test_case().p_id).passed();
}

bool process_gone(pid_t pid) { return ::kill(pid, 0) == -1 && errno == ESRCH; }

// Gone, or a zombie: it has exited and only its reaper (init, for an orphan)
// still has to collect it.
bool process_exited(pid_t pid) {
    if (process_gone(pid)) return true;
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');
    return close == std::string::npos || stat.substr(close + 2, 1) == "Z";
}

// One host per test, started as oned starts it. On failure the fixture prints
// what the host wrote and its log.
struct host_fixture {
    scratch_dir dir;
    std::unique_ptr<oned_peer> peer;
    std::string log_file = dir.file("host.log");

    // Starts the host with oned's ARGUMENTS string, without the handshake.
    // with_log puts --log-file (host.log in dir) and --log-level debug first
    // (everything after a "--" belongs to the fallback).
    oned_peer &launch(const std::string &arguments, std::map<std::string, std::string> env = {}, bool with_log = true) {
        // No /etc/one/one_ds_host.conf may leak in: ONE_LOCATION points here.
        env.emplace("ONE_LOCATION", dir.path().string());
        const std::string args = with_log ? "--log-file " + log_file + " --log-level debug " + arguments : arguments;
        peer = std::make_unique<oned_peer>(oneds::test::peer_options{built::host(), args, env});
        return *peer;
    }

    // launch() and oned's handshake, which must succeed.
    oned_peer &start(const std::string &arguments, std::map<std::string, std::string> env = {}, bool with_log = true) {
        launch(arguments, std::move(env), with_log);
        const auto h = peer->init();
        BOOST_REQUIRE_MESSAGE(h.ok, "handshake: " << h.error);
        return *peer;
    }

    reply require_reply(const std::string &action, std::int64_t id, peer_clock::duration wait = k_reply_wait) {
        auto r = peer->wait_for_reply(action, id, wait);
        BOOST_REQUIRE_MESSAGE(r.has_value(), "no reply to " << action << " " << id << "; got:\n" << peer->transcript());
        return *r;
    }

    ~host_fixture() {
        if (!current_test_failed()) return;
        if (peer) BOOST_TEST_MESSAGE("host wrote:\n" << peer->transcript());
        BOOST_TEST_MESSAGE("host log:\n" << dir.read("host.log"));
    }
};

// Every reply line for id.
std::vector<reply> replies_for(const std::vector<reply> &all, std::int64_t id) {
    std::vector<reply> out;
    std::copy_if(all.begin(), all.end(), std::back_inserter(out), [id](const reply &r) { return r.id == id; });
    return out;
}

std::size_t count_replies(const std::vector<driver_line> &lines) {
    return static_cast<std::size_t>(
        std::count_if(lines.begin(), lines.end(), [](const driver_line &l) { return oneds::test::parse_reply(l); }));
}

// The recording fake_one_datastore writes: ARGV/LINE/EXIT entries.
std::vector<std::string> recorded(const scratch_dir &dir, const std::string &prefix) {
    std::vector<std::string> out;
    std::istringstream in(dir.read("fallback.rec"));
    for (std::string line; std::getline(in, line);)
        if (line.rfind(prefix, 0) == 0) out.push_back(line.substr(prefix.size()));
    return out;
}

std::vector<std::string> recorded_argv(const scratch_dir &dir) {
    std::vector<std::string> out;
    for (const auto &a : recorded(dir, "ARGV ")) out.push_back(a.substr(a.find(' ') + 1));
    return out;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(mad_mode, host_fixture)

// --- Handshake ---------------------------------------------------------------------

const std::vector<std::string> k_startup_arguments = {
    "-t 15 -d testdrv",
    "-t 15 -d testdrv,fs -s shared,ssh --fallback " + std::string(built::fake_one_datastore()),
    "-t 15 -d restic --plugin restic=" + std::string(built::restic_plugin()),
};

// oned does one read() of at most 31 bytes and needs "INIT SUCCESS" in it;
// anything sent before or with the reply (a LOG line, the fallback's own INIT
// reply) would be swallowed or break the handshake.
BOOST_DATA_TEST_CASE_F(host_fixture, init_reply_fits_one_31_byte_read,
                       boost::unit_test::data::make(k_startup_arguments), arguments) {
    // Plain oned conditions: no log file, stderr closed.
    launch(arguments + " " + testdrv_plugin_arg(), {}, false);
    const auto h = peer->init();
    BOOST_TEST_REQUIRE(h.ok, h.error);
    BOOST_TEST(h.raw.size() <= 31U);
    BOOST_TEST(h.raw.rfind("INIT SUCCESS", 0) == 0U);
    BOOST_TEST(std::count(h.raw.begin(), h.raw.end(), '\n') == 1,
               "exactly one line in the INIT read: '" << h.raw << "'");
    BOOST_TEST(h.raw.back() == '\n');
    BOOST_TEST(std::chrono::duration<double>(h.took).count() < 10.0);
    // And nothing unsolicited follows it.
    std::this_thread::sleep_for(300ms);
    BOOST_TEST(peer->lines().empty(), "unsolicited output:\n" << peer->transcript());
}

// --- Routing and stock-compatible failures --------------------------------------------

BOOST_AUTO_TEST_CASE(cp_to_restic_datastore_fails_as_stock) {
    start(std::string("-t 15 -d restic --plugin restic=") + built::restic_plugin());
    // The stock restic driver's cp/clone/mkfs scripts say exactly this.
    peer->send_request("CP", 7, cp_payload("restic", 7));
    peer->send_request("CLONE", 8, cp_payload("restic", 8));
    peer->send_request("MKFS", 9, cp_payload("restic", 9));
    BOOST_TEST(require_reply("CP", 7).info == "cp: Operation not supported");
    const std::vector<std::tuple<std::string, int, std::string>> expected = {
        {"CP", 7, "cp"}, {"CLONE", 8, "clone"}, {"MKFS", 9, "mkfs"}};
    for (const auto &[action, id, lower] : expected) {
        const auto r = require_reply(action, id);
        BOOST_TEST(!r.success);
        const auto line = action + " FAILURE " + std::to_string(id) + " " + lower + ": Operation not supported";
        const auto lines = peer->lines();
        BOOST_TEST(std::any_of(lines.begin(), lines.end(), [&](const driver_line &l) { return l.text == line; }),
                   "expected line '" << line << "' in:\n"
                                     << peer->transcript());
    }
}

BOOST_AUTO_TEST_CASE(unknown_ds_mad_gets_not_available) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    peer->send_request("CP", 9, cp_payload("fs", 9));
    const auto r = require_reply("CP", 9);
    BOOST_TEST(!r.success);
    BOOST_TEST(r.info == "Datastore driver 'fs' not available");
}

// As the stock driver answers actions its driver has no script for.
BOOST_AUTO_TEST_CASE(action_the_plugin_does_not_list_fails_as_stock) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    peer->send_request("SNAP_FLATTEN", 16, cp_payload("testdrv", 16));
    const auto r = require_reply("SNAP_FLATTEN", 16);
    BOOST_TEST(!r.success);
    BOOST_TEST(r.info == "snap_flatten: Operation not supported");
}

BOOST_AUTO_TEST_CASE(system_datastore_routes_by_tm_mad) {
    start("-t 15 -d testdrv -s shared " + testdrv_plugin_arg());
    action_data system_ds;
    system_ds.ds_type = 1;
    system_ds.ds_mad = "-";
    system_ds.tm_mad = "testdrv";
    system_ds.ds_id = 0;
    system_ds.extra_xml =
        "<DATASTORE_LOCATION>/var/lib/one/datastores</DATASTORE_LOCATION><MONITOR_VM_DISKS>1</MONITOR_VM_DISKS>";
    peer->send_request("MONITOR", 0, action_data_payload(system_ds));

    // An image datastore with the same TM_MAD is routed by its DS_MAD.
    action_data image_ds;
    image_ds.ds_mad = "fs";
    image_ds.tm_mad = "testdrv";
    image_ds.ds_id = 1;
    peer->send_request("MONITOR", 1, action_data_payload(image_ds));

    // A system datastore whose TM_MAD no plugin serves.
    action_data other_system_ds = system_ds;
    other_system_ds.ds_mad = "testdrv";
    other_system_ds.tm_mad = "ssh";
    other_system_ds.ds_id = 2;
    peer->send_request("MONITOR", 2, action_data_payload(other_system_ds));

    const auto served = require_reply("MONITOR", 0);
    BOOST_TEST(served.success);
    BOOST_TEST(oneds::test::base64_decode(served.info).value_or("<not base64>") ==
               "USED_MB=1\nFREE_MB=2\nTOTAL_MB=3\n");
    const auto by_ds_mad = require_reply("MONITOR", 1);
    BOOST_TEST(!by_ds_mad.success);
    BOOST_TEST(oneds::test::base64_decode(by_ds_mad.info).value_or("<not base64>") ==
               "Datastore driver 'fs' not available");
    const auto by_tm_mad = require_reply("MONITOR", 2);
    BOOST_TEST(!by_tm_mad.success);
    BOOST_TEST(oneds::test::base64_decode(by_tm_mad.info).value_or("<not base64>") ==
               "Datastore driver 'ssh' not available");
}

BOOST_AUTO_TEST_CASE(missing_plugin_file_gives_clear_failure) {
    start("-t 15 -d testdrv --plugin testdrv=/nonexistent.so");
    peer->send_request("CP", 30, cp_payload("testdrv", 30));
    const auto r = require_reply("CP", 30);
    BOOST_TEST(!r.success);
    BOOST_TEST(r.info.find("Datastore driver 'testdrv' failed to load") != std::string::npos, r.info);
    BOOST_TEST(r.info.find("/nonexistent.so") != std::string::npos, r.info);
}

// --- Reply contents -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(monitor_info_is_base64) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    peer->send_request("MONITOR", 100, monitor_payload("testdrv"));
    const auto r = require_reply("MONITOR", 100);
    BOOST_TEST(r.success);
    BOOST_TEST(r.info.find_first_of(" \t\r\n") == std::string::npos, "one token, no line breaks: '" << r.info << "'");
    const auto decoded = oneds::test::base64_decode(r.info);
    BOOST_TEST_REQUIRE(decoded.has_value(), "not base64: '" << r.info << "'");
    BOOST_TEST(*decoded == "USED_MB=1\nFREE_MB=2\nTOTAL_MB=3\n");
}

// oned base64-decodes MONITOR info on failure too (docs/oned-protocol.md#monitor-info-is-base64).
BOOST_AUTO_TEST_CASE(monitor_failure_text_is_base64_too) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    peer->send_request("MONITOR", 101, monitor_payload("testdrv", "fail:repository locked"));
    const auto r = require_reply("MONITOR", 101);
    BOOST_TEST(!r.success);
    BOOST_TEST(oneds::test::base64_decode(r.info).value_or("<not base64: " + r.info + ">") == "repository locked");
}

BOOST_AUTO_TEST_CASE(multiline_info_is_kept_on_one_protocol_line) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    peer->send_request("CP", 12, cp_payload("testdrv", 12, "multiline"));
    const auto r = require_reply("CP", 12);
    BOOST_TEST(r.success);
    BOOST_TEST(r.info == "line1 line2");
    std::this_thread::sleep_for(200ms);
    BOOST_TEST(peer->lines().size() == 1U, peer->transcript());
}

BOOST_AUTO_TEST_CASE(log_lines_carry_the_oned_id) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    peer->send_request("CP", 42, cp_payload("testdrv", 42, "log:3"));
    peer->send_request("CLONE", 43, cp_payload("testdrv", 43, "log:2"));
    const auto cp = require_reply("CP", 42);
    const auto clone = require_reply("CLONE", 43);
    BOOST_TEST(cp.success);
    BOOST_TEST(clone.success);

    std::map<std::int64_t, std::vector<std::string>> texts;
    for (const auto &m : peer->logs()) {
        BOOST_TEST(m.severity == 'I');
        BOOST_TEST((m.id == 42 || m.id == 43), "LOG line with id " << m.id);
        texts[m.id].push_back(m.text);
        // Progress is reported before the reply it belongs to.
        BOOST_TEST(m.index < (m.id == 42 ? cp.index : clone.index));
    }
    BOOST_TEST(texts[42] == (std::vector<std::string>{"progress 1/3", "progress 2/3", "progress 3/3"}),
               boost::test_tools::per_element());
    BOOST_TEST(texts[43] == (std::vector<std::string>{"progress 1/2", "progress 2/2"}),
               boost::test_tools::per_element());
}

// A datastore with many images makes long payloads; the host reads in chunks.
BOOST_AUTO_TEST_CASE(long_request_lines_are_read_whole) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    action_data d;
    d.ds_mad = "testdrv";
    d.image = image_xml(17);
    for (int i = 0; i < 20000; ++i) d.extra_xml += "<PAD>" + std::to_string(i) + "</PAD>";
    d.extra_xml += test_behaviour("log:1");
    const auto payload = action_data_payload(d);
    BOOST_TEST_REQUIRE(payload.size() > 300000U);
    peer->send_request("CP", 17, payload);
    peer->send_request("CP", 18, cp_payload("testdrv", 18));
    const auto r = require_reply("CP", 17);
    BOOST_TEST(r.success);
    BOOST_TEST(r.info == "cp 17");
    // The behaviour element sits at the very end: the whole document arrived.
    const auto logs = peer->logs();
    BOOST_TEST(std::count_if(logs.begin(), logs.end(), [](const auto &m) { return m.id == 17; }) == 1);
    BOOST_TEST(require_reply("CP", 18).success);
}

// A request line over 32 MiB (plus room for the action and id) is answered
// with a FAILURE naming its size, without being stored whole, and the host
// goes on with the next request.
BOOST_AUTO_TEST_CASE(an_oversized_request_line_is_refused_by_size) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    const std::string huge(oneds::host::mad::k_max_request_line, 'A');  // with "CP 17 " it is over
    BOOST_TEST_REQUIRE(peer->send_line("CP 17 " + huge));
    peer->send_request("CP", 18, cp_payload("testdrv", 18));
    const auto r = require_reply("CP", 17);
    BOOST_TEST(!r.success);
    BOOST_TEST(r.info.find("request of " + std::to_string(huge.size() + 6) + " bytes refused") != std::string::npos,
               r.info);
    BOOST_TEST(require_reply("CP", 18).success);
}

// oned sends MONITOR for a datastore on a timer and again after every CP, so
// the same id can be in flight twice; each request gets its own reply.
BOOST_AUTO_TEST_CASE(same_id_twice_in_flight_gets_two_replies) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    peer->send_request("MONITOR", 100, monitor_payload("testdrv", "sleep:300"));
    peer->send_request("MONITOR", 100, monitor_payload("testdrv", "sleep:100"));
    const bool both = peer->wait_until([](const auto &lines) { return count_replies(lines) >= 2; }, k_reply_wait);
    BOOST_TEST_REQUIRE(both, "two replies expected, got:\n" << peer->transcript());
    for (const auto &r : peer->replies()) {
        BOOST_TEST(r.action == "MONITOR");
        BOOST_TEST(r.id == 100);
        BOOST_TEST(r.success);
    }
}

// --- Concurrency ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(replies_leave_in_completion_order) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    const auto sent = peer_clock::now();
    peer->send_request("CP", 1, cp_payload("testdrv", 1, "sleep:6000"));
    peer->send_request("CP", 2, cp_payload("testdrv", 2));
    const auto fast = require_reply("CP", 2);
    const auto slow = require_reply("CP", 1);
    BOOST_TEST(fast.index < slow.index, "the fast reply must not wait for the slow one:\n" << peer->transcript());
    // The fast reply comes at once; held behind the slow one it would come
    // after its 6 s. The bound sits between, for a slow machine.
    BOOST_TEST(std::chrono::duration<double>(fast.at - sent).count() < 4.5);
    BOOST_TEST(std::chrono::duration<double>(slow.at - sent).count() >= 5.9);
    BOOST_TEST(fast.info == "cp 2");
    BOOST_TEST(slow.info == "cp 1");
}

BOOST_AUTO_TEST_CASE(hundred_concurrent_requests_each_answered_once) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    constexpr int k_requests = 100;
    const char *const actions[] = {"CP", "CLONE", "MKFS", "RM", "STAT"};
    std::map<std::int64_t, std::string> action_of;
    for (int i = 0; i < k_requests; ++i) {
        const std::int64_t id = 1000 + i;
        action_of[id] = actions[i % 5];
        // Varied durations so that completions interleave with submissions.
        const auto behaviour = i % 4 == 0 ? std::string("echo") : "sleep:" + std::to_string((i * 7) % 50);
        BOOST_REQUIRE(peer->send_request(action_of[id], id, cp_payload("testdrv", static_cast<int>(id), behaviour)));
    }
    const bool all_arrived =
        peer->wait_until([](const auto &lines) { return count_replies(lines) >= k_requests; }, 30s);
    BOOST_TEST_REQUIRE(all_arrived, "only " << peer->replies().size() << " replies");
    // Give duplicates a chance to show up.
    std::this_thread::sleep_for(500ms);

    const auto all = peer->replies();
    BOOST_TEST(all.size() == static_cast<std::size_t>(k_requests));
    BOOST_TEST(peer->lines().size() == all.size(), "only replies expected:\n" << peer->transcript());
    std::map<std::int64_t, int> seen;
    for (const auto &r : all) {
        ++seen[r.id];
        BOOST_TEST_CONTEXT("reply " << r.action << " " << r.id) {
            BOOST_TEST_REQUIRE(action_of.contains(r.id), "a reply to an id never sent");
            BOOST_TEST(r.action == action_of[r.id]);
            BOOST_TEST(r.success);
            // The test plugin echoes the lower-case action and the oned id it got.
            std::string lower = r.action;
            std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
            BOOST_TEST(r.info == lower + " " + std::to_string(r.id));
        }
    }
    for (const auto &[id, action] : action_of)
        BOOST_TEST(seen[id] == 1, action << " " << id << " answered " << seen[id] << " times");
}

struct concurrency_case {
    unsigned threads;
    int requests;
    int hold_ms;
};
std::ostream &operator<<(std::ostream &o, const concurrency_case &c) {
    return o << "-t " << c.threads << ", " << c.requests << " requests of " << c.hold_ms << " ms";
}
// Each request holds long enough for all N to be running at once even on a
// loaded machine.
const std::vector<concurrency_case> k_concurrency_cases = {{15, 100, 300}, {3, 24, 300}};

// The test plugin counts the requests running inside it; "-t N" must bound
// that count and, with more than N queued, reach it.
BOOST_DATA_TEST_CASE_F(host_fixture, in_flight_requests_never_exceed_t,
                       boost::unit_test::data::make(k_concurrency_cases), c) {
    start("-t " + std::to_string(c.threads) + " -d testdrv " + testdrv_plugin_arg());
    for (int i = 0; i < c.requests; ++i)
        peer->send_request("CP", 2000 + i, cp_payload("testdrv", 2000 + i, "concurrency:" + std::to_string(c.hold_ms)));
    const bool all_arrived = peer->wait_until(
        [&](const auto &lines) { return count_replies(lines) >= static_cast<std::size_t>(c.requests); }, 60s);
    BOOST_TEST_REQUIRE(all_arrived, "only " << peer->replies().size() << " replies");
    unsigned peak = 0;
    for (const auto &r : peer->replies()) {
        BOOST_TEST_REQUIRE(r.success, r.action << " " << r.id << ": " << r.info);
        BOOST_TEST_REQUIRE(r.info.rfind("concurrency peak ", 0) == 0U, r.info);
        peak = std::max(peak, static_cast<unsigned>(std::stoul(r.info.substr(17))));
    }
    BOOST_TEST(peak <= c.threads);
    BOOST_TEST(peak == c.threads);
}

// --- Time limits ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(timeout_w_cancels_and_reports) {
    start("-t 15 -w 1 -d testdrv " + testdrv_plugin_arg());
    const auto sent = peer_clock::now();
    peer->send_request("CP", 6, cp_payload("testdrv", 6, "sleep:5000"));
    peer->send_request("CP", 7, cp_payload("testdrv", 7));
    const auto quick = require_reply("CP", 7);
    BOOST_TEST(quick.success);
    const auto r = require_reply("CP", 6);
    const double after = std::chrono::duration<double>(r.at - sent).count();
    BOOST_TEST(!r.success);
    BOOST_TEST(r.info.find("Timeout") != std::string::npos, r.info);
    BOOST_TEST(after >= 0.9);
    BOOST_TEST(after < 4.0, "cancelled at -w 1, not left to finish its 5 s: " << after << " s");
}

// --- Malformed input ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(bad_base64_and_bad_xml_payloads_fail_cleanly) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    peer->send_line("HELLO");  // no id: ignored
    peer->send_request("CP", 20, "!!not*base64!!");
    peer->send_request("CP", 21, oneds::test::base64_encode("this is <not xml"));
    peer->send_line("CP  22");  // no payload at all
    peer->send_request("MONITOR", 23, "%%%");
    peer->send_request("CP", 24, oneds::test::base64_encode("<DS_DRIVER_ACTION_DATA/>"));  // no DATASTORE
    peer->send_request("CP", 25, cp_payload("testdrv", 25));                               // still served

    const auto not_base64 = require_reply("CP", 20);
    BOOST_TEST(!not_base64.success);
    BOOST_TEST(not_base64.info.find("base64") != std::string::npos, not_base64.info);
    const auto not_xml = require_reply("CP", 21);
    BOOST_TEST(!not_xml.success);
    BOOST_TEST(not_xml.info.find("XML") != std::string::npos, not_xml.info);
    const auto missing = require_reply("CP", 22);
    BOOST_TEST(!missing.success);
    BOOST_TEST(missing.info != "-");
    const auto monitor = require_reply("MONITOR", 23);
    BOOST_TEST(!monitor.success);
    BOOST_TEST(oneds::test::base64_decode(monitor.info).value_or("<not base64: " + monitor.info + ">").find("base64") !=
               std::string::npos);
    const auto no_datastore = require_reply("CP", 24);
    BOOST_TEST(!no_datastore.success);
    BOOST_TEST(no_datastore.info.find("not available") != std::string::npos, no_datastore.info);
    const auto good = require_reply("CP", 25);
    BOOST_TEST(good.success);
    BOOST_TEST(good.info == "cp 25");

    std::this_thread::sleep_for(300ms);
    const auto all = peer->replies();
    for (std::int64_t id = 20; id <= 25; ++id) BOOST_TEST(replies_for(all, id).size() == 1U, "replies to " << id);
    BOOST_TEST(all.size() == 6U, peer->transcript());
    const auto report = peer->finalize();
    BOOST_TEST(report.exited_with(0), report.describe());
}

// --- Shutdown -------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(finalize_cancels_long_work_and_exits_within_10s) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    peer->send_request("CP", 5, cp_payload("testdrv", 5, "sleep:60000"));
    peer->send_request("CP", 4, cp_payload("testdrv", 4));
    require_reply("CP", 4);  // the host is serving, so CP 5 is in flight
    const pid_t pid = peer->pid();
    const auto report = peer->finalize();
    BOOST_TEST(report.exited_with(0), report.describe());
    BOOST_TEST(!report.killed);
    // oned SIGKILLs at 10 s and the host's own watchdog fires at 9.5 s: well
    // under both means the work was cancelled, not waited out.
    BOOST_TEST(report.seconds() < 8.0, report.describe());
    BOOST_TEST(process_gone(pid));
}

// A plugin that ignores cancel and has processes of its own, and requests
// still queued behind it: before oned's SIGKILL at 10 s, every request gets
// exactly one reply and no process the host started is left.
BOOST_AUTO_TEST_CASE(finalize_answers_every_request_once_and_leaves_no_process) {
    start("-t 2 --finalize-grace 1 -d testdrv " + testdrv_plugin_arg());
    peer->send_request("CP", 1, cp_payload("testdrv", 1, "stubborn:60000"));
    peer->send_request("CP", 2, cp_payload("testdrv", 2, "stubborn:60000"));
    for (int id = 3; id <= 12; ++id) peer->send_request("CP", id, cp_payload("testdrv", id));  // queued: -t 2
    // Both children are running once their LOG lines are in.
    std::vector<pid_t> children;
    const auto deadline = peer_clock::now() + k_reply_wait;
    while (children.size() < 2 && peer_clock::now() < deadline) {
        children.clear();
        for (const auto &l : peer->lines())
            if (const auto at = l.text.find(" child "); l.text.starts_with("LOG I ") && at != std::string::npos)
                children.push_back(static_cast<pid_t>(std::stol(l.text.substr(at + 7))));
        std::this_thread::sleep_for(20ms);
    }
    BOOST_TEST_REQUIRE(children.size() == 2U, peer->transcript());
    const auto report = peer->finalize_and_listen();
    BOOST_TEST(peer->wait_for_output_eof(2s));
    BOOST_TEST(report.exited_with(0), report.describe());
    BOOST_TEST(!report.killed, "oned would have SIGKILLed it: " << report.describe());
    BOOST_TEST(report.seconds() < 10.0, report.describe());
    const auto all = peer->replies();
    for (int id = 1; id <= 12; ++id) {
        const auto got = replies_for(all, id);
        BOOST_TEST(got.size() == 1U, "replies to " << id << ": " << peer->transcript());
        if (got.size() == 1U) BOOST_TEST(!got.front().success, "CP " << id << ": " << got.front().info);
    }
    for (const auto &[id, why] : {std::pair{1, "cut short"}, std::pair{3, "not started"}})
        if (const auto got = replies_for(all, id); !got.empty())
            BOOST_TEST(got.front().info.find(why) != std::string::npos, peer->transcript());
    // The children were SIGKILLed; once the host is gone nobody is their
    // parent but init, which reaps them.
    for (const pid_t child : children) {
        bool gone = false;
        for (int i = 0; i < 200 && !gone; ++i) {
            gone = process_exited(child);
            if (!gone) std::this_thread::sleep_for(10ms);
        }
        BOOST_TEST(gone, "process " << child << " outlived the host");
    }
}

BOOST_AUTO_TEST_CASE(finalize_with_zero_grace_cancels_at_once) {
    start("-t 15 --finalize-grace 0 -d testdrv " + testdrv_plugin_arg());
    peer->send_request("CP", 5, cp_payload("testdrv", 5, "sleep:60000"));
    peer->send_request("CP", 4, cp_payload("testdrv", 4));
    require_reply("CP", 4);
    const auto report = peer->finalize();
    BOOST_TEST(report.exited_with(0), report.describe());
    // At once (plus the exit, LeakSanitizer's scan included) is meant; the
    // default grace would show 5 s, the sleeping request 60 s.
    BOOST_TEST(report.seconds() < 4.0, report.describe());
}

BOOST_AUTO_TEST_CASE(eof_on_stdin_shuts_down) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    peer->send_request("CP", 3, cp_payload("testdrv", 3));
    require_reply("CP", 3);
    const pid_t pid = peer->pid();
    const auto report = peer->close_stdin_and_wait();
    BOOST_TEST(report.exited_with(0), report.describe());
    // Idle, it exits at once (plus LeakSanitizer's scan under ASan); a host
    // that misses the EOF runs until it is killed, waiting for a grace it
    // does not need would show 5 s. The bound sits between.
    BOOST_TEST(report.seconds() < 4.0, report.describe());
    BOOST_TEST(peer->wait_for_output_eof(2s));
    BOOST_TEST(process_gone(pid));
    BOOST_TEST(dir.read("host.log").find("stdin closed") != std::string::npos);
}

// oned closes fd 2 before exec. The host must not let the next file it opens
// (here: the log file named in its config) become fd 2, or everything written
// to "stderr" (by a plugin, a library, the C++ runtime) would land in the log.
BOOST_AUTO_TEST_CASE(stderr_closed_by_oned_does_not_break_the_host) {
    const auto config = dir.write("one_ds_host.conf", "log_file = " + log_file +
                                                          "\n"
                                                          "log_level = debug\n"
                                                          "drivers = testdrv\n"
                                                          "plugin = testdrv=" +
                                                          built::testdrv_plugin() + "\n");
    start("-c " + config, {}, false);
    const std::string marker = "WRITTEN-TO-FD-2";
    peer->send_request("CP", 3, cp_payload("testdrv", 3, "stderr:" + marker));
    const auto r = require_reply("CP", 3);
    BOOST_TEST(r.success);
    BOOST_TEST(r.info == "cp 3");

    std::error_code ec;
    const auto fd2 = std::filesystem::read_symlink("/proc/" + std::to_string(peer->pid()) + "/fd/2", ec);
    BOOST_TEST(!ec, "fd 2 of the host must be open: " << ec.message());
    BOOST_TEST(fd2.string() != log_file);
    BOOST_TEST(fd2.string() == "/dev/null");

    const auto report = peer->finalize();
    BOOST_TEST(report.exited_with(0), report.describe());
    const auto log = dir.read("host.log");
    BOOST_TEST(log.find("loaded plugin 'testdrv'") != std::string::npos, log);
    BOOST_TEST(log.find("FINALIZE received") != std::string::npos, log);
    BOOST_TEST(log.find(marker) == std::string::npos, "fd 2 output ended up in the log file:\n" << log);
}

// --- Fallback driver ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(fallback_gets_unowned_requests_and_its_replies_are_relayed) {
    start("-t 15 -d testdrv,fs -s shared,ssh -w 60 " + testdrv_plugin_arg() + " --fallback " +
              built::fake_one_datastore(),
          {{"FAKE_ONE_DATASTORE_RECORD", dir.file("fallback.rec")}});
    const auto fs_payload = cp_payload("fs", 10);
    peer->send_request("CP", 10, fs_payload);
    peer->send_request("CP", 11, cp_payload("testdrv", 11));
    peer->send_request("MONITOR", 12, monitor_payload("fs"));

    const auto by_fallback = require_reply("CP", 10);
    BOOST_TEST(by_fallback.success);
    BOOST_TEST(by_fallback.info == "fallback-cp");
    const auto by_plugin = require_reply("CP", 11);
    BOOST_TEST(by_plugin.success);
    BOOST_TEST(by_plugin.info == "cp 11");
    // Relayed unchanged: MONITOR info is not re-encoded, LOG lines keep their id.
    BOOST_TEST(require_reply("MONITOR", 12).info == "fallback-monitor");
    const auto lines = peer->lines();
    const auto has_line = [&](const std::string &text) {
        return std::any_of(lines.begin(), lines.end(), [&](const driver_line &l) { return l.text == text; });
    };
    BOOST_TEST(has_line("LOG I 10 fallback got CP"), peer->transcript());
    BOOST_TEST(has_line("LOG I 12 fallback got MONITOR"), peer->transcript());
    BOOST_TEST(!has_line("INIT SUCCESS - -"), "the fallback's INIT reply must not reach oned");

    // By default it gets our -t/-d/-s/-w.
    BOOST_TEST(recorded_argv(dir) == (std::vector<std::string>{built::fake_one_datastore(), "-t", "15", "-d",
                                                               "testdrv,fs", "-s", "shared,ssh", "-w", "60"}),
               boost::test_tools::per_element());
    const auto report = peer->finalize();
    BOOST_TEST(report.exited_with(0), report.describe());
    const auto got = recorded(dir, "LINE ");
    BOOST_TEST_REQUIRE(got.size() >= 2U);
    BOOST_TEST(got.front() == "INIT");
    BOOST_TEST(std::count(got.begin(), got.end(), "CP  10 " + fs_payload) == 1, "the line as oned sent it");
    BOOST_TEST(
        std::none_of(got.begin(), got.end(), [](const std::string &l) { return l.find(" 11 ") != std::string::npos; }),
        "the plugin's request must not reach the fallback");
    BOOST_TEST(got.back() == "FINALIZE");
    BOOST_TEST(recorded(dir, "EXIT ") == std::vector<std::string>{"FINALIZE"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(fallback_args_after_double_dash_are_passed_verbatim) {
    start("-t 4 -d testdrv,fs " + testdrv_plugin_arg() + " --fallback " + built::fake_one_datastore() +
              " -- -t 9 -d fs,ceph -p --odd=value",
          {{"FAKE_ONE_DATASTORE_RECORD", dir.file("fallback.rec")}});
    peer->send_request("RM", 13, cp_payload("fs", 13));
    BOOST_TEST(require_reply("RM", 13).info == "fallback-rm");
    BOOST_TEST(recorded_argv(dir) == (std::vector<std::string>{built::fake_one_datastore(), "-t", "9", "-d", "fs,ceph",
                                                               "-p", "--odd=value"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(fallback_that_fails_its_handshake_leaves_its_drivers_not_available) {
    start("-t 15 -d testdrv,fs " + testdrv_plugin_arg() + " --fallback " + built::fake_one_datastore(),
          {{"FAKE_ONE_DATASTORE_INIT_REPLY", "INIT FAILURE broken"}});
    peer->send_request("CP", 14, cp_payload("fs", 14));
    peer->send_request("CP", 15, cp_payload("testdrv", 15));
    const auto r = require_reply("CP", 14);
    BOOST_TEST(!r.success);
    BOOST_TEST(r.info.find("Datastore driver 'fs' not available") == 0U, r.info);
    BOOST_TEST(r.info.find("INIT FAILURE broken") != std::string::npos, r.info);
    BOOST_TEST(require_reply("CP", 15).success);
}

// A fallback that dies must not leave later requests for its drivers
// unanswered (oned would keep their images LOCKED).
BOOST_AUTO_TEST_CASE(fallback_that_dies_makes_later_requests_fail_not_hang) {
    start("-t 15 -d testdrv,fs " + testdrv_plugin_arg() + " --fallback " + built::fake_one_datastore(),
          {{"FAKE_ONE_DATASTORE_RECORD", dir.file("fallback.rec")}, {"FAKE_ONE_DATASTORE_DIE_ON", "RM"}});
    peer->send_request("RM", 19, cp_payload("fs", 19));
    // Wait until it is gone before the next request.
    const auto deadline = peer_clock::now() + k_reply_wait;
    while (recorded(dir, "EXIT ").empty() && peer_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    BOOST_TEST_REQUIRE(recorded(dir, "EXIT ") == std::vector<std::string>{"DIE_ON"}, boost::test_tools::per_element());
    // The request it had when it died is answered, not left LOCKED.
    const auto lost = require_reply("RM", 19);
    BOOST_TEST(!lost.success);
    BOOST_TEST(lost.info.find("fallback driver exited before answering") != std::string::npos, lost.info);
    std::this_thread::sleep_for(200ms);
    peer->send_request("CP", 20, cp_payload("fs", 20));
    const auto r = require_reply("CP", 20);
    BOOST_TEST(!r.success);
    BOOST_TEST(r.info.find("Datastore driver 'fs' not available") == 0U, r.info);
    // The plugin's datastores are still served.
    peer->send_request("CP", 21, cp_payload("testdrv", 21));
    BOOST_TEST(require_reply("CP", 21).success);
}

// --- OpenNebula's conventions for a MAD's own log and niceness (madcommon.sh) ---------------

namespace {

// The niceness of process pid, field 19 of /proc/<pid>/stat.
int niceness_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string f;
    for (int i = 3; i <= 19; ++i) fields >> f;  // fields 3 (state) ... 19 (nice)
    return std::stoi(f);
}

}  // namespace

// Without log_file, the host logs where OpenNebula's MADs log:
// $ONE_LOCATION/var/<name>.log here (/var/log/one/<name>.log without ONE_LOCATION).
BOOST_AUTO_TEST_CASE(default_log_file_is_where_opennebula_puts_a_mads_log) {
    std::filesystem::create_directories(dir.path() / "var");
    start("-t 15 -d testdrv " + testdrv_plugin_arg(), {}, false);
    peer->send_request("CP", 50, cp_payload("testdrv", 50));
    BOOST_TEST(require_reply("CP", 50).success);
    BOOST_TEST(peer->finalize().clean());
    const auto log = dir.read("var/one_ds_host.log");
    BOOST_TEST(log.find("loaded plugin 'testdrv'") != std::string::npos, log);
    BOOST_TEST(log.find("[debug]") == std::string::npos, "debug lines at the default level:\n" << log);
}

// OpenNebula's place that cannot be opened (no directory, which the host does
// not create, or no write access) does not keep the driver from starting: the
// host logs to stderr (which oned discards) instead.
BOOST_AUTO_TEST_CASE(default_log_file_that_cannot_be_opened_is_not_fatal) {
    start("-t 15 -d testdrv " + testdrv_plugin_arg(), {}, false);
    peer->send_request("CP", 51, cp_payload("testdrv", 51));
    BOOST_TEST(require_reply("CP", 51).success);
    BOOST_TEST(peer->finalize().clean());
    BOOST_TEST(!std::filesystem::exists(dir.path() / "var"), "the host created the log directory");

    std::filesystem::create_directories(dir.path() / "var");
    dir.write("var/one_ds_host.log", "");
    std::filesystem::permissions(dir.path() / "var/one_ds_host.log", std::filesystem::perms::owner_read);
    start("-t 15 -d testdrv " + testdrv_plugin_arg(), {}, false);
    peer->send_request("CP", 55, cp_payload("testdrv", 55));
    BOOST_TEST(require_reply("CP", 55).success);
    BOOST_TEST(peer->finalize().clean());
}

// A log file that was asked for and cannot be opened is a startup error.
BOOST_AUTO_TEST_CASE(log_file_given_that_cannot_be_opened_stops_the_start) {
    dir.write("var", "a file where the directory should be");
    launch("--log-file " + dir.file("var/sub/host.log") + " -t 15 -d testdrv " + testdrv_plugin_arg(), {}, false);
    BOOST_TEST(!peer->init().ok);
}

// ONE_MAD_DEBUG (set and not empty) turns on debug logging, unless log_level
// is given.
BOOST_AUTO_TEST_CASE(one_mad_debug_means_debug_level_unless_log_level_is_given) {
    const auto args = "--log-file " + log_file + " -t 15 -d testdrv " + testdrv_plugin_arg();
    start(args, {{"ONE_MAD_DEBUG", "1"}}, false);
    peer->send_request("CP", 52, cp_payload("testdrv", 52));
    BOOST_TEST(require_reply("CP", 52).success);
    BOOST_TEST(peer->finalize().clean());
    BOOST_TEST(dir.read("host.log").find("[debug] CP SUCCESS 52") != std::string::npos, dir.read("host.log"));

    std::filesystem::remove(log_file);
    start("--log-level info " + args, {{"ONE_MAD_DEBUG", "1"}}, false);
    peer->send_request("CP", 53, cp_payload("testdrv", 53));
    BOOST_TEST(require_reply("CP", 53).success);
    BOOST_TEST(peer->finalize().clean());
    BOOST_TEST(dir.read("host.log").find("[debug]") == std::string::npos, dir.read("host.log"));
}

// PRIORITY in defaultrc is added to the niceness, as `nice -n $PRIORITY` in
// OpenNebula's launcher; a bad value is a warning and changes nothing.
BOOST_AUTO_TEST_CASE(priority_from_defaultrc_nices_the_host) {
    std::filesystem::create_directories(dir.path() / "etc");
    errno = 0;
    const int mine = ::getpriority(PRIO_PROCESS, 0);
    BOOST_REQUIRE(errno == 0);
    dir.write("etc/defaultrc", "# OpenNebula defaults\nONE_MAD_DEBUG=\nPRIORITY=7\n");
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    BOOST_TEST(niceness_of(peer->pid()) == std::min(19, mine + 7));
    BOOST_TEST(peer->finalize().clean());

    dir.write("etc/defaultrc", "PRIORITY=\"high\"\n");
    start("-t 15 -d testdrv " + testdrv_plugin_arg());
    BOOST_TEST(niceness_of(peer->pid()) == mine);
    peer->send_request("CP", 54, cp_payload("testdrv", 54));
    BOOST_TEST(require_reply("CP", 54).success);
    BOOST_TEST(peer->finalize().clean());
    BOOST_TEST(dir.read("host.log").find("PRIORITY 'high' is not a whole number") != std::string::npos,
               dir.read("host.log"));
}

// --- conf/oned.conf.snippet ------------------------------------------------------------------

namespace {

// The ARGUMENTS string of the snippet's DATASTORE_MAD, as oned would pass it.
std::string snippet_arguments() {
    std::ifstream in(built::oned_conf_snippet());
    BOOST_REQUIRE_MESSAGE(in, "cannot read " << built::oned_conf_snippet());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::smatch m;
    BOOST_REQUIRE_MESSAGE(
        std::regex_search(text, m, std::regex(R"re(DATASTORE_MAD\s*=\s*\[[^\]]*ARGUMENTS\s*=\s*"([^"]*)")re")),
        "no DATASTORE_MAD ARGUMENTS in the snippet");
    return m[1].str();
}

std::vector<std::string> words_of(const std::string &s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

std::vector<std::string> names_after(const std::vector<std::string> &words, const std::string &flag) {
    const auto it = std::find(words.begin(), words.end(), flag);
    BOOST_REQUIRE_MESSAGE(it != words.end() && it + 1 != words.end(), "no " << flag << " list");
    std::vector<std::string> out;
    std::istringstream in(*(it + 1));
    for (std::string n; std::getline(in, n, ',');) out.push_back(n);
    return out;
}

}  // namespace

// The host started with the snippet's own ARGUMENTS (the fallback pointed at
// the stand-in, the restic plugin given): every DS_MAD of the -d list and every
// TM_MAD of the -s list but restic reaches the fallback, which was started with
// the argv the stock one_datastore gets from the stock DATASTORE_MAD; restic
// reaches the plugin.
BOOST_AUTO_TEST_CASE(oned_conf_snippet_routes_every_driver_of_its_lists) {
    const auto arguments = snippet_arguments();
    auto words = words_of(arguments);
    const auto fallback = std::find(words.begin(), words.end(), "--fallback");
    BOOST_REQUIRE(fallback != words.end() && fallback + 1 != words.end());
    // What the stock one_datastore gets: ARGUMENTS without the host's options
    // (everything after a "--" when the snippet has one).
    std::vector<std::string> stock_argv;
    if (const auto dd = std::find(words.begin(), words.end(), "--"); dd != words.end()) {
        stock_argv.assign(dd + 1, words.end());
    } else {
        stock_argv = words;
        stock_argv.erase(stock_argv.begin() + (fallback - words.begin()),
                         stock_argv.begin() + (fallback - words.begin()) + 2);
    }
    *(fallback + 1) = built::fake_one_datastore();
    std::string patched;
    for (const auto &w : words) patched += (patched.empty() ? "" : " ") + w;
    const auto ds_mads = names_after(words, "-d");
    const auto tm_mads = names_after(words, "-s");
    BOOST_REQUIRE(std::find(ds_mads.begin(), ds_mads.end(), "restic") != ds_mads.end());

    start(patched + " --plugin restic=" + built::restic_plugin(),
          {{"FAKE_ONE_DATASTORE_RECORD", dir.file("fallback.rec")}});
    std::int64_t id = 200;
    std::map<std::int64_t, std::string> sent;
    for (const auto &name : ds_mads) {
        action_data d;
        d.ds_mad = name;
        d.ds_type = name == "restic" ? 3 : 0;
        peer->send_request("MONITOR", id, action_data_payload(d));
        sent[id++] = name;
    }
    for (const auto &name : tm_mads) {
        action_data d;
        d.ds_mad = "-";
        d.tm_mad = name;
        d.ds_type = 1;
        peer->send_request("MONITOR", id, action_data_payload(d));
        sent[id++] = "system:" + name;
    }
    for (const auto &[rid, name] : sent) {
        const auto r = require_reply("MONITOR", rid);
        if (name == "restic")
            BOOST_TEST(r.info != "fallback-monitor", "restic went to the fallback");
        else
            BOOST_TEST((r.success && r.info == "fallback-monitor"), name << " did not reach the fallback: " << r.info);
    }
    BOOST_TEST(peer->finalize().clean());

    auto argv = recorded_argv(dir);
    BOOST_REQUIRE(!argv.empty());
    BOOST_TEST(argv.front() == built::fake_one_datastore());
    argv.erase(argv.begin());
    BOOST_TEST(argv == stock_argv, boost::test_tools::per_element());
    std::set<std::int64_t> forwarded;
    for (const auto &line : recorded(dir, "LINE MONITOR ")) forwarded.insert(std::stoll(line.substr(1)));
    for (const auto &[rid, name] : sent)
        BOOST_TEST(forwarded.contains(rid) == (name != "restic"), name << " (request " << rid << ")");
}

BOOST_AUTO_TEST_SUITE_END()
