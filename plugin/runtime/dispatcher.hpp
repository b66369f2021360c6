// The request runtime shared by plugins: tracks requests in flight, runs each on
// a thread pool, reports exactly one completion per accepted request, and turns
// cancel() and shutdown into cancellation of the running work.
//
// Why blocking handlers on a pool instead of a chain of asynchronous steps: the
// work of a datastore action is a short sequence of waits on child processes and
// network calls, and the host bounds the number in flight (-t, 15 by default).
// One pool thread per running request keeps each action a straight-line function
// that is easy to read and to test; cancellation reaches it as a
// std::stop_token that every port call takes (ports/stop.hpp).
#pragma once

#include <oneds/plugin.hpp>

#include "plugin/ports/result.hpp"
#include "plugin/ports/stop.hpp"

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace oneds::runtime {

// What an action returns. status is ONEDS_OK or an ONEDS_ERR_* code.
struct outcome {
    std::int32_t status = ONEDS_OK;
    std::string info;
    std::string error;

    static outcome ok(std::string info = {}) { return {ONEDS_OK, std::move(info), {}}; }
    static outcome fail(std::string error, std::int32_t status = ONEDS_ERR_FAILED) {
        return {status, {}, std::move(error)};
    }
    static outcome cancelled() { return fail("cancelled", ONEDS_ERR_CANCELLED); }
    // A failed port call as the action's answer, the one mapping of a cancel
    // to ONEDS_ERR_CANCELLED; the text is prefix + message + suffix.
    static outcome from(const ports::error &e, std::string_view prefix = {}, std::string_view suffix = {}) {
        return fail(std::string(prefix) + e.message + std::string(suffix),
                    e.kind == ports::error_kind::cancelled ? ONEDS_ERR_CANCELLED : ONEDS_ERR_FAILED);
    }
};

// One request in flight, as seen by the action that runs it. Thread-safe.
class request_context final {
public:
    request_context(sdk::request req, sdk::host_link host);

    const sdk::request &req() const noexcept { return req_; }
    std::uint64_t id() const noexcept { return req_.id; }

    // Stops when the request is cancelled (cancel(), a host deadline, shutdown).
    std::stop_token stop_token() const noexcept { return stop_.get_token(); }
    bool cancelled() const noexcept { return stop_.stop_requested(); }
    // Sleeps up to d; returns false at once when the request is (or gets) cancelled.
    bool sleep_for(std::chrono::milliseconds d) const { return ports::sleep_for(stop_token(), d); }

    // Progress for the host. Once set_log_object(id) has named the OpenNebula
    // object the request is about (the VM of a backup), every line carries that
    // id (ABI 1.2 log_object), so that OpenNebula files it in that object's log.
    void log(std::int32_t level, std::string_view text) const {
        host_.log(req_.id, level, log_object_.load(std::memory_order_relaxed), text);
    }
    void set_log_object(std::int64_t object_id) noexcept { log_object_.store(object_id, std::memory_order_relaxed); }
    // Bytes to the action's stdout (ABI 1.1); see sdk::host_link::write_output.
    std::int32_t write_output(std::string_view data) const { return host_.write_output(req_.id, data); }

    void request_cancel() noexcept { stop_.request_stop(); }

private:
    sdk::request req_;
    sdk::host_link host_;
    std::stop_source stop_;
    std::atomic<std::int64_t> log_object_{-1};
};

using handler = std::function<outcome(request_context &)>;

class dispatcher {
public:
    dispatcher(sdk::host_link host, std::size_t threads);
    ~dispatcher();
    dispatcher(const dispatcher &) = delete;
    dispatcher &operator=(const dispatcher &) = delete;

    // Queues h for req. Returns ONEDS_OK (completion follows exactly once),
    // ONEDS_ERR_INVALID for an id already in flight, ONEDS_ERR_SHUTTING_DOWN.
    std::int32_t start(sdk::request req, handler h);
    // ONEDS_OK when the request was in flight, ONEDS_ERR_NOT_FOUND otherwise.
    std::int32_t cancel(std::uint64_t id);
    // Refuses new work, cancels everything in flight, waits for every completion
    // and joins the pool. Idempotent.
    void shutdown();

    const sdk::host_link &host() const noexcept { return host_; }

private:
    void run(const std::shared_ptr<request_context> &ctx, const handler &h) noexcept;

    sdk::host_link host_;
    boost::asio::thread_pool pool_;
    std::mutex mutex_;
    std::condition_variable idle_;
    std::unordered_map<std::uint64_t, std::shared_ptr<request_context>> inflight_;
    bool stopping_ = false;
    bool joined_ = false;
};

}  // namespace oneds::runtime
