// UDP listen addresses (Go's ResolveUDPAddr rules) and the daemon's listening sockets.
#include <xrayd/net/udp_socket.h>

#include <arpa/inet.h>
#include <linux/filter.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <xrayd_config.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <system_error>

#include <xrayd/common/host_lookup.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/common/sysctl.h>

namespace xrayd {

namespace {

// Go's net.AddrError text.
std::string addr_error(std::string_view address, std::string_view why) {
    if (address.empty()) {
        return std::string(why);
    }
    return fmt::format("address {}: {}", address, why);
}

struct HostPort {
    std::string_view host;
    std::string_view port;
};

// Go's net.SplitHostPort, error texts included.
Result<HostPort, std::string> split_host_port(std::string_view hostport) {
    constexpr std::string_view missing_port = "missing port in address";
    constexpr std::string_view too_many_colons = "too many colons in address";
    const std::size_t i = hostport.rfind(':');
    if (i == std::string_view::npos) {
        return fail(addr_error(hostport, missing_port));
    }
    std::string_view host;
    std::size_t j = 0;
    std::size_t k = 0;
    if (hostport.front() == '[') {
        const std::size_t end = hostport.find(']');
        if (end == std::string_view::npos) {
            return fail(addr_error(hostport, "missing ']' in address"));
        }
        if (end + 1 == hostport.size()) {
            return fail(addr_error(hostport, missing_port));
        }
        if (end + 1 != i) {
            return fail(
                addr_error(hostport, hostport[end + 1] == ':' ? too_many_colons : missing_port));
        }
        host = hostport.substr(1, end - 1);
        j = 1;
        k = end + 1;
    } else {
        host = hostport.substr(0, i);
        if (host.find(':') != std::string_view::npos) {
            return fail(addr_error(hostport, too_many_colons));
        }
    }
    if (hostport.find('[', j) != std::string_view::npos) {
        return fail(addr_error(hostport, "unexpected '[' in address"));
    }
    if (hostport.find(']', k) != std::string_view::npos) {
        return fail(addr_error(hostport, "unexpected ']' in address"));
    }
    return HostPort{host, hostport.substr(i + 1)};
}

// Go's net.parsePort + LookupPort: decimal with an optional sign (saturating), else a service
// name looked up for "udp"; the result must lie in 0..65535.
Result<unsigned, std::string> parse_port(std::string_view service) {
    if (service.empty()) {
        return 0U;
    }
    std::string_view digits = service;
    bool negative = false;
    if (digits.front() == '+' || digits.front() == '-') {
        negative = digits.front() == '-';
        digits.remove_prefix(1);
    }
    bool numeric = true;
    std::uint64_t n = 0;
    for (const char c : digits) {
        if (c < '0' || c > '9') {
            numeric = false;
            break;
        }
        if (n <= 65535) {  // saturate: anything above is out of range anyway
            n = n * 10 + static_cast<unsigned>(c - '0');
        }
    }
    if (!numeric) {
        const std::string name(service);
        servent entry{};
        servent* found = nullptr;
        char buffer[1024];
        if (::getservbyname_r(name.c_str(), "udp", &entry, buffer, sizeof buffer, &found) != 0 ||
            found == nullptr) {
            return fail(fmt::format("lookup udp/{}: unknown port", service));
        }
        return static_cast<unsigned>(ntohs(static_cast<std::uint16_t>(found->s_port)));
    }
    if ((negative && n != 0) || n > 65535) {
        return fail(addr_error(service, "invalid port"));
    }
    return static_cast<unsigned>(n);
}

// An IP literal: IPv4 dotted quad, or IPv6 with an optional %zone (name or index).
std::optional<sockaddr_storage> parse_ip_literal(const std::string& host) {
    sockaddr_storage storage{};
    if (host.find(':') == std::string::npos) {
        auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
        if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) != 1) {
            return std::nullopt;
        }
        v4->sin_family = AF_INET;
        return storage;
    }
    const std::size_t percent = host.find('%');
    const std::string ip = host.substr(0, percent);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (::inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) != 1) {
        return std::nullopt;
    }
    v6->sin6_family = AF_INET6;
    if (percent != std::string::npos) {
        const std::string zone = host.substr(percent + 1);
        if (zone.empty()) {
            return std::nullopt;
        }
        unsigned index = ::if_nametoindex(zone.c_str());
        if (index == 0) {
            char* end = nullptr;
            const unsigned long n = std::strtoul(zone.c_str(), &end, 10);
            index = (end != nullptr && *end == '\0' && n <= UINT32_MAX)
                        ? static_cast<unsigned>(n)
                        : 0;  // Go ignores an unknown zone name
        }
        v6->sin6_scope_id = index;
    }
    // Go treats ::ffff:a.b.c.d as the IPv4 address a.b.c.d.
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && percent == std::string::npos) {
        sockaddr_storage mapped{};
        auto* v4 = reinterpret_cast<sockaddr_in*>(&mapped);
        v4->sin_family = AF_INET;
        std::memcpy(&v4->sin_addr, &v6->sin6_addr.s6_addr[12], 4);
        return mapped;
    }
    return storage;
}

bool is_unspecified(const sockaddr_storage& s) {
    if (s.ss_family == AF_INET) {
        return reinterpret_cast<const sockaddr_in&>(s).sin_addr.s_addr == htonl(INADDR_ANY);
    }
    return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6&>(s).sin6_addr);
}

void set_port(sockaddr_storage& s, unsigned port) {
    const auto p = htons(static_cast<std::uint16_t>(port));
    if (s.ss_family == AF_INET) {
        reinterpret_cast<sockaddr_in&>(s).sin_port = p;
    } else {
        reinterpret_cast<sockaddr_in6&>(s).sin6_port = p;
    }
}

socklen_t length_of(int family) {
    return family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

// Resolves a host name, first IPv4 answer preferred as Go's filterAddrList does for "udp".
Result<sockaddr_storage, std::string> lookup_host(const std::string& host) {
    auto found = lookup_host_addresses(host, SOCK_DGRAM);
    if (!found) {
        const HostLookupError& e = found.error();
        const std::string why =
            e.kind == HostLookupError::Kind::system ? go_errno_text(e.system_errno) : e.text;
        return fail(fmt::format("lookup {}: {}", host, why));
    }
    const sockaddr_storage* v4 = nullptr;
    const sockaddr_storage* v6 = nullptr;
    for (const sockaddr_storage& a : found.value()) {
        if (a.ss_family == AF_INET && v4 == nullptr) {
            v4 = &a;
        } else if (a.ss_family == AF_INET6 && v6 == nullptr) {
            v6 = &a;
        }
    }
    const sockaddr_storage* chosen = v4 != nullptr ? v4 : v6;
    if (chosen == nullptr) {
        return fail(fmt::format("lookup {}: no suitable address found", host));
    }
    return *chosen;
}

int int_option(int fd, int level, int name) {
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, level, name, &value, &len) != 0) {
        return -1;
    }
    return value;
}

// What the kernel granted (SO_RCVBUF reads back twice the usable size), and when it is less
// than asked, what capped it and how an operator lifts the cap: bursts the pipeline cannot
// absorb at once wait in this buffer, and overflow it as kernel drops.
void log_receive_buffer(Logger& logger, std::size_t asked, int reported) {
    const long granted = reported > 0 ? reported / 2 : reported;
    if (granted >= 0 && static_cast<std::size_t>(granted) >= asked) {
        logger.info("Receive buffer for UDP sockets: asked {} bytes, kernel granted {}", asked,
                    granted);
        return;
    }
    const std::optional<long> cap = read_sysctl("net.core.rmem_max");
    logger.info("Receive buffer for UDP sockets: asked {} bytes, kernel granted {} (capped by "
                "net.core.rmem_max{}, since the process lacks CAP_NET_ADMIN; for bursts, raise "
                "it: sysctl -w net.core.rmem_max={})",
                asked, granted, cap ? fmt::format(" = {}", *cap) : std::string(), asked);
}

bool set_int_option(int fd, int level, int name, int value) {
    return ::setsockopt(fd, level, name, &value, sizeof value) == 0;
}

// A classic BPF reuseport program: A = CPU id; A %= group size; return A. The kernel uses the
// returned index into the group (sockets in bind order) and falls back to the flow hash if it
// is out of range. Attached to one member, it applies to the whole group.
void attach_cpu_steering(int fd, int count, Logger& logger) {
    sock_filter code[] = {
        {BPF_LD | BPF_W | BPF_ABS, 0, 0, static_cast<std::uint32_t>(SKF_AD_OFF + SKF_AD_CPU)},
        {BPF_ALU | BPF_MOD | BPF_K, 0, 0, static_cast<std::uint32_t>(count)},
        {BPF_RET | BPF_A, 0, 0, 0},
    };
    sock_fprog program{};
    program.len = static_cast<unsigned short>(sizeof code / sizeof code[0]);
    program.filter = code;
    if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof program) != 0) {
        logger.warn("Cannot steer datagrams to sockets by CPU (SO_ATTACH_REUSEPORT_CBPF: {}); "
                    "the kernel's flow hash spreads them",
                    go_errno_text(errno));
        return;
    }
    logger.debug("Datagrams steered to the {} sockets by CPU", count);
}

}  // namespace

unsigned UdpAddress::port() const noexcept {
    if (storage.ss_family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in&>(storage).sin_port);
    }
    if (storage.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6&>(storage).sin6_port);
    }
    return 0;
}

std::string format_socket_address(const sockaddr* address, socklen_t length) {
    if (address == nullptr || (address->sa_family != AF_INET && address->sa_family != AF_INET6)) {
        return {};
    }
    char host[NI_MAXHOST];
    char port[NI_MAXSERV];
    if (::getnameinfo(address, length, host, sizeof host, port, sizeof port,
                      NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        return {};
    }
    if (address->sa_family == AF_INET6) {
        return fmt::format("[{}]:{}", host, port);
    }
    return fmt::format("{}:{}", host, port);
}

std::string local_address(int fd) {
    sockaddr_storage storage{};
    socklen_t len = sizeof storage;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len) != 0) {
        return {};
    }
    return format_socket_address(reinterpret_cast<const sockaddr*>(&storage), len);
}

std::string go_errno_text(int error) {
    std::string text = std::system_category().message(error);
    if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z') {
        text[0] = static_cast<char>(text[0] - 'A' + 'a');
    }
    return text;
}

bool is_localhost_name(std::string_view host) noexcept {
    if (!host.empty() && host.back() == '.') {
        host.remove_suffix(1);
    }
    constexpr std::string_view localhost = "localhost";
    if (host.size() < localhost.size()) {
        return false;
    }
    const std::string_view tail = host.substr(host.size() - localhost.size());
    for (std::size_t i = 0; i < localhost.size(); ++i) {
        const char c = tail[i];
        if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != localhost[i]) {
            return false;
        }
    }
    return host.size() == localhost.size() || host[host.size() - localhost.size() - 1] == '.';
}

Result<UdpAddress, std::string> resolve_udp_address(std::string_view address) {
    if (address.empty()) {
        return fail(std::string("missing address"));
    }
    auto split = split_host_port(address);
    if (!split) {
        return fail(split.error());
    }
    auto port = parse_port(split.value().port);
    if (!port) {
        return fail(port.error());
    }
    const std::string host(split.value().host);
    UdpAddress out;
    if (host.empty()) {
        out.storage.ss_family = AF_INET6;  // in6addr_any: the zeroed storage
        out.dual_stack_wildcard = true;
        out.text = fmt::format(":{}", port.value());
    } else {
        auto literal = parse_ip_literal(host);
        if (literal) {
            out.storage = *literal;
        } else {
            // The system's answer first, as Go asks it (an /etc/hosts entry for localhost
            // stands); without one, localhost is still the loopback address (RFC 6761 6.3).
            auto looked_up = lookup_host(host);
            if (looked_up) {
                out.storage = looked_up.value();
            } else if (is_localhost_name(host)) {
                out.storage = *parse_ip_literal("127.0.0.1");
            } else {
                return fail(looked_up.error());
            }
        }
        if (is_unspecified(out.storage)) {
            out.dual_stack_wildcard = true;
        }
        set_port(out.storage, port.value());
        out.length = length_of(out.storage.ss_family);
        out.text =
            format_socket_address(reinterpret_cast<const sockaddr*>(&out.storage), out.length);
        if (out.dual_stack_wildcard) {
            out.storage = sockaddr_storage{};
            out.storage.ss_family = AF_INET6;
        }
    }
    set_port(out.storage, port.value());
    out.length = length_of(out.storage.ss_family);
    return out;
}

std::vector<UniqueFd> open_udp_sockets(const std::string& address, int count,
                                       std::size_t receive_buffer_bytes, Logger& logger) {
    return open_udp_sockets(address, UdpSocketOptions{count, receive_buffer_bytes, false}, logger);
}

std::vector<UniqueFd> open_udp_sockets(const std::string& address, const UdpSocketOptions& options,
                                       Logger& logger) {
    const int count = options.count;
    const std::size_t receive_buffer_bytes = options.receive_buffer_bytes;
    if (count < 1) {
        throw StartupError(fmt::format("listen udp {}: invalid socket count {}", address, count));
    }
    auto resolved = resolve_udp_address(address);
    if (!resolved) {
        throw StartupError(resolved.error());
    }
    UdpAddress addr = std::move(resolved.value());
    const auto failure = [&addr](std::string_view op, int error) {
        return StartupError(
            fmt::format("listen udp {}: {}: {}", addr.text, op, go_errno_text(error)));
    };

    std::vector<UniqueFd> sockets;
    sockets.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        constexpr int type = SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
        UniqueFd fd(::socket(addr.family(), type, IPPROTO_UDP));
        if (!fd && addr.dual_stack_wildcard && errno == EAFNOSUPPORT && i == 0) {
            // No IPv6 in this kernel: Go then listens on the IPv4 wildcard.
            const unsigned port = addr.port();
            addr.storage = sockaddr_storage{};
            addr.storage.ss_family = AF_INET;
            set_port(addr.storage, port);
            addr.length = sizeof(sockaddr_in);
            addr.dual_stack_wildcard = false;
            fd.reset(::socket(AF_INET, type, IPPROTO_UDP));
        }
        if (!fd) {
            throw failure("socket", errno);
        }
        if (addr.dual_stack_wildcard && !set_int_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 0)) {
            throw failure("setsockopt", errno);
        }
        if (count > 1 && !set_int_option(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1)) {
            throw failure("setsockopt", errno);
        }
        if (receive_buffer_bytes > 0) {
            const int asked = receive_buffer_bytes > INT32_MAX / 2
                                  ? INT32_MAX / 2
                                  : static_cast<int>(receive_buffer_bytes);
            // SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; SO_RCVBUF is
            // capped by rmem_max. Either way the kernel doubles the value for bookkeeping.
            if (!set_int_option(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, asked) &&
                !set_int_option(fd.get(), SOL_SOCKET, SO_RCVBUF, asked) && i == 0) {
                logger.warn("Cannot set the UDP receive buffer: {}", go_errno_text(errno));
            }
            if (i == 0) {
                log_receive_buffer(logger, receive_buffer_bytes,
                                   int_option(fd.get(), SOL_SOCKET, SO_RCVBUF));
            }
        }
#ifdef XRAYD_HAVE_SO_RXQ_OVFL
        if (!set_int_option(fd.get(), SOL_SOCKET, SO_RXQ_OVFL, 1) && i == 0) {
            logger.warn("Kernel UDP drops will not be counted: SO_RXQ_OVFL: {}",
                        go_errno_text(errno));
        }
#endif
        if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) != 0) {
            throw failure("bind", errno);
        }
        if (i == 0 && count > 1 && addr.port() == 0) {
            // The group must share one port: take the one the kernel picked.
            sockaddr_storage bound{};
            socklen_t len = sizeof bound;
            if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
                throw failure("getsockname", errno);
            }
            const unsigned port = bound.ss_family == AF_INET
                                      ? ntohs(reinterpret_cast<sockaddr_in&>(bound).sin_port)
                                      : ntohs(reinterpret_cast<sockaddr_in6&>(bound).sin6_port);
            set_port(addr.storage, port);
        }
        sockets.push_back(std::move(fd));
    }
    if (options.steer_by_cpu && count > 1) {
        attach_cpu_steering(sockets.front().get(), count, logger);
    }
    return sockets;
}

}  // namespace xrayd
