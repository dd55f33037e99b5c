// go_time_length: recognising the Go daemon's log-line time prefix in tests.
#pragma once

#include <cstddef>
#include <string_view>

namespace xrayd::test {

// Length of a Go-layout local time `2006-01-02T15:04:05Z07:00` at the start of `s`, 0 if none.
// Hand-written: <regex> trips g++ 12's -Wmaybe-uninitialized in sanitizer builds.
inline std::size_t go_time_length(std::string_view s) {
    constexpr std::string_view shape = "dddd-dd-ddTdd:dd:dd";
    if (s.size() < shape.size() + 1) {
        return 0;
    }
    for (std::size_t i = 0; i < shape.size(); ++i) {
        const bool ok = shape[i] == 'd' ? (s[i] >= '0' && s[i] <= '9') : s[i] == shape[i];
        if (!ok) {
            return 0;
        }
    }
    std::string_view zone = s.substr(shape.size());
    if (zone[0] == 'Z') {
        return shape.size() + 1;
    }
    constexpr std::string_view offset = "+dd:dd";
    if (zone.size() < offset.size() || (zone[0] != '+' && zone[0] != '-')) {
        return 0;
    }
    for (std::size_t i = 1; i < offset.size(); ++i) {
        const bool ok =
            offset[i] == 'd' ? (zone[i] >= '0' && zone[i] <= '9') : zone[i] == offset[i];
        if (!ok) {
            return 0;
        }
    }
    return shape.size() + offset.size();
}

}  // namespace xrayd::test
