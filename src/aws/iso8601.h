// ISO-8601 time parsing private to the aws module (credential expiries).
#pragma once

#include <optional>
#include <string_view>

#include <xrayd/common/time.h>

namespace xrayd::aws_detail {

// "2024-05-01T16:20:00Z", with optional fractional seconds and a Z or ±hh:mm offset. Years
// outside 1970-2261 are refused (system_clock's 64-bit nanoseconds cannot hold them).
[[nodiscard]] std::optional<WallClock::time_point> parse_iso8601(std::string_view text);

}  // namespace xrayd::aws_detail
