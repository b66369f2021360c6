// Writes whole protocol lines to a file descriptor. Each line goes out in one
// write() call when the pipe takes it (lines up to PIPE_BUF are atomic), and
// a mutex keeps lines from interleaving when a long one needs several writes.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <string_view>

namespace oneds::host {

class line_writer {
public:
    explicit line_writer(int fd) : fd_(fd) {}
    // Appends '\n' and writes. Returns false once the peer is gone (EPIPE...).
    bool write_line(std::string_view line);
    bool broken() const noexcept { return broken_.load(); }

private:
    int fd_;
    std::mutex mutex_;
    std::atomic<bool> broken_{false};
};

}  // namespace oneds::host
