// listen_tcp and bound_port.
#include <xrayd/net/tcp_listener.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include <fmt/format.h>

#include <xrayd/net/udp_socket.h>

namespace xrayd {

Result<UniqueFd, std::string> listen_tcp(std::string_view address) {
    auto resolved = resolve_udp_address(address);
    if (!resolved) {
        return fail(fmt::format("listen tcp {}: {}", address, resolved.error()));
    }
    const UdpAddress& addr = resolved.value();
    const auto failure = [&](std::string_view step, int err) {
        return fail(fmt::format("listen tcp {}: {}: {}", addr.text, step, go_errno_text(err)));
    };
    UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
        return failure("socket", errno);
    }
    const int one = 1;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        return failure("setsockopt", errno);
    }
    if (addr.dual_stack_wildcard) {
        const int zero = 0;
        if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0) {
            return failure("setsockopt", errno);
        }
    }
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) != 0) {
        return failure("bind", errno);
    }
    if (::listen(fd.get(), SOMAXCONN) != 0) {
        return failure("listen", errno);
    }
    return fd;
}

std::uint16_t bound_port(int fd) noexcept {
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
        return 0;
    }
    if (bound.ss_family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
    }
    if (bound.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
    }
    return 0;
}

}  // namespace xrayd
