// The sd_notify(3) datagram protocol without libsystemd, for the static release build.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string_view>

namespace xrayd {

// libsystemd has no static form, so the static build speaks systemd's documented (and stable)
// notify protocol itself: one AF_UNIX datagram to NOTIFY_SOCKET (a path, or "@name" for the
// abstract namespace). Both functions are compiled into every build so the unit tests hold
// them to the same behaviour as sd_notify()/sd_watchdog_enabled(); only the static build's
// Notifier calls them. Any thread; no state.

// Sends message to socket_path; 0 on success or -errno (-EINVAL for an unusable path).
[[nodiscard]] int notify_socket_send(std::string_view socket_path,
                                     std::string_view message) noexcept;

// The watchdog period in microseconds from WATCHDOG_USEC and WATCHDOG_PID (either may be null)
// as sd_watchdog_enabled() reads them: 0 when unset, malformed, or meant for another PID.
[[nodiscard]] std::uint64_t watchdog_usec_for(const char* usec, const char* pid,
                                              pid_t self) noexcept;

}  // namespace xrayd
