// Go flag-package parsing of the daemon's command line: the flag table and parse_cli_flags.
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

using Setter = std::optional<std::string> (*)(CliFlags&, std::string_view);

enum class FlagKind { boolean, value };

struct FlagDef {
    std::string_view long_name;
    std::string_view short_name;  // empty for xrayd's own options
    FlagKind kind;
    Setter set;  // returns the error text of `invalid value ...: <text>`
};

std::optional<std::string> set_string(std::optional<std::string>& field, std::string_view v) {
    field = std::string(v);
    return std::nullopt;
}

std::optional<std::string> set_bool(std::optional<bool>& field, std::string_view v) {
    auto b = parse_go_bool(v);
    if (!b) {
        return std::string(parse_error);
    }
    field = *b;
    return std::nullopt;
}

std::optional<std::string> set_duration(std::optional<std::chrono::milliseconds>& field,
                                        std::string_view v) {
    auto d = parse_go_duration(v);
    if (!d) {
        return d.error();
    }
    if (d.value().count() < 0) {
        return std::string("must not be negative");
    }
    field = std::chrono::duration_cast<std::chrono::milliseconds>(d.value());
    return std::nullopt;
}

std::optional<std::string> set_bytes(std::optional<std::uint64_t>& field, std::string_view v) {
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

std::optional<std::string> set_count(std::optional<int>& field, std::string_view v, int min) {
    auto n = parse_go_int(v);
    if (!n) {
        return n.error();
    }
    if (n.value() > std::numeric_limits<int>::max() ||
        n.value() < std::numeric_limits<int>::min()) {
        return std::string(range_error);
    }
    if (n.value() < min) {
        return fmt::format("must be at least {}", min);
    }
    field = static_cast<int>(n.value());
    return std::nullopt;
}

// Every flag once; the Go daemon binds short and long name to one variable.
const std::array<FlagDef, 35> flag_table{{
    {"resource-arn", "a", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.resource_arn, v); }},
    {"local-mode", "o", FlagKind::boolean,
     [](CliFlags& f, std::string_view v) { return set_bool(f.local_mode, v); }},
    {"buffer-memory", "m", FlagKind::value,
     [](CliFlags& f, std::string_view v) -> std::optional<std::string> {
         auto n = parse_go_int(v);
         if (!n) {
             return n.error();
         }
         f.buffer_memory_mb = n.value();
         return std::nullopt;
     }},
    {"region", "n", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.region, v); }},
    {"bind", "b", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.udp_address, v); }},
    {"bind-tcp", "t", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.tcp_address, v); }},
    {"role-arn", "r", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.role_arn, v); }},
    {"config", "c", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.config_path, v); }},
    {"log-file", "f", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.log_file, v); }},
    {"log-level", "l", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.log_level, v); }},
    {"proxy-address", "p", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.proxy_address, v); }},
    {"version", "v", FlagKind::boolean,
     [](CliFlags& f, std::string_view v) -> std::optional<std::string> {
         std::optional<bool> b;
         auto err = set_bool(b, v);
         if (!err) {
             f.version = *b;
         }
         return err;
     }},
    {"endpoint", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.endpoint, v); }},
    {"local-sink", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.local_sink, v); }},
    {"ca-bundle", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.ca_bundle, v); }},
    {"linger", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_duration(f.linger, v); }},
    {"shutdown-timeout", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_duration(f.shutdown_timeout, v); }},
    {"request-timeout", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) -> std::optional<std::string> {
         auto err = set_duration(f.request_timeout, v);
         if (!err && f.request_timeout->count() == 0) {
             return std::string("must be at least 1ms");
         }
         return err;
     }},
    {"receive-buffer", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_bytes(f.receive_buffer_bytes, v); }},
    {"max-batch-bytes", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_bytes(f.max_batch_bytes, v); }},
    {"receivers", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_count(f.receivers, v, 0); }},
    {"io-backend", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.io_backend, v); }},
    {"steer-by-cpu", "", FlagKind::boolean,
     [](CliFlags& f, std::string_view v) { return set_bool(f.steer_by_cpu, v); }},
    {"pin-receivers", "", FlagKind::boolean,
     [](CliFlags& f, std::string_view v) { return set_bool(f.pin_receivers, v); }},
    {"proxy-forward-all", "", FlagKind::boolean,
     [](CliFlags& f, std::string_view v) { return set_bool(f.proxy_forward_all, v); }},
    {"proxy-optional", "", FlagKind::boolean,
     [](CliFlags& f, std::string_view v) { return set_bool(f.proxy_optional, v); }},
    {"retry-budget", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) -> std::optional<std::string> {
         auto err = set_duration(f.retry_budget, v);
         if (!err && f.retry_budget->count() == 0) {
             return std::string("must be at least 1ms");
         }
         return err;
     }},
    {"backpressure", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.backpressure, v); }},
    {"concurrency", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_count(f.concurrency, v, 1); }},
    {"log-rotation-bytes", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_bytes(f.log_rotation_bytes, v); }},
    {"admin-address", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_string(f.admin_address, v); }},
    {"ready-failure-threshold", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) -> std::optional<std::string> {
         auto err = set_duration(f.ready_failure_threshold, v);
         if (!err && f.ready_failure_threshold->count() == 0) {
             return std::string("must be at least 1ms");
         }
         return err;
     }},
    {"summary-interval", "", FlagKind::value,
     [](CliFlags& f, std::string_view v) { return set_duration(f.summary_interval, v); }},
    {"check-config", "", FlagKind::boolean,
     [](CliFlags& f, std::string_view v) -> std::optional<std::string> {
         std::optional<bool> b;
         auto err = set_bool(b, v);
         if (!err) {
             f.check_config = *b;
         }
         return err;
     }},
    {"health-check", "", FlagKind::boolean,
     [](CliFlags& f, std::string_view v) -> std::optional<std::string> {
         std::optional<bool> b;
         auto err = set_bool(b, v);
         if (!err) {
             f.health_check = *b;
         }
         return err;
     }},
}};

const FlagDef* find_flag(std::string_view name) noexcept {
    for (const FlagDef& def : flag_table) {
        if (name == def.long_name || (!def.short_name.empty() && name == def.short_name)) {
            return &def;
        }
    }
    return nullptr;
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
        const FlagDef* def = find_flag(name);
        if (def == nullptr) {
            if (name == "help" || name == "h") {
                flags.help = true;
                break;
            }
            return failf(fmt::format("flag provided but not defined: -{}", name));
        }
        if (def->kind == FlagKind::boolean) {
            if (auto err = def->set(flags, has_value ? value : std::string_view("true"))) {
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
        if (auto err = def->set(flags, value)) {
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
