// A ports::cancellation that a test fires by hand, from any thread, with the
// semantics of the plugin's request_context: the hook runs once, on the
// cancelling thread, or at once when set after the cancel.
#pragma once

#include "ports/cancellation.hpp"

#include <functional>
#include <mutex>
#include <utility>

namespace oneds::test {

class test_cancellation final : public ports::cancellation {
public:
    bool cancelled() const override {
        const std::lock_guard lock(mutex_);
        return cancelled_;
    }
    void set_cancel_hook(std::function<void()> hook) override {
        std::unique_lock lock(mutex_);
        ++hooks_set_;
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
            hook = std::exchange(hook_, nullptr);
        }
        if (hook) hook();
    }
    int hooks_set() const {
        const std::lock_guard lock(mutex_);
        return hooks_set_;
    }

private:
    mutable std::mutex mutex_;
    bool cancelled_ = false;
    int hooks_set_ = 0;
    std::function<void()> hook_;
};

}  // namespace oneds::test
