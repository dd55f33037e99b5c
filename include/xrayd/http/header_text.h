// Text helpers for HTTP header names and values, shared by the daemon's HTTP clients (the
// exchange's header capture) and servers (the connection gate's head check, the proxy's header
// rules): ASCII case-insensitive comparison and the trimming of optional whitespace.
#pragma once

#include <strings.h>

#include <string_view>

namespace xrayd {

// Case-insensitive equality for header names, tokens and schemes: ASCII letters only (the
// daemon never sets a locale, so strncasecmp compares as in the C locale).
[[nodiscard]] inline bool ascii_iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

[[nodiscard]] inline bool ascii_istarts_with(std::string_view text,
                                             std::string_view prefix) noexcept {
    return text.size() >= prefix.size() && ascii_iequals(text.substr(0, prefix.size()), prefix);
}

// `s` without leading and trailing SP and HTAB (RFC 9110's OWS around a field value).
[[nodiscard]] inline std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// A piece of a header line as libcurl hands the line over: OWS trimmed, and the line's CR LF.
[[nodiscard]] inline std::string_view trim_header_text(std::string_view s) noexcept {
    while (!s.empty() && (s.back() == '\r' || s.back() == '\n')) {
        s.remove_suffix(1);
    }
    return trim_ows(s);
}

}  // namespace xrayd
