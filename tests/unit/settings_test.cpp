// Tests of the settings table itself: complete rows, unique names and ranks, defaults that parse
// to Config{}'s values, the reloadable set, and every row reaching -h and --check-config.
#include <xrayd/config/settings.h>

#include <doctest/doctest.h>

#include <set>
#include <string>

#include <xrayd/config/cli_flags.h>
#include <xrayd/config/describe.h>
#include <xrayd/config/reload.h>

namespace xrayd {
namespace {

bool is_setting(const Setting& row) {
    return !row.group.empty();
}

TEST_CASE("every row has an id, and a setting a group, a reload name and its value functions") {
    CHECK(settings().size() == setting_count + action_count);
    for (const Setting& row : settings()) {
        INFO(row.id);
        CHECK_FALSE(row.id.empty());
        if (is_setting(row)) {
            CHECK((row.show != nullptr));
            CHECK((row.describe != nullptr));
            CHECK((!row.key.empty() || !row.label.empty()));
        } else {
            CHECK((row.show == nullptr));
            CHECK_FALSE(row.flag.empty());
        }
    }
}

TEST_CASE("every flag has help text and a place on the -h screen; names and ranks are unique") {
    std::set<std::string_view> flags;
    std::set<std::string_view> keys;
    std::set<int> usage_ranks;
    std::set<int> reload_ranks;
    for (const Setting& row : settings()) {
        INFO(row.id);
        if (!row.flag.empty()) {
            CHECK_FALSE(row.help.empty());
            CHECK(row.usage_rank > 0);
            CHECK(flags.insert(row.flag).second);
            if (!row.short_flag.empty()) {
                CHECK(row.short_flag.size() == 1);
                CHECK(flags.insert(row.short_flag).second);
            }
            CHECK(usage_ranks.insert(row.usage_rank).second);
            CHECK(find_setting_by_flag(row.flag) == &row);
        } else {
            CHECK(row.usage_rank == 0);
            CHECK(row.help.empty());
        }
        if (!row.key.empty()) {
            CHECK(keys.insert(row.key).second);
            CHECK(find_setting_by_key(row.key) == &row);
        }
        if (is_setting(row)) {
            CHECK(row.reload_rank > 0);
            CHECK(reload_ranks.insert(row.reload_rank).second);
        }
        // xrayd's own options are long names only; the metavar says what a value flag takes.
        const bool takes_value = row.kind != SettingKind::toggle &&
                                 row.kind != SettingKind::action && row.kind != SettingKind::help;
        if (!row.flag.empty() && row.short_flag.empty() && is_setting(row)) {
            CHECK(takes_value == !row.metavar.empty());
        }
    }
    CHECK(find_setting_by_flag("nonexistent") == nullptr);
    CHECK(find_setting_by_key("Xrayd.Nonexistent") == nullptr);
}

// The default text read the way a flag or the loader reads it, in the reload diff's spelling.
std::string parsed_default(const Setting& row) {
    std::string text(row.default_text);
    switch (row.kind) {
    case SettingKind::duration: {
        auto d = parse_go_duration(text);
        REQUIRE_MESSAGE(d.ok(), text);
        return std::to_string(
                   std::chrono::duration_cast<std::chrono::milliseconds>(d.value()).count()) +
               "ms";
    }
    case SettingKind::bytes:
    case SettingKind::count:
    case SettingKind::megabytes: {
        auto n = parse_go_int(text);
        REQUIRE_MESSAGE(n.ok(), text);
        return std::to_string(n.value());
    }
    case SettingKind::toggle: return text.empty() ? "false" : text;
    default: break;
    }
    if (row.key == "Logging.LogLevel") {
        auto level = parse_log_level(text);
        REQUIRE(level.has_value());
        return std::string(level_label(*level));
    }
    return text;
}

TEST_CASE("every setting's default text parses to the value Config{} holds") {
    const Config defaults;
    for (const Setting& row : settings()) {
        if (!is_setting(row)) {
            continue;
        }
        INFO(row.id << " default \"" << row.default_text << "\"");
        CHECK(parsed_default(row) == row.show(defaults));
    }
}

TEST_CASE("the reloadable settings are the ones a running daemon applies, and only those") {
    const std::set<std::string_view> expected{"Logging.LogLevel",
                                              "Concurrency",
                                              "Xrayd.Linger",
                                              "Xrayd.RequestTimeout",
                                              "Xrayd.RetryBudget",
                                              "Xrayd.ProxyForwardAll",
                                              "Xrayd.ReadyFailureThreshold",
                                              "Xrayd.SummaryInterval"};
    std::set<std::string_view> reloadable;
    for (const Setting& row : settings()) {
        if (row.reloadable) {
            CHECK(is_setting(row));
            reloadable.insert(row.key);
        }
        if (is_setting(row)) {
            CHECK(is_reloadable_setting(row.key.empty() ? row.label : row.key) == row.reloadable);
        }
    }
    CHECK(reloadable == expected);
}

TEST_CASE("every flag is a line of -h and every cfg.yaml key a line of --check-config") {
    const std::string usage = usage_text();
    const std::string described = describe_config(Config{}, Environment{});
    for (const Setting& row : settings()) {
        INFO(row.id);
        if (!row.flag.empty()) {
            const std::string line =
                row.short_flag.empty()
                    ? "\t--" + std::string(row.flag)
                    : "\t-" + std::string(row.short_flag) + "\t--" + std::string(row.flag) + "\t";
            CHECK(usage.find(line) != std::string::npos);
            CHECK(usage.find(usage_description(row) + "\n") != std::string::npos);
        }
        if (!row.key.empty()) {
            const std::size_t dot = row.key.find('.');
            const std::string name(dot == std::string_view::npos ? row.key
                                                                 : row.key.substr(dot + 1));
            CHECK(described.find(name + ": " + row.describe(Config{}, row)) != std::string::npos);
        }
    }
}

TEST_CASE("xrayd's help lines get their default and key from the row") {
    const Setting* linger = find_setting_by_flag("linger");
    REQUIRE(linger != nullptr);
    CHECK(usage_description(*linger) ==
          "Longest wait of a segment before its batch is sent; default 100ms (Xrayd.Linger).");
    const Setting* concurrency = find_setting_by_flag("concurrency");
    REQUIRE(concurrency != nullptr);
    CHECK(usage_description(*concurrency) ==
          "PutTraceSegments requests in flight; default 8 (cfg.yaml Concurrency).");
    const Setting* steer = find_setting_by_flag("steer-by-cpu");
    REQUIRE(steer != nullptr);  // a toggle shows no default
    CHECK(usage_description(*steer) ==
          "Steer each datagram to the receiver of the CPU it arrived on (Xrayd.SteerByCpu).");
    const Setting* spool_dir = find_setting_by_flag("spool-dir");
    REQUIRE(spool_dir != nullptr);  // an empty default is not shown
    CHECK(usage_description(*spool_dir) ==
          "Directory of the disk spool (must exist), or empty for none (Xrayd.SpoolDir).");
    const Setting* spool_sync = find_setting_by_flag("spool-sync");
    REQUIRE(spool_sync != nullptr);
    CHECK(usage_description(*spool_sync) ==
          "When the spool file is fsynced: none, interval (every second) or always; default "
          "interval (Xrayd.SpoolSync).");
    const Setting* region = find_setting_by_flag("n");
    REQUIRE(region != nullptr);  // the Go daemon's rows are verbatim
    CHECK(usage_description(*region) == region->help);
}

}  // namespace
}  // namespace xrayd
