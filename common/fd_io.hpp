// Whole writes and line framing on file descriptors: one of each for the
// host's pipes (oned's channel, the fallback driver, action mode's stdio).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace oneds::common {

// Writes all of data, retrying on EINTR and short writes. False on any other
// error (EPIPE when the reader is gone).
bool write_all(int fd, std::string_view data);

// Bytes in, complete lines out: '\n' ends a line, a '\r' before it is
// dropped (oned's peers may send CRLF). With a max_line, a line longer than
// that is never stored whole: its first keep bytes are kept, the rest is
// counted and dropped as it arrives, and dropped() says so. Each byte is
// looked at once, whatever the line's length.
class line_splitter {
public:
    explicit line_splitter(std::size_t max_line = 0, std::size_t keep = 4096) noexcept
        : max_line_(max_line), keep_(keep < max_line || max_line == 0 ? keep : max_line) {}
    void append(std::string_view bytes);
    // The next complete line without its end, or nullopt.
    std::optional<std::string> next();
    // The bytes dropped from the line next() returned last (0: it is whole).
    [[nodiscard]] std::uint64_t dropped() const noexcept { return last_dropped_; }
    // What is left without a '\n' (a last line at end of file).
    std::string take_rest();

private:
    void add_to_partial(std::string_view piece);

    struct complete_line {
        std::string text;
        std::uint64_t dropped = 0;
    };
    std::size_t max_line_;
    std::size_t keep_;
    std::deque<complete_line> ready_;
    std::string partial_;
    std::uint64_t partial_dropped_ = 0;
    std::uint64_t last_dropped_ = 0;
};

}  // namespace oneds::common
