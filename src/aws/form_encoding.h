// Form encoding private to the aws module (STS query bodies).
#pragma once

#include <string>
#include <string_view>

namespace xrayd::aws_detail {

// application/x-www-form-urlencoded value encoding (unreserved bytes kept, the rest %XX).
[[nodiscard]] std::string form_encode(std::string_view value);

}  // namespace xrayd::aws_detail
