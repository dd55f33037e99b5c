// XML element lookup private to the aws module (STS replies).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace xrayd::aws_detail {

// The text of the first <tag>...</tag> inside `xml`, entities decoded; nullopt when absent.
[[nodiscard]] std::optional<std::string> xml_element(std::string_view xml, std::string_view tag);

}  // namespace xrayd::aws_detail
