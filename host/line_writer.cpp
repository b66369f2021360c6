#include "host/line_writer.hpp"

#include "common/fd_io.hpp"

namespace oneds::host {

bool line_writer::write_line(std::string_view line) {
    std::string buf;
    buf.reserve(line.size() + 1);
    buf.append(line);
    buf.push_back('\n');
    std::lock_guard lock(mutex_);
    if (broken_) return false;
    if (!common::write_all(fd_, buf)) broken_ = true;
    return !broken_;
}

}  // namespace oneds::host
