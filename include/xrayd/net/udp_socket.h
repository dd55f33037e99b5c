// UDP listen addresses parsed like Go's net.ResolveUDPAddr, and the daemon's listening sockets.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <xrayd/common/result.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/log/logger.h>

namespace xrayd {

// A resolved listen address.
struct UdpAddress {
    sockaddr_storage storage{};  // AF_INET or AF_INET6, port in network order
    socklen_t length = 0;        // bytes of `storage` in use
    // Go's UDPAddr.String() of the resolved address, used in error messages: "127.0.0.1:2000",
    // "[::1]:2000", ":2000" for an empty host.
    std::string text;
    // Empty host, 0.0.0.0 or [::]: one AF_INET6 socket with IPV6_V6ONLY=0 that receives
    // IPv4 and IPv6, as Go listens on wildcards. `storage` then holds [::]:port.
    bool dual_stack_wildcard = false;

    [[nodiscard]] int family() const noexcept { return storage.ss_family; }
    [[nodiscard]] unsigned port() const noexcept;
};

// Resolves `host:port` as Go's net.ResolveUDPAddr("udp", address) does: IP literals (IPv6 in
// brackets, optional %zone), host names through getaddrinfo (the first IPv4 answer preferred,
// else the first IPv6 one), numeric ports 0..65535 or service names, an empty port meaning 0.
// The error is Go's text, e.g. "address 127.0.0.1: missing port in address".
// Unlike Go, an empty address is an error (Go would pick a random wildcard port), and a
// localhost name (is_localhost_name) that the system cannot resolve — no /etc/hosts in a
// minimal container, no DNS answer — is 127.0.0.1 (RFC 6761 6.3) instead of a start-up error.
// Start-up only: may block on DNS. Any thread.
[[nodiscard]] Result<UdpAddress, std::string> resolve_udp_address(std::string_view address);

// "localhost" or a name under it ("a.localhost"), any case, optional trailing dot: the names
// RFC 6761 6.3 reserves for the loopback address.
[[nodiscard]] bool is_localhost_name(std::string_view host) noexcept;

// How open_udp_sockets builds the group.
struct UdpSocketOptions {
    int count = 1;                         // sockets in the SO_REUSEPORT group, >= 1
    std::size_t receive_buffer_bytes = 0;  // 0 keeps the OS default
    // With count > 1: attach a classic BPF reuseport program that picks socket
    // (CPU handling the datagram) % count instead of the flow hash, so one busy sender cannot
    // pin all load on one socket; pair it with receiver i pinned to CPU i. Where the kernel
    // refuses the program (no SO_ATTACH_REUSEPORT_CBPF) a warning is logged and the flow hash
    // stays in use.
    bool steer_by_cpu = false;
};

// Opens `count` (>= 1) non-blocking, close-on-exec UDP sockets bound to `address`. With
// count > 1 each socket sets SO_REUSEPORT (the kernel spreads datagrams by flow hash); with
// port 0 the port the first socket got is used by the others. When `receive_buffer_bytes`
// is > 0 the receive buffer is raised (SO_RCVBUFFORCE, which needs CAP_NET_ADMIN, else
// SO_RCVBUF, capped by net.core.rmem_max) and the granted size is logged once at Info;
// 0 keeps the OS default. SO_RXQ_OVFL is enabled when the platform has it, so receivers can
// count kernel drops.
// Throws StartupError with Go's text, e.g.
//   "listen udp 127.0.0.1:2000: bind: address already in use" (exit code 1).
// Start-up only. Any thread.
[[nodiscard]] std::vector<UniqueFd> open_udp_sockets(const std::string& address, int count,
                                                     std::size_t receive_buffer_bytes,
                                                     Logger& logger);

// The same with every option; open_udp_sockets(a, n, b, log) is
// open_udp_sockets(a, UdpSocketOptions{n, b, false}, log).
[[nodiscard]] std::vector<UniqueFd> open_udp_sockets(const std::string& address,
                                                     const UdpSocketOptions& options,
                                                     Logger& logger);

// The socket's bound address as "127.0.0.1:41234" or "[::1]:41234"; "" if getsockname fails.
[[nodiscard]] std::string local_address(int fd);

// Go's text for an errno, as its net package prints it: the C message, first letter lower-case
// ("address already in use").
[[nodiscard]] std::string go_errno_text(int error);

// The address in Go's notation ("1.2.3.4:5", "[::1]:5", "[fe80::1%eth0]:5"); "" when the
// family is neither AF_INET nor AF_INET6.
[[nodiscard]] std::string format_socket_address(const sockaddr* address, socklen_t length);

}  // namespace xrayd
