// Setting values as reload diffs and --check-config spell them.
#include "setting_values.h"

#include <fmt/format.h>

#include <xrayd/config/describe.h>

namespace xrayd::config_detail {
namespace {

// The cfg.yaml spelling of a level (parse_log_level's input).
std::string_view level_name(LogLevel level) {
    switch (level) {
    case LogLevel::trace: return "dev";
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error:
    case LogLevel::critical: return "error";
    }
    return "info";
}

}  // namespace

std::string show_value(const std::string& v) {
    return v;
}
std::string show_value(bool v) {
    return v ? "true" : "false";
}
std::string show_value(std::int64_t v) {
    return std::to_string(v);
}
std::string show_value(std::uint64_t v) {
    return std::to_string(v);
}
std::string show_value(int v) {
    return std::to_string(v);
}
std::string show_value(std::chrono::milliseconds v) {
    return fmt::format("{}ms", v.count());
}
std::string show_value(LogLevel v) {
    return std::string(level_label(v));
}
std::string show_value(IoBackend v) {
    return std::string(to_string(v));
}
std::string show_value(Backpressure v) {
    return std::string(to_string(v));
}
std::string show_value(spool::SpoolMode v) {
    return std::string(spool::to_string(v));
}
std::string show_value(spool::SpoolSync v) {
    return std::string(spool::to_string(v));
}

std::string describe_value(const std::string& v, const Setting& row) {
    return yaml_quoted(row.redact_url ? redact_url_password(v) : v);
}

std::string describe_value(LogLevel v, const Setting& /*row*/) {
    return yaml_quoted(level_name(v));
}

std::string yaml_quoted(std::string_view text) {
    std::string out = "\"";
    for (const char ch : text) {
        if (ch == '"' || ch == '\\') {
            out.push_back('\\');
            out.push_back(ch);
        } else if (static_cast<unsigned char>(ch) < 0x20) {
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(ch));
        } else {
            out.push_back(ch);
        }
    }
    out.push_back('"');
    return out;
}

}  // namespace xrayd::config_detail
