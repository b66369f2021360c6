#include "common/fd_io.hpp"

#include <algorithm>
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

void line_splitter::add_to_partial(std::string_view piece) {
    if (partial_dropped_ > 0) {
        partial_dropped_ += piece.size();
        return;
    }
    if (max_line_ == 0 || partial_.size() + piece.size() <= max_line_) {
        partial_.append(piece);
        return;
    }
    // Over the limit: keep the head, count the rest.
    const std::size_t room = partial_.size() < keep_ ? keep_ - partial_.size() : 0;
    const std::size_t taken = std::min(room, piece.size());
    partial_.append(piece.substr(0, taken));
    partial_dropped_ = piece.size() - taken;
    if (partial_.size() > keep_) {
        partial_dropped_ += partial_.size() - keep_;
        partial_.resize(keep_);
    }
    partial_.shrink_to_fit();
}

void line_splitter::append(std::string_view bytes) {
    while (!bytes.empty()) {
        const auto nl = bytes.find('\n');
        add_to_partial(bytes.substr(0, nl));
        if (nl == std::string_view::npos) return;
        if (partial_dropped_ == 0 && !partial_.empty() && partial_.back() == '\r') partial_.pop_back();
        ready_.push_back({std::move(partial_), partial_dropped_});
        partial_.clear();
        partial_dropped_ = 0;
        bytes.remove_prefix(nl + 1);
    }
}

std::optional<std::string> line_splitter::next() {
    if (ready_.empty()) return std::nullopt;
    auto line = std::move(ready_.front());
    ready_.pop_front();
    last_dropped_ = line.dropped;
    return std::move(line.text);
}

std::string line_splitter::take_rest() {
    std::string rest = std::move(partial_);
    partial_.clear();
    partial_dropped_ = 0;
    return rest;
}

}  // namespace oneds::common
