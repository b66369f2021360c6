// Several port calls of one request running at once (parallel pulls) each
// need their own cancellation slot; the request has one. A fanout takes the
// request's slot for its lifetime and cancels every child when the request is
// cancelled.
#pragma once

#include "ports/cancellation.hpp"

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace oneds::restic {

using child_cancellation = ports::manual_cancellation;

class cancel_fanout {
public:
    explicit cancel_fanout(ports::cancellation &parent) : parent_(parent), children_(std::make_shared<list>()) {
        auto children = children_;
        parent_.set_cancel_hook([children] {
            std::vector<std::shared_ptr<child_cancellation>> all;
            {
                std::lock_guard l(children->m);
                children->cancelled = true;
                all = children->items;
            }
            for (auto &c : all) c->cancel();
        });
    }
    ~cancel_fanout() { parent_.clear_cancel_hook(); }
    cancel_fanout(const cancel_fanout &) = delete;
    cancel_fanout &operator=(const cancel_fanout &) = delete;

    std::shared_ptr<child_cancellation> child() {
        auto c = std::make_shared<child_cancellation>();
        bool cancel_now;
        {
            std::lock_guard l(children_->m);
            children_->items.push_back(c);
            cancel_now = children_->cancelled;
        }
        if (cancel_now) c->cancel();
        return c;
    }

private:
    struct list {
        std::mutex m;
        bool cancelled = false;
        std::vector<std::shared_ptr<child_cancellation>> items;
    };
    ports::cancellation &parent_;
    std::shared_ptr<list> children_;
};

}  // namespace oneds::restic
