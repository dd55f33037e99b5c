// Go's strconv.ParseInt / ParseBool and time.ParseDuration, for flags and configuration values.
#include "go_parsers.h"

#include <fmt/format.h>

#include <cstdint>
#include <limits>

#include <xrayd/config/cli_flags.h>

namespace xrayd {

namespace config_detail {

std::string go_quote(std::string_view text) {
    std::string out = "\"";
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\a': out += "\\a"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\v': out += "\\v"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                out += fmt::format("\\x{:02x}", c);
            } else {
                out.push_back(ch);
            }
        }
    }
    out.push_back('"');
    return out;
}

}  // namespace config_detail

namespace {

using config_detail::go_quote;
constexpr std::string_view parse_error = config_detail::go_parse_error;
constexpr std::string_view range_error = config_detail::go_range_error;

constexpr char lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Go's strconv.underscoreOK: `_` only between digits, or between a base prefix and a digit.
bool underscore_ok(std::string_view s) noexcept {
    char saw = '^';
    std::size_t i = 0;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
        s.remove_prefix(1);
    }
    bool hex = false;
    if (s.size() >= 2 && s[0] == '0' &&
        (lower(s[1]) == 'b' || lower(s[1]) == 'o' || lower(s[1]) == 'x')) {
        i = 2;
        saw = '0';
        hex = lower(s[1]) == 'x';
    }
    for (; i < s.size(); ++i) {
        const char c = s[i];
        if ((c >= '0' && c <= '9') || (hex && lower(c) >= 'a' && lower(c) <= 'f')) {
            saw = '0';
            continue;
        }
        if (c == '_') {
            if (saw != '0') {
                return false;
            }
            saw = '_';
            continue;
        }
        if (saw == '_') {
            return false;
        }
        saw = '!';
    }
    return saw != '_';
}

// strconv.ParseUint(s, 0, 64) without the sign; errors as the flag package words them.
Result<std::uint64_t, std::string> parse_go_uint(std::string_view s0) {
    if (s0.empty()) {
        return fail(std::string(parse_error));
    }
    std::string_view s = s0;
    unsigned base = 10;
    if (s[0] == '0') {
        if (s.size() >= 3 && lower(s[1]) == 'b') {
            base = 2;
            s.remove_prefix(2);
        } else if (s.size() >= 3 && lower(s[1]) == 'o') {
            base = 8;
            s.remove_prefix(2);
        } else if (s.size() >= 3 && lower(s[1]) == 'x') {
            base = 16;
            s.remove_prefix(2);
        } else {
            base = 8;
            s.remove_prefix(1);
        }
    }
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    const std::uint64_t cutoff = max / base + 1;
    std::uint64_t n = 0;
    bool underscores = false;
    for (const char c : s) {
        unsigned digit = 0;
        if (c == '_') {
            underscores = true;
            continue;
        }
        if (c >= '0' && c <= '9') {
            digit = static_cast<unsigned>(c - '0');
        } else if (lower(c) >= 'a' && lower(c) <= 'z') {
            digit = static_cast<unsigned>(lower(c) - 'a' + 10);
        } else {
            return fail(std::string(parse_error));
        }
        if (digit >= base) {
            return fail(std::string(parse_error));
        }
        if (n >= cutoff) {
            return fail(std::string(range_error));
        }
        n *= base;
        const std::uint64_t next = n + digit;
        if (next < n) {
            return fail(std::string(range_error));
        }
        n = next;
    }
    if (underscores && !underscore_ok(s0)) {
        return fail(std::string(parse_error));
    }
    return n;
}

}  // namespace

Result<std::int64_t, std::string> parse_go_int(std::string_view text) {
    std::string_view s = text;
    bool negative = false;
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
        negative = s[0] == '-';
        s.remove_prefix(1);
    }
    // Underscore placement is checked on the whole text, sign included, as Go does.
    auto magnitude = parse_go_uint(s);
    if (!magnitude) {
        return fail(magnitude.error());
    }
    if (s.find('_') != std::string_view::npos && !underscore_ok(text)) {
        return fail(std::string(parse_error));
    }
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    const std::uint64_t m = magnitude.value();
    if (!negative) {
        if (m > max) {
            return fail(std::string(range_error));
        }
        return static_cast<std::int64_t>(m);
    }
    if (m > max + 1) {
        return fail(std::string(range_error));
    }
    if (m == max + 1) {
        return std::numeric_limits<std::int64_t>::min();
    }
    return -static_cast<std::int64_t>(m);
}

std::optional<bool> parse_go_bool(std::string_view text) noexcept {
    for (std::string_view t : {"1", "t", "T", "TRUE", "true", "True"}) {
        if (text == t) {
            return true;
        }
    }
    for (std::string_view f : {"0", "f", "F", "FALSE", "false", "False"}) {
        if (text == f) {
            return false;
        }
    }
    return std::nullopt;
}

Result<std::chrono::nanoseconds, std::string> parse_go_duration(std::string_view text) {
    const auto invalid = [&] { return fail(fmt::format("invalid duration {}", go_quote(text))); };
    std::string_view s = text;
    bool negative = false;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
        negative = s[0] == '-';
        s.remove_prefix(1);
    }
    if (s == "0") {
        return std::chrono::nanoseconds{0};
    }
    if (s.empty()) {
        return invalid();
    }
    constexpr std::uint64_t limit = std::uint64_t{1} << 63;
    std::uint64_t total = 0;
    while (!s.empty()) {
        if (!(s[0] == '.' || (s[0] >= '0' && s[0] <= '9'))) {
            return invalid();
        }
        // Integer part.
        std::uint64_t whole = 0;
        std::size_t i = 0;
        for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
            if (whole > (limit - 1) / 10) {
                return invalid();
            }
            whole = whole * 10 + static_cast<std::uint64_t>(s[i] - '0');
            if (whole > limit) {
                return invalid();
            }
        }
        const bool have_whole = i > 0;
        s.remove_prefix(i);
        // Fraction: digits beyond what fits are dropped, as Go's leadingFraction does.
        std::uint64_t fraction = 0;
        double scale = 1.0;
        bool have_fraction = false;
        if (!s.empty() && s[0] == '.') {
            s.remove_prefix(1);
            bool overflow = false;
            std::size_t j = 0;
            for (; j < s.size() && s[j] >= '0' && s[j] <= '9'; ++j) {
                if (overflow) {
                    continue;
                }
                if (fraction > (std::numeric_limits<std::int64_t>::max() - 9) / 10) {
                    overflow = true;
                    continue;
                }
                fraction = fraction * 10 + static_cast<std::uint64_t>(s[j] - '0');
                scale *= 10;
            }
            have_fraction = j > 0;
            s.remove_prefix(j);
        }
        if (!have_whole && !have_fraction) {
            return invalid();
        }
        std::size_t u = 0;
        while (u < s.size() && s[u] != '.' && !(s[u] >= '0' && s[u] <= '9')) {
            ++u;
        }
        if (u == 0) {
            return fail(fmt::format("missing unit in duration {} (use a unit, e.g. 100ms)",
                                    go_quote(text)));
        }
        const std::string_view unit_name = s.substr(0, u);
        s.remove_prefix(u);
        std::uint64_t unit = 0;
        if (unit_name == "ns") {
            unit = 1;
        } else if (unit_name == "us" || unit_name == "\xc2\xb5s" || unit_name == "\xce\xbcs") {
            unit = 1'000;
        } else if (unit_name == "ms") {
            unit = 1'000'000;
        } else if (unit_name == "s") {
            unit = 1'000'000'000;
        } else if (unit_name == "m") {
            unit = 60'000'000'000;
        } else if (unit_name == "h") {
            unit = 3'600'000'000'000;
        } else {
            return fail(
                fmt::format("unknown unit {} in duration {}", go_quote(unit_name), go_quote(text)));
        }
        if (whole > limit / unit) {
            return invalid();
        }
        std::uint64_t value = whole * unit;
        if (fraction > 0) {
            value += static_cast<std::uint64_t>(static_cast<double>(fraction) *
                                                (static_cast<double>(unit) / scale));
            if (value > limit) {
                return invalid();
            }
        }
        total += value;
        if (total > limit) {
            return invalid();
        }
    }
    if (negative) {
        if (total == limit) {
            return std::chrono::nanoseconds{std::numeric_limits<std::int64_t>::min()};
        }
        return std::chrono::nanoseconds{-static_cast<std::int64_t>(total)};
    }
    if (total > limit - 1) {
        return invalid();
    }
    return std::chrono::nanoseconds{static_cast<std::int64_t>(total)};
}

}  // namespace xrayd
