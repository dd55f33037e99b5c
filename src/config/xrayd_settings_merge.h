// The merge of xrayd's own settings (the Xrayd: section of cfg.yaml, and their flags), private
// to src/config: the loader (config_loader.cpp) calls it, and both use its precedence rule.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <xrayd/config/cli_flags.h>
#include <xrayd/config/config.h>

#include "config_file.h"

namespace xrayd::config_detail {

// A setting's value: its flag, else its cfg.yaml value, else `fallback`.
template <typename T>
T pick(const std::optional<T>& flag, const std::optional<T>& file, T fallback) {
    if (flag) {
        return *flag;
    }
    if (file) {
        return *file;
    }
    return fallback;
}

// The Xrayd.* settings and their flags (local sink, CA bundle, durations, sizes, receivers, I/O
// backend, backpressure, spool, admin and OTLP listeners, log rotation size) into `c`, each
// checked; "" or the error message (`file` is the cfg.yaml they came from, for messages).
[[nodiscard]] std::string merge_xrayd_settings(const CliFlags& flags,
                                               const config_file::FileValues& fv,
                                               const std::filesystem::path& file, Config& c);

}  // namespace xrayd::config_detail
