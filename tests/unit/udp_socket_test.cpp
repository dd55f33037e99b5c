// Tests for UDP listen-address parsing and the daemon's listening sockets (real sockets).
#include <xrayd/net/udp_socket.h>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xrayd_config.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <xrayd/common/startup_error.h>
#include <xrayd/common/sysctl.h>
#include <xrayd/net/io_backend.h>

#include "child_process.h"
#include "loopback.h"

using namespace xrayd;

namespace {

// Collects log lines so tests can check what was logged.
class CaptureSink final : public LogSink {
public:
    explicit CaptureSink(std::shared_ptr<std::vector<std::string>> lines)
        : lines_(std::move(lines)) {}
    void write(std::string_view line) noexcept override { lines_->emplace_back(line); }

private:
    std::shared_ptr<std::vector<std::string>> lines_;
};

struct CapturingLogger {
    std::shared_ptr<std::vector<std::string>> lines = std::make_shared<std::vector<std::string>>();
    Logger logger{LogLevel::debug, std::make_unique<CaptureSink>(lines)};
};

// Sends `payload` from a fresh socket to `address` ("127.0.0.1:port" or "[::1]:port").
void send_datagram(const std::string& address, std::string_view payload) {
    auto to = resolve_udp_address(address);
    REQUIRE(to.ok());
    UniqueFd fd(::socket(to.value().family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd.valid());
    const ssize_t n =
        ::sendto(fd.get(), payload.data(), payload.size(), 0,
                 reinterpret_cast<const sockaddr*>(&to.value().storage), to.value().length);
    REQUIRE(n == static_cast<ssize_t>(payload.size()));
}

// Waits (generously) for one datagram on `fd`; "" when none arrives.
std::string receive_datagram(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) {
        return {};
    }
    char buffer[2048];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
}

std::string port_of(const std::string& address) {
    return address.substr(address.rfind(':') + 1);
}

int int_option(int fd, int level, int name) {
    int value = -1;
    socklen_t len = sizeof value;
    REQUIRE(::getsockopt(fd, level, name, &value, &len) == 0);
    return value;
}

}  // namespace

TEST_CASE("resolve_udp_address accepts the listen address forms Go's ResolveUDPAddr accepts") {
    struct Row {
        const char* input;
        int family;
        unsigned port;
        const char* text;
        bool wildcard;
    };
    const Row rows[] = {
        {"127.0.0.1:2000", AF_INET, 2000, "127.0.0.1:2000", false},
        {"[::1]:2000", AF_INET6, 2000, "[::1]:2000", false},
        {":2000", AF_INET6, 2000, ":2000", true},
        {"0.0.0.0:2000", AF_INET6, 2000, "0.0.0.0:2000", true},
        {"[::]:2000", AF_INET6, 2000, "[::]:2000", true},
        {"127.0.0.1:0", AF_INET, 0, "127.0.0.1:0", false},
        {"127.0.0.1:", AF_INET, 0, "127.0.0.1:0", false},  // Go: empty port is 0
        {"127.0.0.1:+2000", AF_INET, 2000, "127.0.0.1:2000", false},
        {"[::ffff:127.0.0.1]:2000", AF_INET, 2000, "127.0.0.1:2000", false},
        {"10.1.2.3:65535", AF_INET, 65535, "10.1.2.3:65535", false},
    };
    for (const Row& row : rows) {
        const std::string input = row.input;  // CAPTURE prints a std::string, not a pointer
        CAPTURE(input);
        auto r = resolve_udp_address(input);
        REQUIRE(r.ok());
        CHECK(r.value().family() == row.family);
        CHECK(r.value().port() == row.port);
        CHECK(r.value().text == row.text);
        CHECK(r.value().dual_stack_wildcard == row.wildcard);
        CHECK(r.value().length ==
              (row.family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6)));
    }
}

// Whatever this machine knows of localhost (an /etc/hosts line, a DNS answer, or nothing at
// all in a minimal container): localhost:2000 is a loopback address, never a start-up error.
TEST_CASE("resolve_udp_address: localhost is a loopback address with or without /etc/hosts") {
    auto r = resolve_udp_address("localhost:2000");
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error()));
    CHECK(r.value().port() == 2000);
    CHECK_FALSE(r.value().dual_stack_wildcard);
    const std::string text = r.value().text;
    CAPTURE(text);
    CHECK((text.rfind("127.", 0) == 0 || text == "[::1]:2000"));
}

TEST_CASE("is_localhost_name knows the RFC 6761 localhost names and no others") {
    for (const char* name :
         {"localhost", "LocalHost", "localhost.", "a.localhost", "b.a.LOCALHOST."}) {
        const std::string input = name;
        CAPTURE(input);
        CHECK(is_localhost_name(input));
    }
    for (const char* name :
         {"", "localhos", "notlocalhost", "localhost.example.com", "localhost..", "xlocalhost."}) {
        const std::string input = name;
        CAPTURE(input);
        CHECK_FALSE(is_localhost_name(input));
    }
}

TEST_CASE("resolve_udp_address resolves a service name as the port, as Go does") {
    // The services database is /etc/services, from netbase (tools/install-deps.sh installs it).
    auto r = resolve_udp_address("127.0.0.1:domain");
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error()) << " (is netbase installed?)");
    CHECK(r.value().port() == 53);
}

TEST_CASE("resolve_udp_address rejects bad forms with Go's error text") {
    struct Row {
        const char* input;
        const char* error;
    };
    const Row rows[] = {
        {"127.0.0.1", "address 127.0.0.1: missing port in address"},
        {"1.2.3.4:99999", "address 99999: invalid port"},
        {"1.2.3.4:-1", "address -1: invalid port"},
        {":x", "lookup udp/x: unknown port"},
        {"[::1", "address [::1: missing ']' in address"},
        {"[::1]2000", "address [::1]2000: missing port in address"},
        {"[::1]", "address [::1]: missing port in address"},
        {"::1:2000", "address ::1:2000: too many colons in address"},
        {"[::1]:2000:1", "address [::1]:2000:1: too many colons in address"},
        {"a[b:2000", "address a[b:2000: unexpected '[' in address"},
        {"a]b:2000", "address a]b:2000: unexpected ']' in address"},
        {"", "missing address"},
    };
    for (const Row& row : rows) {
        CAPTURE(row.input);
        auto r = resolve_udp_address(row.input);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error() == row.error);
    }
}

TEST_CASE("open_udp_sockets reports a busy port with Go's bind error text") {
    CapturingLogger log;
    auto first = open_udp_sockets("127.0.0.1:0", 1, 0, log.logger);
    REQUIRE(first.size() == 1);
    const std::string taken = local_address(first[0].get());
    REQUIRE(taken.rfind("127.0.0.1:", 0) == 0);
    for (int count : {1, 2}) {
        CAPTURE(count);
        std::string message;
        try {
            (void)open_udp_sockets(taken, count, 0, log.logger);
        } catch (const StartupError& e) {
            message = e.what();
            CHECK(e.exit_code() == 1);
        }
        CHECK(message == "listen udp " + taken + ": bind: address already in use");
    }
}

TEST_CASE("open_udp_sockets reports an unresolvable address with Go's text") {
    CapturingLogger log;
    std::string message;
    try {
        (void)open_udp_sockets("127.0.0.1", 1, 0, log.logger);
    } catch (const StartupError& e) {
        message = e.what();
    }
    CHECK(message == "address 127.0.0.1: missing port in address");
}

TEST_CASE("open_udp_sockets opens non-blocking close-on-exec sockets with SO_RXQ_OVFL") {
    CapturingLogger log;
    auto sockets = open_udp_sockets("127.0.0.1:0", 1, 0, log.logger);
    REQUIRE(sockets.size() == 1);
    const int fd = sockets[0].get();
    CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(int_option(fd, SOL_SOCKET, SO_REUSEPORT) == 0);  // only groups share a port
#ifdef XRAYD_HAVE_SO_RXQ_OVFL
    CHECK(int_option(fd, SOL_SOCKET, SO_RXQ_OVFL) == 1);
#endif
    CHECK(log.lines->empty());  // no buffer asked for: nothing to report
}

TEST_CASE("a SO_REUSEPORT group of two sockets shares one port and both receive") {
    CapturingLogger log;
    auto group = open_udp_sockets("127.0.0.1:0", 2, 0, log.logger);
    REQUIRE(group.size() == 2);
    const std::string address = local_address(group[0].get());
    CHECK(port_of(address) != "0");
    CHECK(local_address(group[1].get()) == address);
    CHECK(int_option(group[0].get(), SOL_SOCKET, SO_REUSEPORT) == 1);
    CHECK(int_option(group[1].get(), SOL_SOCKET, SO_REUSEPORT) == 1);

    // The kernel picks a member by hashing the source address and port, so datagrams from
    // many source sockets reach both (all 64 landing on one has probability 2^-63).
    constexpr int senders = 64;
    for (int i = 0; i < senders; ++i) {
        send_datagram(address, "hello " + std::to_string(i));
    }
    int per_socket[2] = {0, 0};
    int total = 0;
    while (total < senders) {
        pollfd p[2] = {{group[0].get(), POLLIN, 0}, {group[1].get(), POLLIN, 0}};
        REQUIRE(::poll(p, 2, 10000) > 0);
        for (int s = 0; s < 2; ++s) {
            char buffer[64];
            while (::recv(group[static_cast<std::size_t>(s)].get(), buffer, sizeof buffer,
                          MSG_DONTWAIT) > 0) {
                ++per_socket[s];
                ++total;
            }
        }
    }
    CHECK(total == senders);
    CHECK(per_socket[0] > 0);
    CHECK(per_socket[1] > 0);
}

TEST_CASE("a dual-stack wildcard socket receives an IPv4 datagram") {
    CapturingLogger log;
    auto sockets = open_udp_sockets(":0", 1, 0, log.logger);
    REQUIRE(sockets.size() == 1);
    const std::string address = local_address(sockets[0].get());
    if (test::ipv6_loopback_available()) {
        CHECK(address.rfind("[::]:", 0) == 0);
        CHECK(int_option(sockets[0].get(), IPPROTO_IPV6, IPV6_V6ONLY) == 0);
    } else {
        MESSAGE("SKIP(kernel: no IPv6, dual stack unchecked: the wildcard fell back to IPv4 "
                << address << ")");
    }
    send_datagram("127.0.0.1:" + port_of(address), "over IPv4");
    CHECK(receive_datagram(sockets[0].get()) == "over IPv4");
}

TEST_CASE("0.0.0.0 listens dual-stack like Go") {
    CapturingLogger log;
    auto sockets = open_udp_sockets("0.0.0.0:0", 1, 0, log.logger);
    const std::string address = local_address(sockets[0].get());
    send_datagram("127.0.0.1:" + port_of(address), "v4");
    CHECK(receive_datagram(sockets[0].get()) == "v4");
    if (test::ipv6_loopback_available()) {
        send_datagram("[::1]:" + port_of(address), "v6");
        CHECK(receive_datagram(sockets[0].get()) == "v6");
    }
}

TEST_CASE("an IPv6 loopback socket binds and reports [::1]:port") {
    if (!test::ipv6_loopback_available()) {
        MESSAGE("SKIP(kernel: IPv6 loopback unavailable)");
        return;
    }
    CapturingLogger log;
    auto sockets = open_udp_sockets("[::1]:0", 1, 0, log.logger);
    const std::string address = local_address(sockets[0].get());
    CHECK(address.rfind("[::1]:", 0) == 0);
    send_datagram(address, "v6 only");
    CHECK(receive_datagram(sockets[0].get()) == "v6 only");
}

TEST_CASE("open_udp_sockets raises the receive buffer and logs what the kernel granted") {
    CapturingLogger log;
    constexpr std::size_t asked = 4194304;
    auto sockets = open_udp_sockets("127.0.0.1:0", 2, asked, log.logger);
    REQUIRE(sockets.size() == 2);
    const int granted = int_option(sockets[0].get(), SOL_SOCKET, SO_RCVBUF) / 2;
    CHECK(int_option(sockets[1].get(), SOL_SOCKET, SO_RCVBUF) / 2 == granted);
    if (::geteuid() == 0) {
        CHECK(static_cast<std::size_t>(granted) >= asked);
    } else {
        CHECK(granted > 0);
    }
    REQUIRE(log.lines->size() == 1);  // once for the whole group
    const std::string expected = "[Info] Receive buffer for UDP sockets: asked 4194304 bytes, "
                                 "kernel granted " +
                                 std::to_string(granted) + "\n";
    CHECK(log.lines->front().find(expected) != std::string::npos);
}

TEST_CASE("a receive buffer capped by net.core.rmem_max is logged with the cap and the fix") {
    // Without CAP_NET_ADMIN (an unprivileged child when the suite runs as root) SO_RCVBUFFORCE
    // is refused and SO_RCVBUF stops at rmem_max; ask for more than that.
    const std::optional<long> rmem_max = read_sysctl("net.core.rmem_max");
    REQUIRE(rmem_max.has_value());
    const long cap = *rmem_max;
    const std::size_t asked = static_cast<std::size_t>(cap) + (1U << 20);
    auto log_line = [asked] {
        CapturingLogger log;
        auto sockets = open_udp_sockets("127.0.0.1:0", 1, asked, log.logger);
        return log.lines->size() == 1 ? log.lines->front() : std::string("no single line");
    };
    std::string line;
    if (::geteuid() == 0) {
        line = xrayd::test::run_in_child([&log_line] {
            // nobody: no capabilities.
            if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
                return std::string("setuid failed");
            }
            return log_line();
        });
    } else {
        line = log_line();
    }
    CAPTURE(line);
    CHECK(line.find("[Info] Receive buffer for UDP sockets: asked " + std::to_string(asked) +
                    " bytes, kernel granted " + std::to_string(cap) +
                    " (capped by net.core.rmem_max = " + std::to_string(cap) +
                    ", since the process lacks CAP_NET_ADMIN; for bursts, raise it: sysctl -w "
                    "net.core.rmem_max=" +
                    std::to_string(asked) + ")") != std::string::npos);
}

TEST_CASE("local_address formats IPv4 and IPv6 the Go way") {
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    v4.sin_port = htons(41234);
    v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(format_socket_address(reinterpret_cast<const sockaddr*>(&v4), sizeof v4) ==
          "127.0.0.1:41234");
    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(41234);
    v6.sin6_addr = in6addr_loopback;
    CHECK(format_socket_address(reinterpret_cast<const sockaddr*>(&v6), sizeof v6) ==
          "[::1]:41234");
    CHECK(local_address(-1).empty());
}

namespace {

// SO_DETACH_REUSEPORT_BPF (Linux 5.3): succeeds only when a reuseport program is attached,
// ENOENT otherwise. The kernel wants an int-sized option value even though it ignores it.
int detach_reuseport_program(int fd) {
    const int unused = 0;
    return ::setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &unused, sizeof unused);
}

// Reads everything both group members hold until `expected` datagrams arrived (or a generous
// deadline passed); returns the count per member.
std::vector<int> receive_on_group(const std::vector<UniqueFd>& group, int expected) {
    std::vector<int> per_socket(group.size(), 0);
    int total = 0;
    while (total < expected) {
        std::vector<pollfd> p;
        for (const UniqueFd& fd : group) {
            p.push_back(pollfd{fd.get(), POLLIN, 0});
        }
        if (::poll(p.data(), p.size(), 10000) <= 0) {
            break;
        }
        for (std::size_t s = 0; s < group.size(); ++s) {
            char buffer[64];
            while (::recv(group[s].get(), buffer, sizeof buffer, MSG_DONTWAIT) > 0) {
                ++per_socket[s];
                ++total;
            }
        }
    }
    return per_socket;
}

}  // namespace

TEST_CASE("CPU steering sends every datagram handled on CPU c to socket c % group size") {
    const std::vector<int> cpus = allowed_cpus();
    CapturingLogger log;
    UdpSocketOptions options;
    options.count = 2;
    options.steer_by_cpu = true;
    auto group = open_udp_sockets("127.0.0.1:0", options, log.logger);
    REQUIRE(group.size() == 2);
    REQUIRE(log.lines->size() == 1);  // no warning: the program attached
    CHECK(log.lines->front().find("[Debug] Datagrams steered to the 2 sockets by CPU") !=
          std::string::npos);
    const std::string address = local_address(group[0].get());

    // Loopback handles a datagram on the sending CPU, so a sender pinned to CPU c sees all
    // of its datagrams, from 32 different source ports, land on socket c % 2; without the
    // program the flow hash would spread them over both.
    for (const int cpu : cpus) {
        CAPTURE(cpu);
        bool pinned = false;
        std::thread([&] {
            pinned = pin_current_thread_to_cpu(cpu).ok();
            if (pinned) {
                for (int i = 0; i < 32; ++i) {
                    send_datagram(address, "steered " + std::to_string(i));
                }
            }
        }).join();
        REQUIRE(pinned);
        const std::vector<int> per_socket = receive_on_group(group, 32);
        const auto expected = static_cast<std::size_t>(cpu % 2);
        CHECK(per_socket[expected] == 32);
        CHECK(per_socket[1 - expected] == 0);
    }
    CHECK(detach_reuseport_program(group[0].get()) == 0);
}

TEST_CASE("without CPU steering a reuseport group has no program attached") {
    CapturingLogger log;
    auto group = open_udp_sockets("127.0.0.1:0", UdpSocketOptions{2, 0, false}, log.logger);
    REQUIRE(group.size() == 2);
    CHECK(detach_reuseport_program(group[0].get()) != 0);
    CHECK(errno == ENOENT);
}

TEST_CASE("CPU steering of a single socket is a no-op") {
    CapturingLogger log;
    auto sockets = open_udp_sockets("127.0.0.1:0", UdpSocketOptions{1, 0, true}, log.logger);
    REQUIRE(sockets.size() == 1);
    CHECK(log.lines->empty());
    CHECK(int_option(sockets[0].get(), SOL_SOCKET, SO_REUSEPORT) == 0);
}
