#include "host/mad_server.hpp"

#include "host/driver_router.hpp"

#include "common/fd_io.hpp"
#include "common/proc.hpp"
#include "common/strings.hpp"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <unistd.h>

namespace oneds::host {
namespace {

using clock = std::chrono::steady_clock;

bool contains(const std::vector<std::string> &v, const std::string &s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

std::size_t kill_descendants() {
    // Twice: one may have started another meanwhile.
    std::set<pid_t> killed;
    for (int round = 0; round < 2; ++round)
        for (const pid_t pid : common::signal_descendants(::getpid(), SIGKILL)) killed.insert(pid);
    return killed.size();
}

mad_server::mad_server(settings s, std::shared_ptr<spdlog::logger> log, int in_fd, int out_fd)
    : settings_(std::move(s)),
      log_(std::move(log)),
      in_fd_(in_fd),
      out_(out_fd),
      queue_(
          settings_.threads, settings_.timeout_s,
          [this](const std::string &action, std::int64_t id, bool ok, const std::string &text) {
              reply(action, id, ok, text);
          },
          log_) {}

mad_server::~mad_server() = default;

void mad_server::load_plugins() {
    // Plugins named in the config or on the command line, plus every -d name
    // that has a libone_ds_<name>.so beside the host.
    std::map<std::string, std::string> wanted = settings_.plugins;
    for (const auto &d : settings_.drivers) {
        if (wanted.contains(d)) continue;
        const auto path = default_plugin_path(d);
        if (::access(path.c_str(), F_OK) == 0) wanted[d] = path;
    }
    for (const auto &[name, path] : wanted) {
        if (!settings_.drivers.empty() && !contains(settings_.drivers, name)) {
            log_->info("plugin '{}' is configured but not in -d; not loaded", name);
            continue;
        }
        plugin_sink sink{[this](std::uint64_t id, std::int32_t st, const char *i, const char *e) {
                             queue_.on_complete(id, st, i, e);
                         },
                         // oned's LOG line carries oned's request id (ImageManager ignores
                         // it); an object id from log_object has no place there.
                         [this](std::uint64_t id, std::int32_t lv, std::int64_t, const char *t) {
                             out_.write_line(mad::log_line(static_cast<char>(lv), queue_.oned_id_of(id), t));
                         },
                         {}};  // oned's line protocol has no byte stream: write_output is unsupported
        try {
            auto p = loaded_plugin::load(path, name, plugin_config(settings_, name, false), std::move(sink));
            log_->info("loaded plugin '{}' {} from {}", name, p->version(), path);
            plugins_[name] = std::move(p);
        } catch (const std::exception &e) {
            log_->error("{}", e.what());
            plugin_errors_[name] = e.what();
        }
    }
}

int mad_server::run() {
    load_plugins();
    fallback_ = std::make_unique<fallback_relay>(settings_, log_, out_);

    common::line_splitter lines(mad::k_max_request_line);
    char chunk[65536];
    for (;;) {
        const ssize_t n = ::read(in_fd_, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            log_->info("stdin closed; shutting down");
            break;
        }
        lines.append(std::string_view(chunk, static_cast<std::size_t>(n)));
        bool finalize = false;
        while (auto line = lines.next()) {
            if (lines.dropped() > 0) {
                refuse_oversized(*line, line->size() + lines.dropped());
                continue;
            }
            const auto parsed = mad::parse_line(*line);
            if (parsed.what == mad::parsed_line::kind::finalize) {
                log_->info("FINALIZE received; shutting down");
                finalize = true;
                break;
            }
            handle(parsed, *line);
        }
        if (finalize) break;
    }
    shut_down();
    return 0;
}

// Only the line's head was kept: enough for the action and the id to answer.
void mad_server::refuse_oversized(const std::string &head, std::uint64_t line_bytes) {
    const auto parsed = mad::parse_line(head);
    if (parsed.what != mad::parsed_line::kind::request && parsed.what != mad::parsed_line::kind::missing_payload) {
        log_->warn("ignoring a line of {} bytes from oned that is no request", line_bytes);
        return;
    }
    reply(parsed.action, parsed.id, false, mad::oversized_reply_text(line_bytes));
}

void mad_server::handle(const mad::parsed_line &line, const std::string &raw) {
    using kind = mad::parsed_line::kind;
    switch (line.what) {
        case kind::empty:
        case kind::finalize: return;
        case kind::init:
            // oned reads this reply with one read() of at most 31 bytes: alone.
            out_.write_line("INIT SUCCESS");
            return;
        case kind::malformed: log_->warn("ignoring malformed line from oned (action '{}')", line.action); return;
        case kind::missing_payload: reply(line.action, line.id, false, "Missing driver action data"); return;
        case kind::request: break;
    }
    auto routed = route_payload(line.payload);
    if (const auto *failure = std::get_if<std::string>(&routed)) {
        reply(line.action, line.id, false, *failure);
        return;
    }
    auto &r = std::get<routed_request>(routed);
    if (const auto plugin = plugins_.find(r.driver); plugin != plugins_.end()) {
        request_queue::request q;
        q.action = line.action;
        q.lower = common::to_lower(line.action);
        q.oned_id = line.id;
        q.document = std::move(r.document);
        q.driver = r.driver;
        q.plugin = plugin->second.get();
        queue_.enqueue(std::move(q));
        return;
    }
    if (auto err = plugin_errors_.find(r.driver); err != plugin_errors_.end()) {
        reply(line.action, line.id, false, "Datastore driver '" + r.driver + "' failed to load: " + err->second);
        return;
    }
    if (!settings_.fallback.empty() && fallback_->error().empty()) {
        if (!fallback_->forward(line.action, line.id, raw))
            reply(line.action, line.id, false,
                  "Datastore driver '" + r.driver + "' not available: fallback driver exited");
        return;
    }
    if (!fallback_->error().empty() && !settings_.drivers.empty() &&
        (contains(settings_.drivers, r.driver) || (r.system_datastore && contains(settings_.system_tms, r.driver)))) {
        reply(line.action, line.id, false, "Datastore driver '" + r.driver + "' not available: " + fallback_->error());
        return;
    }
    reply(line.action, line.id, false, "Datastore driver '" + r.driver + "' not available");
}

void mad_server::reply(const std::string &action, std::int64_t oned_id, bool success, const std::string &text) {
    log_->debug("{} {} {}", action, success ? "SUCCESS" : "FAILURE", oned_id);
    if (!success) log_->warn("{} {} failed: {}", action, oned_id, common::one_line(text));
    out_.write_line(mad::reply_line(action, oned_id, success, text));
}

void mad_server::cut_short() {
    const auto left = queue_.take_unanswered();
    const auto forwarded = fallback_ ? fallback_->take_unanswered() : fallback_relay::pending{};
    log_->error("FINALIZE: {} request(s) still running and {} forwarded to the fallback are cut short", left.size(),
                forwarded.size());
    for (const auto &r : left)
        reply(r.action, r.oned_id, false, "cut short: the driver was stopped (FINALIZE) before the request finished");
    for (const auto &[action, id] : forwarded)
        reply(action, id, false, "cut short: the fallback driver did not answer before the driver was stopped");
    const auto killed = kill_descendants();
    if (killed > 0) log_->warn("FINALIZE: killed {} process(es) still running", killed);
    log_->flush();
    std::_Exit(0);
}

void mad_server::shut_down() {
    const auto start = clock::now();
    // Before oned's SIGKILL, whatever has not finished is answered and its
    // processes are killed (cut_short), even if a plugin does not honour
    // cancellation. The watchdog is joined once everything has ended in time.
    struct watchdog_state {
        std::mutex mutex;
        std::condition_variable cv;
        bool done = false;
    };
    auto wd = std::make_shared<watchdog_state>();
    std::thread watchdog([this, wd, start] {
        std::unique_lock lock(wd->mutex);
        if (wd->cv.wait_until(lock, start + cut_short_at, [&] { return wd->done; })) return;
        cut_short();
    });

    // Exactly one reply each, also for the ones that never started.
    const auto queued = queue_.stop();
    if (!queued.empty()) log_->warn("{} queued request(s) answered with FAILURE at shutdown", queued.size());
    for (const auto &r : queued)
        reply(r.action, r.oned_id, false, "not started: the driver was stopped (FINALIZE) first");
    // The stock driver finishes its own work in parallel with ours.
    std::thread fallback_stopper([this, start] { fallback_->finalize(start + fallback_finalize_by); });

    // In-flight work gets the grace period, then is cancelled.
    queue_.wait_idle_until(start + std::chrono::seconds(settings_.finalize_grace_s));
    queue_.cancel_running();
    for (auto &[name, p] : plugins_) p->shutdown();  // joins; every completion has been sent
    fallback_stopper.join();
    plugins_.clear();
    {
        const std::lock_guard lock(wd->mutex);
        wd->done = true;
    }
    wd->cv.notify_all();
    watchdog.join();
}

}  // namespace oneds::host
