// The settings table materialised from XRAYD_SETTINGS, and the checks that keep Config and the
// table the same list.
#include <xrayd/config/settings.h>

#include <array>

#include <fmt/format.h>

#include "setting_values.h"

namespace xrayd {
namespace {

using config_detail::describe_value;
using config_detail::show_value;

#define XRAYD_SETTING_ROW(id_, group_, member_, kind_, ...)                       \
    Setting{.id = #id_,                                                           \
            .group = #group_,                                                     \
            .kind = SettingKind::kind_,                                           \
            __VA_ARGS__,                                                          \
            .show = [](const Config& c) { return show_value(c.group_.member_); }, \
            .describe = [](const Config& c,                                       \
                           const Setting& row) { return describe_value(c.group_.member_, row); }},
#define XRAYD_ACTION_ROW(id_, kind_, ...) \
    Setting{.id = #id_, .kind = SettingKind::kind_, __VA_ARGS__},

const std::array<Setting, setting_count + action_count> table{
    {XRAYD_SETTINGS(XRAYD_SETTING_ROW) XRAYD_ACTIONS(XRAYD_ACTION_ROW)}};

#undef XRAYD_SETTING_ROW
#undef XRAYD_ACTION_ROW

// ---- Every Config member is a row, and every row a member --------------------------------

// Converts to any member type: T{AnyMember{}...} compiles for as many as T has members.
struct AnyMember {
    template <typename T>
    constexpr operator T() const noexcept;  // NOLINT(google-explicit-constructor): unevaluated
};

template <typename T, typename... Seen>
constexpr std::size_t member_count() {
    if constexpr (requires { T{Seen{}..., AnyMember{}}; }) {
        return member_count<T, Seen..., AnyMember>();
    } else {
        return sizeof...(Seen);
    }
}

#define XRAYD_SETTING_GROUP(id_, group_, ...) std::string_view(#group_),
constexpr std::array<std::string_view, setting_count> row_groups{
    XRAYD_SETTINGS(XRAYD_SETTING_GROUP)};
#undef XRAYD_SETTING_GROUP

constexpr std::size_t rows_in(std::string_view group) {
    std::size_t n = 0;
    for (std::string_view g : row_groups) {
        n += g == group ? 1 : 0;
    }
    return n;
}

// A failure here: a Config member without a row in XRAYD_SETTINGS, or the reverse.
static_assert(member_count<AwsConfig>() == rows_in("aws"));
static_assert(member_count<NetConfig>() == rows_in("net"));
static_assert(member_count<BatchConfig>() == rows_in("batch"));
static_assert(member_count<QueueConfig>() == rows_in("queue"));
static_assert(member_count<spool::SpoolConfig>() == rows_in("spool"));
static_assert(member_count<UploadConfig>() == rows_in("upload"));
// connect_timeout, total_timeout and user_agent are each client's own, not settings.
static_assert(member_count<TransportOptions>() == rows_in("transport") + 3);
static_assert(member_count<ProxyConfig>() == rows_in("proxy"));
static_assert(member_count<OtlpConfig>() == rows_in("otlp"));
static_assert(member_count<AdminConfig>() == rows_in("admin"));
static_assert(member_count<LogConfig>() == rows_in("log"));
static_assert(member_count<DaemonConfig>() == rows_in("daemon"));
// Config holds the twelve groups above and nothing else.
static_assert(member_count<Config>() == 12);

}  // namespace

std::span<const Setting> settings() noexcept {
    return table;
}

const Setting* find_setting_by_flag(std::string_view name) noexcept {
    for (const Setting& row : table) {
        if (!row.flag.empty() && (name == row.flag || name == row.short_flag)) {
            return &row;
        }
    }
    return nullptr;
}

const Setting* find_setting_by_key(std::string_view key) noexcept {
    for (const Setting& row : table) {
        if (!row.key.empty() && row.key == key) {
            return &row;
        }
    }
    return nullptr;
}

std::string usage_description(const Setting& row) {
    if (!row.short_flag.empty() || row.group.empty()) {
        return std::string(row.help);
    }
    std::string text(row.help);
    if (!row.default_text.empty() && row.kind != SettingKind::toggle) {
        text += fmt::format("; default {}", row.default_text);
    }
    if (row.key.starts_with("Xrayd.")) {
        text += fmt::format(" ({})", row.key);
    } else if (!row.key.empty()) {
        text += fmt::format(" (cfg.yaml {})", row.key);
    }
    text.push_back('.');
    return text;
}

}  // namespace xrayd
