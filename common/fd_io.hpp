// Whole writes and line framing on file descriptors: one of each for the
// host's pipes (oned's channel, the fallback driver, action mode's stdio).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace oneds::common {

// Writes all of data, retrying on EINTR and short writes. False on any other
// error (EPIPE when the reader is gone).
bool write_all(int fd, std::string_view data);

// Bytes in, complete lines out: '\n' ends a line, a '\r' before it is
// dropped (oned's peers may send CRLF).
class line_splitter {
public:
    void append(std::string_view bytes) { buffer_.append(bytes); }
    // The next complete line without its end, or nullopt.
    std::optional<std::string> next();
    // What is left without a '\n' (a last line at end of file).
    std::string take_rest();

private:
    std::string buffer_;
    std::size_t start_ = 0;
};

}  // namespace oneds::common
