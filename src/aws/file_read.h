// Whole-file reads private to the aws module (shared config, token and region files).
#pragma once

#include <string>

#include <xrayd/common/result.h>

namespace xrayd::aws_detail {

// The whole file, or an error text "open <path>: <strerror>" (or "read ..." when reading fails).
[[nodiscard]] Result<std::string, std::string> read_whole_file(const std::string& path);

}  // namespace xrayd::aws_detail
