// append_json_string: a short text as a JSON string, for the few JSON bodies xrayd writes by
// hand (telemetry records, error replies). The hot-path escaper for segment documents is
// append_json_escaped in batch.h.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace xrayd {

// Appends `"<text>"` with quotes, backslashes and control characters escaped; other bytes
// (UTF-8 included) pass through.
inline void append_json_string(std::string& out, std::string_view text) {
    out += '"';
    for (const char c : text) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
            } else {
                out += c;
            }
        }
    }
    out += '"';
}

}  // namespace xrayd
