// How long-running port calls learn that their request was cancelled. The
// plugin runtime's request_context implements it.
#pragma once

#include <functional>

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

}  // namespace oneds::ports
