#include "host/request_queue.hpp"

namespace oneds::host {
namespace {

using clock = std::chrono::steady_clock;

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

// How often the watcher looks for requests past their deadline.
constexpr auto deadline_check = std::chrono::milliseconds(250);

}  // namespace

request_queue::request_queue(std::size_t threads, unsigned timeout_s, reply_fn reply,
                             std::shared_ptr<spdlog::logger> log)
    : threads_(threads == 0 ? 1 : threads), timeout_s_(timeout_s), reply_(std::move(reply)), log_(std::move(log)) {
    if (timeout_s_ > 0) watcher_ = std::thread([this] { watch_deadlines(); });
}

request_queue::~request_queue() {
    {
        const std::lock_guard lock(mutex_);
        watcher_stop_ = true;
    }
    changed_.notify_all();
    if (watcher_.joinable()) watcher_.join();
}

void request_queue::enqueue(request r) {
    {
        const std::lock_guard lock(mutex_);
        if (stopping_) return;
        const std::uint64_t id = next_id_++;
        log_->debug("{} {} -> {} (request {})", r.action, r.oned_id, r.driver, id);
        requests_.emplace(id, std::move(r));
        queue_.push_back(id);
    }
    pump();
}

void request_queue::pump() {
    for (;;) {
        std::uint64_t id;
        {
            const std::lock_guard lock(mutex_);
            if (stopping_ || queue_.empty() || running_ >= threads_) return;
            id = queue_.front();
            queue_.pop_front();
            ++running_;
            if (timeout_s_ > 0) requests_.at(id).deadline = clock::now() + std::chrono::seconds(timeout_s_);
        }
        submit_now(id);
    }
}

void request_queue::submit_now(std::uint64_t id) {
    // The entry cannot vanish before submit returns: only a completion for this
    // id (which cannot come before submit accepts it) erases it.
    request *r;
    {
        const std::lock_guard lock(mutex_);
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
        const std::lock_guard lock(mutex_);
        gone = std::move(requests_.at(id));
        requests_.erase(id);
        --running_;
    }
    changed_.notify_all();
    reply_(gone.action, gone.oned_id, false,
           rc == ONEDS_ERR_UNSUPPORTED ? gone.lower + ": Operation not supported" : status_text(rc));
    pump();
}

void request_queue::on_complete(std::uint64_t id, std::int32_t status, const char *info, const char *error) {
    request r;
    {
        const std::lock_guard lock(mutex_);
        auto it = requests_.find(id);
        if (it == requests_.end()) {
            // Answered already: cut short at shutdown.
            log_->debug("completion for request {} that was answered already", id);
            return;
        }
        r = std::move(it->second);
        requests_.erase(it);
        --running_;
    }
    changed_.notify_all();
    if (status == ONEDS_OK) {
        reply_(r.action, r.oned_id, true, info != nullptr ? info : "");
    } else {
        std::string text = error != nullptr && *error != '\0' ? error : status_text(status);
        if (r.timed_out) text = "Timeout after " + std::to_string(timeout_s_) + " s: " + text;
        reply_(r.action, r.oned_id, false, text);
    }
    pump();
}

std::int64_t request_queue::oned_id_of(std::uint64_t id) const {
    const std::lock_guard lock(mutex_);
    auto it = requests_.find(id);
    return it == requests_.end() ? -1 : it->second.oned_id;
}

void request_queue::watch_deadlines() {
    std::unique_lock lock(mutex_);
    while (!watcher_stop_) {
        changed_.wait_for(lock, deadline_check);
        const auto now = clock::now();
        std::vector<std::pair<loaded_plugin *, std::uint64_t>> expired;
        for (auto &[id, r] : requests_)
            if (!r.timed_out && r.deadline <= now) {
                r.timed_out = true;
                expired.emplace_back(r.plugin, id);
            }
        lock.unlock();
        for (auto &[p, id] : expired) {
            log_->warn("request {} exceeded {} s; cancelling", id, timeout_s_);
            p->cancel(id);
        }
        lock.lock();
    }
}

std::vector<request_queue::request> request_queue::stop() {
    std::vector<request> queued;
    const std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto id : queue_) {
        queued.push_back(std::move(requests_.at(id)));
        requests_.erase(id);
    }
    queue_.clear();
    return queued;
}

bool request_queue::wait_idle_until(clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    return changed_.wait_until(lock, deadline, [this] { return running_ == 0; });
}

void request_queue::cancel_running() {
    std::vector<std::pair<loaded_plugin *, std::uint64_t>> running;
    {
        const std::lock_guard lock(mutex_);
        for (auto &[id, r] : requests_) running.emplace_back(r.plugin, id);
    }
    for (auto &[p, id] : running) p->cancel(id);
}

std::vector<request_queue::request> request_queue::take_unanswered() {
    std::vector<request> left;
    const std::lock_guard lock(mutex_);
    for (auto &[id, r] : requests_) left.push_back(std::move(r));
    requests_.clear();  // a completion that comes now finds nothing to answer
    queue_.clear();
    return left;
}

}  // namespace oneds::host
