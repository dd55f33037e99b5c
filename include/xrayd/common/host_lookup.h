// lookup_host_addresses(): a host name to its addresses, without glibc's NSS in the static build.
#pragma once

#include <sys/socket.h>

#include <string>
#include <vector>

#include <xrayd/common/result.h>

namespace xrayd {

struct HostLookupError {
    enum class Kind { no_such_host, system, other };
    Kind kind = Kind::other;
    int system_errno = 0;  // Kind::system only
    std::string text;      // the resolver's own message, lower case first (as Go prints them)
};

// The addresses of host (a name or an IP literal) for sockets of socktype (SOCK_DGRAM,
// SOCK_STREAM), in the resolver's order: /etc/hosts, then DNS as /etc/resolv.conf says.
// The dynamic build asks getaddrinfo(); the static release build asks c-ares, because a static
// glibc would load NSS modules from the root file system at run time, which a container
// FROM scratch does not have. Blocking: start-up and control plane only. Any thread.
[[nodiscard]] Result<std::vector<sockaddr_storage>, HostLookupError> lookup_host_addresses(
    const std::string& host, int socktype);

}  // namespace xrayd
