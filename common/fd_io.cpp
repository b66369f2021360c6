#include "common/fd_io.hpp"

#include <cerrno>

#include <unistd.h>

namespace oneds::common {

bool write_all(int fd, std::string_view data) {
    std::size_t off = 0;
    while (off < data.size()) {
        const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        off += static_cast<std::size_t>(n);
    }
    return true;
}

std::optional<std::string> line_splitter::next() {
    const auto nl = buffer_.find('\n', start_);
    if (nl == std::string::npos) {
        // Keep the buffer from growing with consumed lines.
        if (start_ > 0) {
            buffer_.erase(0, start_);
            start_ = 0;
        }
        return std::nullopt;
    }
    std::string line = buffer_.substr(start_, nl - start_);
    start_ = nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

std::string line_splitter::take_rest() {
    std::string rest = buffer_.substr(start_);
    buffer_.clear();
    start_ = 0;
    return rest;
}

}  // namespace oneds::common
