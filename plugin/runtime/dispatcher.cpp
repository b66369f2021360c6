#include "plugin/runtime/dispatcher.hpp"

#include <boost/asio/post.hpp>

#include <exception>
#include <vector>

namespace oneds::runtime {

request_context::request_context(sdk::request req, sdk::host_link host) : req_(std::move(req)), host_(host) {}

dispatcher::dispatcher(sdk::host_link host, std::size_t threads) : host_(host), pool_(threads == 0 ? 1 : threads) {}

dispatcher::~dispatcher() { shutdown(); }

std::int32_t dispatcher::start(sdk::request req, handler h) {
    auto ctx = std::make_shared<request_context>(std::move(req), host_);
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return ONEDS_ERR_SHUTTING_DOWN;
        if (!inflight_.emplace(ctx->id(), ctx).second) return ONEDS_ERR_INVALID;
    }
    boost::asio::post(pool_, [this, ctx, h = std::move(h)] { run(ctx, h); });
    return ONEDS_OK;
}

void dispatcher::run(const std::shared_ptr<request_context> &ctx, const handler &h) noexcept {
    outcome result;
    try {
        if (ctx->cancelled())
            result = outcome::fail("cancelled before it started", ONEDS_ERR_CANCELLED);
        else
            result = h(*ctx);
    } catch (const std::exception &e) {
        result = outcome::fail(e.what(), ONEDS_ERR_INTERNAL);
    } catch (...) {
        result = outcome::fail("unknown error", ONEDS_ERR_INTERNAL);
    }
    if (result.status != ONEDS_OK && ctx->cancelled()) result.status = ONEDS_ERR_CANCELLED;
    host_.complete(ctx->id(), result.status, result.info, result.error);
    {
        std::lock_guard lock(mutex_);
        inflight_.erase(ctx->id());
        if (inflight_.empty()) idle_.notify_all();
    }
}

std::int32_t dispatcher::cancel(std::uint64_t id) {
    std::shared_ptr<request_context> ctx;
    {
        std::lock_guard lock(mutex_);
        auto it = inflight_.find(id);
        if (it == inflight_.end()) return ONEDS_ERR_NOT_FOUND;
        ctx = it->second;
    }
    ctx->request_cancel();
    return ONEDS_OK;
}

void dispatcher::shutdown() {
    std::vector<std::shared_ptr<request_context>> all;
    {
        std::lock_guard lock(mutex_);
        if (joined_) return;
        stopping_ = true;
        for (auto &[id, ctx] : inflight_) all.push_back(ctx);
    }
    for (auto &ctx : all) ctx->request_cancel();
    {
        std::unique_lock lock(mutex_);
        idle_.wait(lock, [this] { return inflight_.empty(); });
    }
    pool_.join();
    std::lock_guard lock(mutex_);
    joined_ = true;
}

}  // namespace oneds::runtime
