// ipv6_loopback_available() by binding a throwaway socket.
#include "loopback.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <xrayd/common/unique_fd.h>

namespace xrayd::test {

bool ipv6_loopback_available() noexcept {
    UniqueFd fd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        return false;
    }
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    return ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
}

}  // namespace xrayd::test
