#include "tests/support/ports.hpp"

#include "common/unique_fd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <system_error>

namespace oneds::test {

unsigned short pick_free_port() {
    const oneds::common::unique_fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(sock.get(), reinterpret_cast<const sockaddr *>(&addr), sizeof addr) != 0 ||
        ::getsockname(sock.get(), reinterpret_cast<sockaddr *>(&addr), &len) != 0)
        throw std::system_error(errno, std::generic_category(), "binding a probe socket to 127.0.0.1:0");
    return ntohs(addr.sin_port);
}

}  // namespace oneds::test
