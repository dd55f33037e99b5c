// listen_tcp: the listening socket of the sampling proxy and the admin server.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <xrayd/common/result.h>
#include <xrayd/common/unique_fd.h>

namespace xrayd {

// Binds and listens on a TCP host:port, parsed as the UDP listen addresses are (hostnames,
// bracketed IPv6, ":port" as a dual-stack wildcard, port 0 for any). Non-blocking,
// close-on-exec, SO_REUSEADDR. The error is Go's text, e.g.
// "listen tcp 127.0.0.1:2000: bind: address already in use". Start-up only.
[[nodiscard]] Result<UniqueFd, std::string> listen_tcp(std::string_view address);

// The port a socket is bound to (the real one after binding port 0); 0 when getsockname fails
// or the socket is not IPv4/IPv6. Thread-safe.
[[nodiscard]] std::uint16_t bound_port(int fd) noexcept;

}  // namespace xrayd
