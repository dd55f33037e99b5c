// RemoteText: a string from outside the process (an X-Ray answer, a proxied request target, a
// credential endpoint's message), made safe to put in a log line.
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace xrayd {

// Wraps a remote string for formatting with fmt (`log.error("... {}", RemoteText{body})`).
// Control bytes (CR, LF, ESC, every byte below 0x20 and DEL) are written as `\xNN` and a
// backslash as `\\`, so a peer can neither forge a log line nor send terminal escapes; other
// bytes, UTF-8 included, pass unchanged. Text past `limit` bytes is cut and marked with
// `...(N more bytes)`. Non-owning: the viewed text must outlive the formatting call.
struct RemoteText {
    std::string_view text;
    std::size_t limit = 512;
};

// The escaped form as a string (what the formatter writes). Thread-safe (pure).
[[nodiscard]] std::string escape_remote_text(std::string_view text, std::size_t limit = 512);

}  // namespace xrayd

template <>
struct fmt::formatter<xrayd::RemoteText> : fmt::formatter<std::string_view> {
    template <typename Context>
    auto format(const xrayd::RemoteText& remote, Context& ctx) const {
        return fmt::formatter<std::string_view>::format(
            xrayd::escape_remote_text(remote.text, remote.limit), ctx);
    }
};
