// How long-running port calls learn that their request was cancelled. The
// plugin runtime's request_context implements it.
#pragma once

#include <functional>
#include <mutex>

namespace oneds::ports {

class cancellation {
public:
    virtual ~cancellation() = default;
    virtual bool cancelled() const = 0;
    // hook runs once, from the cancelling thread, when the request is cancelled
    // while it is set (at once when it already is). It must not block long.
    // There is one slot: a new hook replaces the old one, so only one port call
    // per request may wait on cancellation at a time (calls are sequential in an
    // action). The hook may still be running after clear_cancel_hook() returns:
    // what it touches must be shared (shared_ptr), not on the caller's stack.
    virtual void set_cancel_hook(std::function<void()> hook) = 0;
    virtual void clear_cancel_hook() = 0;
};

// For calls that cannot be cancelled (tests, start-up).
class never_cancelled final : public cancellation {
public:
    bool cancelled() const override { return false; }
    void set_cancel_hook(std::function<void()>) override {}
    void clear_cancel_hook() override {}
};

// A cancellation source a caller triggers itself with cancel(): for a port
// call that must be stoppable independently of its request (one of several
// parallel calls, or a helper command with its own deadline).
class manual_cancellation final : public cancellation {
public:
    bool cancelled() const override {
        const std::lock_guard lock(mutex_);
        return cancelled_;
    }
    void set_cancel_hook(std::function<void()> hook) override {
        std::unique_lock lock(mutex_);
        if (cancelled_) {
            lock.unlock();
            if (hook) hook();
            return;
        }
        hook_ = std::move(hook);
    }
    void clear_cancel_hook() override {
        const std::lock_guard lock(mutex_);
        hook_ = nullptr;
    }
    void cancel() {
        std::function<void()> hook;
        {
            const std::lock_guard lock(mutex_);
            if (cancelled_) return;
            cancelled_ = true;
            hook = std::move(hook_);
            hook_ = nullptr;
        }
        if (hook) hook();
    }

private:
    mutable std::mutex mutex_;
    bool cancelled_ = false;
    std::function<void()> hook_;
};

}  // namespace oneds::ports
