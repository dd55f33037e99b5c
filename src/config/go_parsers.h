// Helpers shared by the Go-compatible text parsers and the flag parser, private to src/config.
#pragma once

#include <string>
#include <string_view>

namespace xrayd::config_detail {

// The strconv errors as the flag package words them.
inline constexpr std::string_view go_parse_error = "parse error";
inline constexpr std::string_view go_range_error = "value out of range";

// strconv.Quote for what can appear on a command line: printable ASCII and UTF-8 bytes kept,
// quote and backslash escaped, control bytes as Go escapes them. Thread-safe (pure).
[[nodiscard]] std::string go_quote(std::string_view text);

}  // namespace xrayd::config_detail
