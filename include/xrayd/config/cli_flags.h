// Command-line parsing with the Go `flag` package's rules, for the flags of the settings table
// (the Go daemon's thirteen and xrayd's own long options), plus the Go text parsers (int, bool,
// duration) they rely on.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <xrayd/common/result.h>
#include <xrayd/config/settings.h>

namespace xrayd {

namespace config_detail {
// The type a flag of each kind is parsed into.
template <SettingKind kind>
struct FlagValue;
template <>
struct FlagValue<SettingKind::text> {
    using type = std::optional<std::string>;
};
template <>
struct FlagValue<SettingKind::toggle> {
    using type = std::optional<bool>;
};
template <>
struct FlagValue<SettingKind::megabytes> {
    using type = std::optional<std::int64_t>;
};
template <>
struct FlagValue<SettingKind::duration> {
    using type = std::optional<std::chrono::milliseconds>;
};
template <>
struct FlagValue<SettingKind::bytes> {
    using type = std::optional<std::uint64_t>;
};
template <>
struct FlagValue<SettingKind::count> {
    using type = std::optional<int>;
};
template <>
struct FlagValue<SettingKind::action> {
    using type = bool;
};
template <>
struct FlagValue<SettingKind::help> {
    using type = bool;
};
}  // namespace config_detail

// What the command line said: one field per row of the settings table (settings.h), named by
// its id (`region`, `udp_address`, `linger`, ...), typed by its kind. A setting field is set only
// when its flag appeared (the last occurrence wins), so the loader can apply flag > file >
// environment > default; an explicit empty string (`-r ""`) is "set"; a setting without a flag
// (NoVerifySSL) stays empty. Values are syntax-checked here; cross-field checks are the
// loader's. Actions (version, help: parsing stopped there, check_config, health_check) are bools.
struct CliFlags {
#define XRAYD_CLI_FIELD(id, group, member, kind, ...) \
    config_detail::FlagValue<SettingKind::kind>::type id{};
#define XRAYD_CLI_ACTION(id, kind, ...) config_detail::FlagValue<SettingKind::kind>::type id{};
    XRAYD_SETTINGS(XRAYD_CLI_FIELD)
    XRAYD_ACTIONS(XRAYD_CLI_ACTION)
#undef XRAYD_CLI_FIELD
#undef XRAYD_CLI_ACTION

    // Arguments after the first non-flag or `--`: ignored, as the Go daemon ignores them.
    std::vector<std::string> ignored;
};

// A parse failure, with the Go flag package's text (no trailing newline), e.g.
// `flag provided but not defined: -x`, `invalid value "abc" for flag -m: parse error`,
// `flag needs an argument: -n`, `bad flag syntax: ---x`. The caller prints it on stderr, then
// the usage, and exits 2.
struct FlagError {
    std::string message;
};

// Parses `args` (without argv[0]) exactly as Go's flag.FlagSet.Parse does: `-x`, `--x`, `-long`,
// `--long`; `-f v` and `-f=v`; bools only as `-o` or `-o=<Go bool>`; last repeat wins; stops at
// the first non-flag argument (including a lone `-`) or after `--`. `-h`/`-help` (any dash count,
// with or without `=value`) stops parsing and sets `help`. Thread-safe (pure function).
[[nodiscard]] Result<CliFlags, FlagError> parse_cli_flags(std::span<const std::string> args);

// The usage screen, generated from the settings table: the Go daemon's `-h` text byte for byte
// (spec §1.4), a blank line, then xrayd's own options. Ends with '\n'. docs/gen_manpage.py
// turns it into the man page's OPTIONS.
[[nodiscard]] std::string usage_text();

// Go strconv.ParseInt(text, 0, 64): sign, `0x`/`0o`/`0b`/leading-`0` prefixes, `_` between
// digits. Errors are the flag package's words: "parse error" or "value out of range".
[[nodiscard]] Result<std::int64_t, std::string> parse_go_int(std::string_view text);

// Go strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False. nullopt otherwise.
[[nodiscard]] std::optional<bool> parse_go_bool(std::string_view text) noexcept;

// Go time.ParseDuration (`100ms`, `1m30s`, `1.5h`, `-2s`, units ns us µs μs ms s m h; a bare
// `0` is accepted as Go does). A number without a unit is refused with a message naming the
// fix ("use a unit, e.g. 100ms"). Errors name the offending text.
[[nodiscard]] Result<std::chrono::nanoseconds, std::string> parse_go_duration(
    std::string_view text);

}  // namespace xrayd
