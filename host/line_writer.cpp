#include "line_writer.hpp"

#include <cerrno>

#include <unistd.h>

namespace oneds::host {

bool line_writer::write_line(std::string_view line) {
    std::string buf;
    buf.reserve(line.size() + 1);
    buf.append(line);
    buf.push_back('\n');
    std::lock_guard lock(mutex_);
    if (broken_) return false;
    std::size_t off = 0;
    while (off < buf.size()) {
        const ssize_t n = ::write(fd_, buf.data() + off, buf.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            broken_ = true;
            return false;
        }
        off += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace oneds::host
