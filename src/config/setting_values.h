// How a setting's value is spelled in a reload diff and in --check-config, private to
// src/config: one overload per Config member type.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <xrayd/config/settings.h>

namespace xrayd::config_detail {

// Reload diff spelling: text as is, durations "<n>ms", levels as the logger names them.
[[nodiscard]] std::string show_value(const std::string& v);
[[nodiscard]] std::string show_value(bool v);
[[nodiscard]] std::string show_value(std::int64_t v);
[[nodiscard]] std::string show_value(std::uint64_t v);
[[nodiscard]] std::string show_value(int v);
[[nodiscard]] std::string show_value(std::chrono::milliseconds v);
[[nodiscard]] std::string show_value(LogLevel v);
[[nodiscard]] std::string show_value(IoBackend v);
[[nodiscard]] std::string show_value(Backpressure v);
[[nodiscard]] std::string show_value(spool::SpoolMode v);
[[nodiscard]] std::string show_value(spool::SpoolSync v);

// --check-config spelling (YAML): text double-quoted (URL password hidden when
// row.redact_url), levels by their cfg.yaml name, quoted.
[[nodiscard]] std::string describe_value(const std::string& v, const Setting& row);
[[nodiscard]] std::string describe_value(LogLevel v, const Setting& row);
template <typename T>
[[nodiscard]] std::string describe_value(const T& v, const Setting& /*row*/) {
    return show_value(v);
}

// YAML double-quoted scalar.
[[nodiscard]] std::string yaml_quoted(std::string_view text);

}  // namespace xrayd::config_detail
