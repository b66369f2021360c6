// libone_ds_testdrv.so: a plugin for testing hosts. It serves DS_MAD "testdrv".
//
// Behaviour is chosen by the action name for echo/sleep/fail/log, and for oned's
// actions (cp, rm, monitor, ...) by /DS_DRIVER_ACTION_DATA//TEST_BEHAVIOUR in
// the request document:
//   echo            info = "<action> <args...>"
//   sleep:<ms>      waits <ms> (cancellable), then as echo
//   fail:<text>     fails with <text>
//   log:<n>         sends n LOG I lines "progress <i>/<n>", then as echo
//   multiline       info = "line1\nline2"
//   monitor action  info = "USED_MB=1\nFREE_MB=2\nTOTAL_MB=3\n" (after any sleep)
//   concurrency:<ms>  counts itself among the requests running in this process
//                   (a process-wide counter), holds <ms> (cancellable), then
//                   info = "concurrency peak <n>": the most seen running at once
//                   so far in this process
//   stderr:<text>   writes "<text>\n" to file descriptor 2, then as echo
//   vmlog <vm_id>   names VM <vm_id> as the request's object (its log lines
//                   carry that id, ABI 1.2 log_object) and logs one line of
//                   each level: "debug line", "progress 1/1" (I),
//                   "warning line" (W), "error line" (E); then as echo
//   stubborn:<ms>   starts a child `sleep 3600`, logs "child <pid>", then holds
//                   <ms> ignoring cancellation (a plugin that does not honour
//                   cancel, with a process of its own), then as echo
//
// Actions that only make sense with arguments (action mode, or args from MAD):
//   docroot         info = name of the request document's root element, or
//                   "(none)" for an empty document; fails on a document that is
//                   not XML
//   xpath <expr>    info = text of the first node matching <expr> in the
//                   document; fails "no node matches <expr>"
//   config <key>    info = the value of config entry <key> as create() got it;
//                   fails "no config key '<key>'"
//
// The action names concurrency and stderr take their <ms>/<text> from the
// first argument, as sleep/fail/log do.
#include "plugin/runtime/dispatcher.hpp"

#include <oneds/plugin.hpp>
#include "common/child.hpp"

#include <pugixml.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include <unistd.h>

namespace {

using oneds::runtime::outcome;
using oneds::runtime::request_context;

std::string behaviour_of(const oneds::sdk::request &req) {
    if (req.action == "echo" || req.action == "multiline" || req.action == "vmlog") return req.action;
    if (req.action == "sleep" || req.action == "fail" || req.action == "log" || req.action == "concurrency" ||
        req.action == "stderr" || req.action == "stubborn")
        return req.action + ":" + (req.args.empty() ? std::string("0") : req.args.front());
    pugi::xml_document doc;
    if (!req.document.empty() && doc.load_buffer(req.document.data(), req.document.size())) {
        auto node = doc.select_node("//TEST_BEHAVIOUR");
        if (node) return node.node().text().as_string();
    }
    return "echo";
}

std::string echo(const oneds::sdk::request &req) {
    if (req.action == "monitor") return "USED_MB=1\nFREE_MB=2\nTOTAL_MB=3\n";
    std::string out = req.action;
    for (const auto &a : req.args) out += " " + a;
    return out;
}

// Requests of any instance in this process inside a concurrency:<ms> behaviour.
std::atomic<int> g_running{0};
std::atomic<int> g_peak{0};

outcome run_concurrency(request_context &ctx, std::chrono::milliseconds hold) {
    const int now = ++g_running;
    int peak = g_peak.load();
    while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {}
    const bool finished = ctx.sleep_for(hold);
    --g_running;
    if (!finished) return outcome::fail("cancelled while counting", ONEDS_ERR_CANCELLED);
    return outcome::ok("concurrency peak " + std::to_string(g_peak.load()));
}

outcome run_document_action(request_context &ctx) {
    const auto &req = ctx.req();
    if (req.action == "docroot" && req.document.empty()) return outcome::ok("(none)");
    pugi::xml_document doc;
    if (!doc.load_buffer(req.document.data(), req.document.size()))
        return outcome::fail(req.action + ": the document is not XML", ONEDS_ERR_INVALID);
    if (req.action == "docroot") return outcome::ok(doc.document_element().name());
    if (req.args.empty()) return outcome::fail("xpath: needs an expression", ONEDS_ERR_INVALID);
    const auto node = doc.select_node(req.args.front().c_str());
    if (!node) return outcome::fail("no node matches " + req.args.front());
    return outcome::ok(node.node().text().as_string());
}

outcome act(request_context &ctx) {
    const auto b = behaviour_of(ctx.req());
    const auto colon = b.find(':');
    const auto verb = b.substr(0, colon);
    const auto arg = colon == std::string::npos ? std::string() : b.substr(colon + 1);
    if (verb == "sleep") {
        if (!ctx.sleep_for(std::chrono::milliseconds(std::stoll(arg.empty() ? "0" : arg))))
            return outcome::fail("cancelled while sleeping", ONEDS_ERR_CANCELLED);
        return outcome::ok(echo(ctx.req()));
    }
    if (verb == "fail") return outcome::fail(arg.empty() ? "failed as asked" : arg);
    if (verb == "log") {
        const int n = std::stoi(arg.empty() ? "0" : arg);
        for (int i = 1; i <= n; ++i) ctx.log(ONEDS_LOG_INFO, "progress " + std::to_string(i) + "/" + std::to_string(n));
        return outcome::ok(echo(ctx.req()));
    }
    if (verb == "multiline") return outcome::ok("line1\nline2");
    if (verb == "vmlog") {
        const auto &args = ctx.req().args;
        if (args.empty()) return outcome::fail("vmlog: needs a VM id", ONEDS_ERR_INVALID);
        ctx.set_log_object(std::stoll(args.front()));
        ctx.log(ONEDS_LOG_DEBUG, "debug line");
        ctx.log(ONEDS_LOG_INFO, "progress 1/1");
        ctx.log(ONEDS_LOG_WARNING, "warning line");
        ctx.log(ONEDS_LOG_ERROR, "error line");
        return outcome::ok(echo(ctx.req()));
    }
    if (verb == "concurrency")
        return run_concurrency(ctx, std::chrono::milliseconds(std::stoll(arg.empty() ? "0" : arg)));
    if (verb == "stubborn") {
        oneds::common::child_spec spec;
        spec.argv = {"sleep", "3600"};
        oneds::common::child sleeper;
        try {
            sleeper = oneds::common::spawn(spec);
        } catch (const std::exception &) {
            return outcome::fail("stubborn: cannot start sleep");
        }
        ctx.log(ONEDS_LOG_INFO, "child " + std::to_string(sleeper.pid()));
        std::this_thread::sleep_for(std::chrono::milliseconds(std::stoll(arg.empty() ? "0" : arg)));
        sleeper.stop(std::chrono::seconds(10));
        return outcome::ok(echo(ctx.req()));
    }
    if (verb == "stderr") {
        const std::string line = arg + "\n";
        [[maybe_unused]] const auto n = ::write(2, line.data(), line.size());
        return outcome::ok(echo(ctx.req()));
    }
    return outcome::ok(echo(ctx.req()));
}

const char *const k_actions[] = {"cp",
                                 "clone",
                                 "mkfs",
                                 "rm",
                                 "monitor",
                                 "stat",
                                 "echo",
                                 "multiline",
                                 "sleep",
                                 "fail",
                                 "log",
                                 "restore",
                                 "increment_flatten",
                                 "concurrency",
                                 "stderr",
                                 "stubborn",
                                 "docroot",
                                 "xpath",
                                 "config",
                                 "vmlog",
                                 nullptr};

// plugin.h: an action not in the table's list gets ONEDS_ERR_UNSUPPORTED from
// submit() and no callback; without this check act() would echo anything.
bool listed(const std::string &action) {
    for (const char *const *a = k_actions; *a != nullptr; ++a)
        if (action == *a) return true;
    return false;
}

class test_instance final : public oneds::sdk::instance {
public:
    test_instance(oneds::sdk::host_link host, const oneds::sdk::config_map &config)
        : dispatcher_(host, 32), config_(config) {
        if (auto it = config.find("fail_create"); it != config.end())
            throw std::invalid_argument("fail_create is set: " + it->second);
    }
    ~test_instance() override { dispatcher_.shutdown(); }

    std::int32_t submit(oneds::sdk::request req) override {
        if (!listed(req.action)) return ONEDS_ERR_UNSUPPORTED;
        if (req.action == "docroot" || req.action == "xpath")
            return dispatcher_.start(std::move(req), run_document_action);
        if (req.action == "config")
            return dispatcher_.start(std::move(req), [this](request_context &ctx) {
                const auto &args = ctx.req().args;
                if (args.empty()) return outcome::fail("config: needs a key", ONEDS_ERR_INVALID);
                const auto it = config_.find(args.front());
                if (it == config_.end()) return outcome::fail("no config key '" + args.front() + "'");
                return outcome::ok(it->second);
            });
        return dispatcher_.start(std::move(req), act);
    }
    std::int32_t cancel(std::uint64_t id) override { return dispatcher_.cancel(id); }

private:
    oneds::runtime::dispatcher dispatcher_;
    const oneds::sdk::config_map config_;  // read-only after construction
};

}  // namespace

extern "C" ONEDS_EXPORT const oneds_plugin_api *oneds_plugin_entry(std::uint32_t major) {
    return oneds::sdk::plugin_table<test_instance>::get(major, "testdrv", ONEDS_VERSION, k_actions);
}
