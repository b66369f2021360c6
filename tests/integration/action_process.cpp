#include "tests/integration/action_process.hpp"

#include <cerrno>
#include <csignal>
#include <fstream>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace oneds::test {
namespace {

// SigCgt of pid from /proc/<pid>/status, 0 when unreadable.
unsigned long long caught_signals(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("SigCgt:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
    return 0;
}

}  // namespace

spawned_process::spawned_process(const std::vector<std::string> &argv, std::string input,
                                 const std::map<std::string, std::string> &env, bool hold_input)
    : input_(std::move(input)), hold_input_(hold_input) {
    std::signal(SIGPIPE, SIG_IGN);
    common::child_spec spec;
    spec.argv = argv;
    spec.env_set = env;
    spec.in = common::child_stream::pipe();
    spec.out = common::child_stream::pipe();
    spec.err = common::child_stream::pipe();
    // Default dispositions and an empty mask (the launcher's default), as a
    // script started by oned's drivers would have, whatever this test process
    // changed.
    start_ = std::chrono::steady_clock::now();
    child_ = common::spawn(spec);
    in_ = std::move(child_.stdin_pipe());
    out_ = std::move(child_.stdout_pipe());
    err_ = std::move(child_.stderr_pipe());
    pump_ = std::thread([this] { pump(); });
}

spawned_process::~spawned_process() {
    child_.kill();
    if (pump_.joinable()) pump_.join();
}

void spawned_process::pump() {
    std::size_t written = 0;
    if (input_.empty())
        in_.reset();
    else
        ::fcntl(in_.get(), F_SETFL, ::fcntl(in_.get(), F_GETFL) | O_NONBLOCK);
    while (out_ || err_) {
        const bool held = hold_input_;
        pollfd fds[3] = {{out_.get(), POLLIN, 0}, {err_.get(), POLLIN, 0}, {held ? -1 : in_.get(), POLLOUT, 0}};
        const int pr = ::poll(fds, 3, held ? 20 : -1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) break;
        if (!held && in_ && fds[2].revents != 0) {
            const ssize_t n = ::write(in_.get(), input_.data() + written, input_.size() - written);
            if (n > 0) written += static_cast<std::size_t>(n);
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input_.size()) in_.reset();
        }
        for (auto [fd, text] : {std::pair{&out_, &out_text_}, std::pair{&err_, &err_text_}}) {
            const pollfd &p = fd == &out_ ? fds[0] : fds[1];
            if (!*fd || p.revents == 0) continue;
            char buf[4096];
            const ssize_t n = ::read(fd->get(), buf, sizeof buf);
            if (n > 0)
                text->append(buf, static_cast<std::size_t>(n));
            else if (n == 0 || errno != EINTR)
                fd->reset();
        }
    }
    in_.reset();
}

bool spawned_process::wait_for_signal_handler(int sig, std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const unsigned long long bit = 1ULL << (sig - 1);
    while (std::chrono::steady_clock::now() < deadline) {
        if ((caught_signals(pid()) & bit) != 0) return true;
        // No sleep: tests use this to signal as early as the handler allows.
        std::this_thread::yield();
    }
    return false;
}

void spawned_process::send_signal(int sig) const { (void)child_.signal(sig); }

process_result spawned_process::wait(std::chrono::milliseconds limit) {
    process_result r;
    auto status = child_.wait_for(std::max(limit, std::chrono::milliseconds(0)));
    if (!status) {
        status = child_.kill();
        r.killed = true;
    }
    r.took = std::chrono::steady_clock::now() - start_;
    // The outputs reach EOF once the child (and anything it left behind) is gone.
    if (pump_.joinable()) pump_.join();
    r.exit_code = status->exit_code();
    r.term_signal = status->term_signal();
    r.out = out_text_;
    r.err = err_text_;
    return r;
}

process_result run_process(const std::vector<std::string> &argv, const std::string &input,
                           const std::map<std::string, std::string> &env, std::chrono::milliseconds limit) {
    spawned_process p(argv, input, env);
    return p.wait(limit);
}

}  // namespace oneds::test
