// A stop source that a test fires by hand, from any thread: what the plugin's
// request_context gives every port call (its std::stop_token).
#pragma once

#include <stop_token>

namespace oneds::test {

class test_cancellation {
public:
    std::stop_token token() const noexcept { return source_.get_token(); }
    void cancel() noexcept { source_.request_stop(); }
    bool cancelled() const noexcept { return source_.stop_requested(); }

private:
    std::stop_source source_;
};

}  // namespace oneds::test
