// A ports::cancellation that a test fires by hand, from any thread, with the
// semantics of the plugin's request_context (ports::manual_cancellation: the
// hook runs once, on the cancelling thread, or at once when set after the
// cancel), counting how often a hook was set.
#pragma once

#include "ports/cancellation.hpp"

#include <atomic>
#include <functional>
#include <utility>

namespace oneds::test {

class test_cancellation final : public ports::cancellation {
public:
    bool cancelled() const override { return inner_.cancelled(); }
    void set_cancel_hook(std::function<void()> hook) override {
        ++hooks_set_;
        inner_.set_cancel_hook(std::move(hook));
    }
    void clear_cancel_hook() override { inner_.clear_cancel_hook(); }
    void cancel() { inner_.cancel(); }
    int hooks_set() const { return hooks_set_; }

private:
    ports::manual_cancellation inner_;
    std::atomic<int> hooks_set_{0};
};

}  // namespace oneds::test
