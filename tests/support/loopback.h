// Probes of what this machine's loopback offers, for tests that skip what it lacks.
#pragma once

namespace xrayd::test {

// True when a UDP socket can bind [::1] (IPv6 can be disabled on a host or in a container).
[[nodiscard]] bool ipv6_loopback_available() noexcept;

}  // namespace xrayd::test
