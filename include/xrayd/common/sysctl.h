// read_sysctl: a kernel setting read from /proc/sys, for the start-up messages that explain
// what the kernel refused (io_uring disabled, a receive buffer capped).
#pragma once

#include <optional>
#include <string_view>

namespace xrayd {

// The number in /proc/sys/<name, dots as slashes> ("net.core.rmem_max"); nullopt when the file
// is missing (an older kernel, no /proc/sys in a container) or holds no number. Start-up only:
// it opens a file.
[[nodiscard]] std::optional<long> read_sysctl(std::string_view name);

}  // namespace xrayd
