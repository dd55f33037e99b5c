// Go flag-package parsing of the daemon's command line, driven by the settings table.
#include <xrayd/config/cli_flags.h>

#include <fmt/format.h>

#include <array>
#include <limits>

#include "go_parsers.h"

namespace xrayd {
namespace {

using config_detail::go_quote;
constexpr std::string_view parse_error = config_detail::go_parse_error;
constexpr std::string_view range_error = config_detail::go_range_error;

// One parser per CliFlags field type; `row` gives the minimum. Each returns the error text of
// `invalid value ...: <text>`, or nullopt after storing the value.
std::optional<std::string> parse_into(std::optional<std::string>& field, const Setting& /*row*/,
                                      std::string_view v) {
    field = std::string(v);
    return std::nullopt;
}

std::optional<std::string> parse_into(std::optional<bool>& field, const Setting& /*row*/,
                                      std::string_view v) {
    auto b = parse_go_bool(v);
    if (!b) {
        return std::string(parse_error);
    }
    field = *b;
    return std::nullopt;
}

std::optional<std::string> parse_into(bool& field, const Setting& row, std::string_view v) {
    std::optional<bool> b;
    auto err = parse_into(b, row, v);
    if (!err) {
        field = *b;
    }
    return err;
}

std::optional<std::string> parse_into(std::optional<std::int64_t>& field, const Setting& /*row*/,
                                      std::string_view v) {
    auto n = parse_go_int(v);
    if (!n) {
        return n.error();
    }
    field = n.value();
    return std::nullopt;
}

std::optional<std::string> parse_into(std::optional<std::chrono::milliseconds>& field,
                                      const Setting& row, std::string_view v) {
    auto d = parse_go_duration(v);
    if (!d) {
        return d.error();
    }
    if (d.value().count() < 0) {
        return std::string("must not be negative");
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d.value());
    if (ms.count() < row.min) {
        return fmt::format("must be at least {}ms", row.min);
    }
    field = ms;
    return std::nullopt;
}

std::optional<std::string> parse_into(std::optional<std::uint64_t>& field, const Setting& /*row*/,
                                      std::string_view v) {
    auto n = parse_go_int(v);
    if (!n) {
        return n.error();
    }
    if (n.value() <= 0) {
        return std::string("must be a positive number of bytes");
    }
    field = static_cast<std::uint64_t>(n.value());
    return std::nullopt;
}

std::optional<std::string> parse_into(std::optional<int>& field, const Setting& row,
                                      std::string_view v) {
    auto n = parse_go_int(v);
    if (!n) {
        return n.error();
    }
    if (n.value() > std::numeric_limits<int>::max() ||
        n.value() < std::numeric_limits<int>::min()) {
        return std::string(range_error);
    }
    if (n.value() < row.min) {
        return fmt::format("must be at least {}", row.min);
    }
    field = static_cast<int>(n.value());
    return std::nullopt;
}

using Setter = std::optional<std::string> (*)(CliFlags&, const Setting&, std::string_view);

// Index-aligned with settings(): setter i stores row i's flag.
#define XRAYD_FLAG_SETTER(id, ...) \
    [](CliFlags& f, const Setting& row, std::string_view v) { return parse_into(f.id, row, v); },
const std::array<Setter, setting_count + action_count> setters{
    {XRAYD_SETTINGS(XRAYD_FLAG_SETTER) XRAYD_ACTIONS(XRAYD_FLAG_SETTER)}};
#undef XRAYD_FLAG_SETTER

bool is_boolean(SettingKind kind) noexcept {
    return kind == SettingKind::toggle || kind == SettingKind::action;
}

}  // namespace

Result<CliFlags, FlagError> parse_cli_flags(std::span<const std::string> args) {
    CliFlags flags;
    std::size_t next = 0;
    const auto failf = [](std::string message) { return fail(FlagError{std::move(message)}); };
    while (next < args.size()) {
        const std::string_view s = args[next];
        if (s.size() < 2 || s[0] != '-') {
            break;  // first non-flag argument (a lone "-" included)
        }
        std::size_t dashes = 1;
        if (s[1] == '-') {
            dashes = 2;
            if (s.size() == 2) {
                ++next;  // "--" ends the flags and is consumed
                break;
            }
        }
        std::string_view name = s.substr(dashes);
        if (name.empty() || name[0] == '-' || name[0] == '=') {
            return failf(fmt::format("bad flag syntax: {}", s));
        }
        ++next;
        bool has_value = false;
        std::string_view value;
        if (const auto eq = name.find('=', 1); eq != std::string_view::npos) {
            value = name.substr(eq + 1);
            has_value = true;
            name = name.substr(0, eq);
        }
        const Setting* def = find_setting_by_flag(name);
        if (def != nullptr && def->kind == SettingKind::help) {
            flags.help = true;  // Go's flag package: -h and -help, whatever their value
            break;
        }
        if (def == nullptr) {
            return failf(fmt::format("flag provided but not defined: -{}", name));
        }
        const Setter set = setters[static_cast<std::size_t>(def - settings().data())];
        if (is_boolean(def->kind)) {
            if (auto err = set(flags, *def, has_value ? value : std::string_view("true"))) {
                return failf(fmt::format("invalid boolean value {} for -{}: {}", go_quote(value),
                                         name, *err));
            }
            continue;
        }
        if (!has_value && next < args.size()) {
            value = args[next];
            has_value = true;
            ++next;
        }
        if (!has_value) {
            return failf(fmt::format("flag needs an argument: -{}", name));
        }
        if (auto err = set(flags, *def, value)) {
            return failf(
                fmt::format("invalid value {} for flag -{}: {}", go_quote(value), name, *err));
        }
    }
    for (; next < args.size(); ++next) {
        flags.ignored.push_back(args[next]);
    }
    return flags;
}

}  // namespace xrayd
