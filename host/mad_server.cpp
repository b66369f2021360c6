#include "mad_server.hpp"

#include <oneds_common/base64.hpp>
#include <oneds_common/proc.hpp>
#include <oneds_common/strings.hpp>

#include <pugixml.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <set>
#include <thread>
#include <vector>

#include <unistd.h>

namespace oneds::host {
namespace {

using clock = std::chrono::steady_clock;

// oned SIGKILLs the driver 10 s after FINALIZE. The fallback is told to end
// by 8.5 s; at 9 s whatever is left is cut short (mad_server::cut_short).
constexpr auto k_fallback_deadline = std::chrono::milliseconds(8500);
constexpr auto k_finalize_deadline = std::chrono::milliseconds(9000);

}  // namespace

// SIGKILL to every descendant, twice (one may have started another meanwhile);
// returns how many were signalled.
std::size_t kill_descendants() {
    std::set<pid_t> killed;
    for (int round = 0; round < 2; ++round)
        for (const pid_t pid : common::descendant_pids(::getpid()))
            if (::kill(pid, SIGKILL) == 0) killed.insert(pid);
    return killed.size();
}

namespace {

bool contains(const std::vector<std::string> &v, const std::string &s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

std::string status_text(std::int32_t status) {
    switch (status) {
        case ONEDS_ERR_FAILED: return "failed";
        case ONEDS_ERR_UNSUPPORTED: return "Operation not supported";
        case ONEDS_ERR_INVALID: return "invalid request";
        case ONEDS_ERR_CANCELLED: return "cancelled";
        case ONEDS_ERR_SHUTTING_DOWN: return "driver shutting down";
        case ONEDS_ERR_ABI: return "ABI mismatch";
        case ONEDS_ERR_INTERNAL: return "internal error";
        case ONEDS_ERR_TIMEOUT: return "timed out";
        default: return "error " + std::to_string(status);
    }
}

}  // namespace

mad_server::mad_server(settings s, std::shared_ptr<spdlog::logger> log, int in_fd, int out_fd)
    : settings_(std::move(s)), log_(std::move(log)), in_fd_(in_fd), out_(out_fd) {}

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
        plugin_sink sink{
            [this](std::uint64_t id, std::int32_t st, const char *i, const char *e) { on_complete(id, st, i, e); },
            [this](std::uint64_t id, std::int32_t lv, const char *t) { on_log(id, lv, t); },
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

void mad_server::start_fallback() {
    if (settings_.fallback.empty()) return;
    std::vector<std::string> argv = settings_.fallback;
    if (settings_.fallback_args_given) {
        argv.insert(argv.end(), settings_.fallback_args_extra.begin(), settings_.fallback_args_extra.end());
    } else if (argv.size() == 1) {
        // Default: the stock driver gets the same -t/-d/-s/-w as we did.
        argv.insert(argv.end(), {"-t", std::to_string(settings_.threads)});
        if (!settings_.drivers.empty()) {
            std::string d;
            for (const auto &n : settings_.drivers) d += (d.empty() ? "" : ",") + n;
            argv.insert(argv.end(), {"-d", d});
        }
        if (!settings_.system_tms.empty()) {
            std::string t;
            for (const auto &n : settings_.system_tms) t += (t.empty() ? "" : ",") + n;
            argv.insert(argv.end(), {"-s", t});
        }
        if (settings_.timeout_s > 0) argv.insert(argv.end(), {"-w", std::to_string(settings_.timeout_s)});
    }
    try {
        fallback_ = std::make_unique<fallback_driver>(
            argv, log_,
            [this](const std::string &line) {
                fallback_replied(line);
                out_.write_line(line);
            },
            std::chrono::seconds(8), [this] { fallback_exited(); });
        log_->info("fallback driver '{}' started (pid {})", argv[0], fallback_->pid());
    } catch (const std::exception &e) {
        fallback_error_ = e.what();
        log_->error("{}", fallback_error_);
    }
}

// "<ACTION> SUCCESS|FAILURE <id> ..." from the fallback: that request is answered.
void mad_server::fallback_replied(const std::string &line) {
    const auto first = line.find(' ');
    if (first == std::string::npos) return;
    const auto second = line.find(' ', first + 1);
    if (second == std::string::npos) return;
    const std::string_view result(line.data() + first + 1, second - first - 1);
    if (result != "SUCCESS" && result != "FAILURE") return;  // LOG lines and the like
    const auto third = line.find(' ', second + 1);
    const std::string_view id_text(line.data() + second + 1,
                                   (third == std::string::npos ? line.size() : third) - second - 1);
    std::int64_t id = 0;
    if (std::from_chars(id_text.data(), id_text.data() + id_text.size(), id).ec != std::errc{}) return;
    const std::lock_guard lock(fallback_mutex_);
    if (auto it = forwarded_.find({line.substr(0, first), id}); it != forwarded_.end()) forwarded_.erase(it);
}

void mad_server::fallback_exited() {
    std::multiset<std::pair<std::string, std::int64_t>> lost;
    {
        const std::lock_guard lock(fallback_mutex_);
        fallback_gone_ = true;
        lost.swap(forwarded_);
    }
    log_->error("fallback driver exited unexpectedly; {} request(s) it had not answered fail", lost.size());
    for (const auto &[action, id] : lost)
        reply(action, id, false, "Datastore driver not available: fallback driver exited before answering");
}

int mad_server::run() {
    load_plugins();
    start_fallback();
    std::thread watcher;
    if (settings_.timeout_s > 0) watcher = std::thread([this] { watch_deadlines(); });

    std::string buf;
    char chunk[65536];
    bool done = false;
    while (!done) {
        const ssize_t n = ::read(in_fd_, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            log_->info("stdin closed; shutting down");
            break;
        }
        buf.append(chunk, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
            std::string line = buf.substr(0, nl);
            buf.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (common::trim(line) == "FINALIZE") {
                log_->info("FINALIZE received; shutting down");
                done = true;
                break;
            }
            handle_line(line);
        }
    }
    shut_down();
    watcher_stop_ = true;
    changed_.notify_all();
    if (watcher.joinable()) watcher.join();
    return 0;
}

void mad_server::handle_line(const std::string &line) {
    const auto tokens = common::split_ws(line);
    if (tokens.empty()) return;
    if (tokens[0] == "INIT") {
        // oned reads this reply with one read() of at most 31 bytes: alone.
        out_.write_line("INIT SUCCESS");
        return;
    }
    std::int64_t id = 0;
    if (tokens.size() < 2 ||
        std::from_chars(tokens[1].data(), tokens[1].data() + tokens[1].size(), id).ec != std::errc{}) {
        log_->warn("ignoring malformed line from oned (action '{}')", tokens[0]);
        return;
    }
    if (tokens.size() < 3) {
        reply(tokens[0], id, false, "Missing driver action data");
        return;
    }
    route(tokens[0], id, tokens[2], line);
}

void mad_server::route(std::string action, std::int64_t oned_id, const std::string &payload,
                       const std::string &line) {
    auto xml = common::base64_decode(payload);
    if (!xml) {
        reply(action, oned_id, false, "Cannot decode driver action data: not base64");
        return;
    }
    pugi::xml_document doc;
    // parse_default: no DTD processing; pugixml never expands external entities.
    if (!doc.load_buffer(xml->data(), xml->size())) {
        reply(action, oned_id, false, "Cannot parse driver action data: not XML");
        return;
    }
    const auto ds = doc.select_node("/DS_DRIVER_ACTION_DATA/DATASTORE").node();
    std::string driver = ds.child("DS_MAD").text().as_string();
    const bool system_ds = ds.child("TYPE").text().as_int(-1) == 1;
    if (system_ds) driver = ds.child("TM_MAD").text().as_string();

    const auto plugin = plugins_.find(driver);
    if (plugin != plugins_.end()) {
        request r;
        r.action = action;
        r.lower = common::to_lower(action);
        r.oned_id = oned_id;
        r.document = std::move(*xml);
        r.driver = driver;
        r.plugin = plugin->second.get();
        enqueue(std::move(r));
        return;
    }
    if (auto err = plugin_errors_.find(driver); err != plugin_errors_.end()) {
        reply(action, oned_id, false, "Datastore driver '" + driver + "' failed to load: " + err->second);
        return;
    }
    if (fallback_) {
        // Noted before it is sent, so that fallback_exited() answers it if the
        // fallback goes away first; not under the lock while writing (a full
        // pipe must not stop the relay thread, which takes the lock per reply).
        bool gone;
        {
            const std::lock_guard lock(fallback_mutex_);
            gone = fallback_gone_;
            if (!gone) forwarded_.emplace(action, oned_id);
        }
        bool answer_here = gone;
        if (!gone && !fallback_->forward(line)) {
            const std::lock_guard lock(fallback_mutex_);
            // Still noted: nobody answered it yet (else fallback_exited() did).
            if (auto it = forwarded_.find({action, oned_id}); it != forwarded_.end()) {
                forwarded_.erase(it);
                answer_here = true;
            }
        }
        if (answer_here)
            reply(action, oned_id, false, "Datastore driver '" + driver + "' not available: fallback driver exited");
        return;
    }
    if (!fallback_error_.empty() && !settings_.drivers.empty() &&
        (contains(settings_.drivers, driver) || (system_ds && contains(settings_.system_tms, driver)))) {
        reply(action, oned_id, false, "Datastore driver '" + driver + "' not available: " + fallback_error_);
        return;
    }
    reply(action, oned_id, false, "Datastore driver '" + driver + "' not available");
}

void mad_server::enqueue(request r) {
    std::uint64_t id;
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        id = next_id_++;
        log_->debug("{} {} -> {} (request {})", r.action, r.oned_id, r.driver, id);
        requests_.emplace(id, std::move(r));
        queue_.push_back(id);
    }
    pump();
}

void mad_server::pump() {
    for (;;) {
        std::uint64_t id;
        {
            std::lock_guard lock(mutex_);
            if (stopping_ || queue_.empty() || running_ >= settings_.threads) return;
            id = queue_.front();
            queue_.pop_front();
            ++running_;
            if (settings_.timeout_s > 0)
                requests_.at(id).deadline = clock::now() + std::chrono::seconds(settings_.timeout_s);
        }
        submit_now(id);
    }
}

void mad_server::submit_now(std::uint64_t id) {
    // The entry cannot vanish before submit returns: only a completion for this
    // id (which cannot happen before submit accepts it) erases it.
    request *r;
    {
        std::lock_guard lock(mutex_);
        r = &requests_.at(id);
    }
    const std::string id_text = std::to_string(r->oned_id);
    const char *argv[] = {id_text.c_str(), nullptr};
    oneds_request req{};
    req.struct_size = sizeof req;
    req.id = id;
    req.action = r->lower.c_str();
    req.argc = 1;
    req.argv = argv;
    req.document = r->document.c_str();
    req.document_size = r->document.size();
    req.origin = ONEDS_ORIGIN_MAD;
    req.oned_id = r->oned_id;
    const std::int32_t rc = r->plugin->submit(req);
    if (rc == ONEDS_OK) return;

    request gone;
    {
        std::lock_guard lock(mutex_);
        gone = std::move(requests_.at(id));
        requests_.erase(id);
        --running_;
    }
    changed_.notify_all();
    reply(gone.action, gone.oned_id, false,
          rc == ONEDS_ERR_UNSUPPORTED ? gone.lower + ": Operation not supported" : status_text(rc));
    pump();
}

void mad_server::on_complete(std::uint64_t id, std::int32_t status, const char *info, const char *error) {
    request r;
    {
        std::lock_guard lock(mutex_);
        auto it = requests_.find(id);
        if (it == requests_.end()) {
            log_->error("completion for unknown request {} ignored", id);
            return;
        }
        r = std::move(it->second);
        requests_.erase(it);
        --running_;
    }
    changed_.notify_all();
    if (status == ONEDS_OK) {
        reply(r.action, r.oned_id, true, info);
    } else {
        std::string text = *error != '\0' ? error : status_text(status);
        if (r.timed_out) text = "Timeout after " + std::to_string(settings_.timeout_s) + " s: " + text;
        reply(r.action, r.oned_id, false, text);
    }
    pump();
}

void mad_server::on_log(std::uint64_t id, std::int32_t level, const char *text) {
    std::int64_t oned_id = -1;
    {
        std::lock_guard lock(mutex_);
        if (auto it = requests_.find(id); it != requests_.end()) oned_id = it->second.oned_id;
    }
    const char lv = (level == ONEDS_LOG_ERROR || level == ONEDS_LOG_WARNING || level == ONEDS_LOG_DEBUG)
                        ? static_cast<char>(level)
                        : 'I';
    out_.write_line(std::string("LOG ") + lv + " " + std::to_string(oned_id) + " " + common::one_line(text));
}

void mad_server::reply(const std::string &action, std::int64_t oned_id, bool success, const std::string &text) {
    std::string info;
    if (action == "MONITOR") {
        // oned base64-decodes MONITOR info, on success and on failure alike.
        info = text.empty() ? "-" : common::base64_encode(text);
    } else {
        info = common::one_line(text);
        if (info.empty()) info = "-";
    }
    log_->debug("{} {} {}", action, success ? "SUCCESS" : "FAILURE", oned_id);
    if (!success) log_->warn("{} {} failed: {}", action, oned_id, common::one_line(text));
    out_.write_line(action + (success ? " SUCCESS " : " FAILURE ") + std::to_string(oned_id) + " " + info);
}

void mad_server::watch_deadlines() {
    std::unique_lock lock(mutex_);
    while (!watcher_stop_) {
        changed_.wait_for(lock, std::chrono::milliseconds(250));
        const auto now = clock::now();
        std::vector<std::pair<loaded_plugin *, std::uint64_t>> expired;
        for (auto &[id, r] : requests_)
            if (!r.timed_out && r.deadline <= now) {
                r.timed_out = true;
                expired.emplace_back(r.plugin, id);
            }
        lock.unlock();
        for (auto &[p, id] : expired) {
            log_->warn("request {} exceeded {} s; cancelling", id, settings_.timeout_s);
            p->cancel(id);
        }
        lock.lock();
    }
}

void mad_server::cut_short() {
    std::vector<request> left;
    {
        std::lock_guard lock(mutex_);
        for (auto &[id, r] : requests_) left.push_back(std::move(r));
        requests_.clear();  // a completion that comes now finds nothing to answer
        queue_.clear();
    }
    std::multiset<std::pair<std::string, std::int64_t>> forwarded;
    {
        const std::lock_guard lock(fallback_mutex_);
        forwarded.swap(forwarded_);
        fallback_gone_ = true;
    }
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
    // oned SIGKILLs the driver 10 s after FINALIZE: before that, whatever has
    // not finished is answered and its processes are killed (cut_short), even
    // if a plugin does not honour cancellation. The watchdog is joined once
    // everything has ended in time.
    struct watchdog_state {
        std::mutex mutex;
        std::condition_variable cv;
        bool done = false;
    };
    auto wd = std::make_shared<watchdog_state>();
    std::thread watchdog([this, wd, start] {
        std::unique_lock lock(wd->mutex);
        if (wd->cv.wait_until(lock, start + k_finalize_deadline, [&] { return wd->done; })) return;
        cut_short();
    });

    std::vector<request> dropped;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        for (auto id : queue_) {
            dropped.push_back(std::move(requests_.at(id)));
            requests_.erase(id);
        }
        queue_.clear();
    }
    if (!dropped.empty()) log_->warn("{} queued request(s) answered with FAILURE at shutdown", dropped.size());
    // Exactly one reply each, also for the ones that never started.
    for (const auto &r : dropped)
        reply(r.action, r.oned_id, false, "not started: the driver was stopped (FINALIZE) first");
    // The stock driver finishes its own work in parallel with ours.
    std::thread fallback_stopper;
    if (fallback_)
        fallback_stopper = std::thread([this, start] { fallback_->finalize(start + k_fallback_deadline); });

    // Let in-flight work finish within the grace period, then cancel it.
    {
        std::unique_lock lock(mutex_);
        changed_.wait_until(lock, start + std::chrono::seconds(settings_.finalize_grace_s),
                            [this] { return running_ == 0; });
    }
    for (auto &[name, p] : plugins_) {
        std::vector<std::uint64_t> ids;
        {
            std::lock_guard lock(mutex_);
            for (auto &[id, r] : requests_)
                if (r.plugin == p.get()) ids.push_back(id);
        }
        for (auto id : ids) p->cancel(id);
    }
    for (auto &[name, p] : plugins_) p->shutdown();  // joins; every completion has been sent
    if (fallback_stopper.joinable()) fallback_stopper.join();
    plugins_.clear();
    {
        const std::lock_guard lock(wd->mutex);
        wd->done = true;
    }
    wd->cv.notify_all();
    watchdog.join();
}

}  // namespace oneds::host
