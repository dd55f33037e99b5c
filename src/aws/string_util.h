// ASCII string helpers private to the aws module.
#pragma once

#include <string>
#include <string_view>

namespace xrayd::aws_detail {

// Lower-cased copy (ASCII only).
[[nodiscard]] std::string to_lower(std::string_view s);

// Leading and trailing whitespace (space, tab, CR, LF) removed.
[[nodiscard]] std::string_view trim(std::string_view s) noexcept;

}  // namespace xrayd::aws_detail
