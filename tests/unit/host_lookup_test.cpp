// Tests of lookup_host_addresses() (getaddrinfo, or c-ares in the static build) on this host.
#include <xrayd/common/host_lookup.h>

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace xrayd {
namespace {

TEST_CASE("an IPv4 literal is its own address") {
    auto found = lookup_host_addresses("127.0.0.1", SOCK_DGRAM);
    REQUIRE(found.ok());
    REQUIRE_FALSE(found.value().empty());
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(found.value().front());
    CHECK(v4.sin_family == AF_INET);
    CHECK(v4.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
}

TEST_CASE("an IPv6 literal is its own address") {
    auto found = lookup_host_addresses("::1", SOCK_STREAM);
    REQUIRE(found.ok());
    REQUIRE_FALSE(found.value().empty());
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(found.value().front());
    CHECK(v6.sin6_family == AF_INET6);
    CHECK(IN6_IS_ADDR_LOOPBACK(&v6.sin6_addr));
}

TEST_CASE("localhost comes from /etc/hosts and is a loopback address") {
    auto found = lookup_host_addresses("localhost", SOCK_DGRAM);
    REQUIRE(found.ok());
    REQUIRE_FALSE(found.value().empty());
    for (const sockaddr_storage& a : found.value()) {
        if (a.ss_family == AF_INET) {
            const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
            CHECK((ntohl(v4.sin_addr.s_addr) >> 24) == 127);
        } else {
            REQUIRE(a.ss_family == AF_INET6);
            CHECK(IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr));
        }
    }
}

TEST_CASE("a name under .invalid is no such host, not another error") {
    // RFC 6761: resolvers answer NXDOMAIN for .invalid without asking anyone upstream; with
    // no DNS reachable the lookup may instead fail as a system or other error, never succeed.
    auto found = lookup_host_addresses("xrayd-test.invalid", SOCK_DGRAM);
    REQUIRE_FALSE(found.ok());
    CHECK_FALSE(found.error().text.empty());
}

}  // namespace
}  // namespace xrayd
