// ceph_gateway: a throw-away Ceph RADOS Gateway (S3) for bench/run.sh, the
// tests' own cluster (tests/support/ceph_fixture, docs/ceph-fixture.md).
//
//   ceph_gateway | ...   (standard output must be a pipe)
//
// Starts the cluster, then writes four lines to standard output and flushes:
//   the S3 endpoint ("http://127.0.0.1:<port>")
//   the S3 user's access key
//   the S3 user's secret key
//   the seconds the start took
// The keys go down that pipe only (never argv, a file or standard error): it
// refuses to start when standard output is not a pipe or a socket. Then it
// waits until its standard input is closed (or SIGTERM, SIGINT, SIGHUP), stops
// the cluster (which removes its directory), writes the seconds the stop took
// as a fifth line and exits 0. On a failed start: the fixture's error on
// standard error, exit 1.
#include "tests/support/ceph_fixture.hpp"

#include <poll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool write_all(const std::string &s) {
    std::size_t done = 0;
    while (done < s.size()) {
        const ssize_t n = ::write(STDOUT_FILENO, s.data() + done, s.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

// Until standard input reaches its end or one of the blocked signals arrives.
void wait_for_end(int sfd) {
    char buf[4096];
    for (;;) {
        pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[1].revents != 0) return;
        if (fds[0].revents != 0) {
            const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
        }
    }
}

}  // namespace

int main(int argc, char **) {
    if (argc != 1) {
        std::fputs("usage: ceph_gateway | ... (no arguments; see bench/ceph_gateway.cpp)\n", stderr);
        return 2;
    }
    struct stat st {};
    if (::fstat(STDOUT_FILENO, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        std::fputs("ceph_gateway: standard output must be a pipe (the S3 keys are written to it)\n", stderr);
        return 2;
    }
    // Handled by wait_for_end, so that the cluster is stopped and its
    // directory removed on these too.
    sigset_t set;
    sigemptyset(&set);
    for (const int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    const int sfd = ::signalfd(-1, &set, SFD_CLOEXEC);

    try {
        const auto t0 = std::chrono::steady_clock::now();
        oneds::test::ceph_fixture gw;
        const double started = seconds_since(t0);
        char secs[32];
        std::snprintf(secs, sizeof secs, "%.3f", started);
        const bool told =
            write_all(gw.s3_endpoint() + "\n" + gw.access_key() + "\n" + gw.secret_key() + "\n" + secs + "\n");
        if (told) wait_for_end(sfd);
        const auto t1 = std::chrono::steady_clock::now();
        gw.stop();
        std::snprintf(secs, sizeof secs, "%.3f\n", seconds_since(t1));
        if (told) (void)write_all(secs);
        return told ? 0 : 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "ceph_gateway: %s\n", e.what());
        return 1;
    }
}
