// Go flag-package parsing of the daemon's command line, and Go's int/bool/duration text parsers.
#include <xrayd/config/cli_flags.h>

#include <fmt/format.h>

#include <array>
#include <limits>

namespace xrayd {
namespace {

// strconv.Quote for what can appear on a command line: printable ASCII and UTF-8 bytes kept,
// quote and backslash escaped, control bytes as Go escapes them.
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

constexpr std::string_view parse_error = "parse error";
constexpr std::string_view range_error = "value out of range";

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
const std::array<FlagDef, 32> flag_table{{
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
            return fail(fmt::format("unknown unit {} in duration {}", go_quote(unit_name),
                                    go_quote(text)));
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

std::string usage_text() {
    // The Go daemon's screen (pkg/cli/cli.go), TABs included; then xrayd's additions.
    return "Usage: X-Ray [options]\n"
           "\t-a\t--resource-arn\tAmazon Resource Name (ARN) of the AWS resource running the "
           "daemon.\n"
           "\t-o\t--local-mode\tDon't check for EC2 instance metadata.\n"
           "\t-m\t--buffer-memory\tChange the amount of memory in MB that buffers can use "
           "(minimum 3).\n"
           "\t-n\t--region\tSend segments to X-Ray service in a specific region.\n"
           "\t-b\t--bind\t\tOverrides default UDP address (127.0.0.1:2000).\n"
           "\t-t\t--bind-tcp\tOverrides default TCP address (127.0.0.1:2000).\n"
           "\t-r\t--role-arn\tAssume the specified IAM role to upload segments to a different "
           "account.\n"
           "\t-c\t--config\tLoad a configuration file from the specified path.\n"
           "\t-f\t--log-file\tOutput logs to the specified file path.\n"
           "\t-l\t--log-level\tLog level, from most verbose to least: dev, debug, info, warn, "
           "error, prod (default).\n"
           "\t-p\t--proxy-address\tProxy address through which to upload segments.\n"
           "\t-v\t--version\tShow AWS X-Ray daemon version.\n"
           "\t-h\t--help\t\tShow this screen\n"
           "\n"
           "xrayd options (long names only; DUR is a Go duration such as 100ms, 5s, 1m30s):\n"
           "\t--endpoint URL\t\tX-Ray endpoint URL with scheme (cfg.yaml Endpoint).\n"
           "\t--local-sink PATH|-\tWrite batches to PATH, or stdout for -, instead of "
           "uploading (Xrayd.LocalSink).\n"
           "\t--ca-bundle PATH\tCA certificates for TLS to X-Ray (Xrayd.CABundle).\n"
           "\t--linger DUR\t\tLongest wait of a segment before its batch is sent; default 100ms "
           "(Xrayd.Linger).\n"
           "\t--shutdown-timeout DUR\tDeadline for sending buffered segments at shutdown; "
           "default 5s (Xrayd.ShutdownTimeout).\n"
           "\t--request-timeout DUR\tTimeout of one PutTraceSegments request; default 5s "
           "(Xrayd.RequestTimeout).\n"
           "\t--receive-buffer BYTES\tUDP socket receive buffer to ask for; default 4194304 "
           "(Xrayd.ReceiveBufferBytes).\n"
           "\t--max-batch-bytes BYTES\tLargest PutTraceSegments request body; default 4194304 "
           "(Xrayd.MaxBatchBytes).\n"
           "\t--receivers N\t\tUDP receive threads, 0 = one per CPU; default 0 "
           "(Xrayd.Receivers).\n"
           "\t--io-backend NAME\tUDP receive engine: auto, io_uring or epoll; default auto "
           "(Xrayd.IoBackend).\n"
           "\t--steer-by-cpu\t\tSteer each datagram to the receiver of the CPU it arrived on "
           "(Xrayd.SteerByCpu).\n"
           "\t--pin-receivers\t\tPin receiver thread i to allowed CPU i (Xrayd.PinReceivers).\n"
           "\t--proxy-forward-all\tLet the TCP proxy forward every X-Ray call, not only sampling "
           "(Xrayd.ProxyForwardAll).\n"
           "\t--proxy-optional\tRun without the TCP proxy if its address cannot be bound "
           "(Xrayd.ProxyOptional).\n"
           "\t--concurrency N\t\tPutTraceSegments requests in flight; default 8 (cfg.yaml "
           "Concurrency).\n"
           "\t--log-rotation-bytes N\tLog file rotation size, for tests; default 52428800.\n"
           "\t--admin-address ADDR\tAdmin HTTP listener for /healthz, /readyz and /metrics, or "
           "off; default 127.0.0.1:2100 (Xrayd.AdminAddress).\n"
           "\t--ready-failure-threshold DUR\t/readyz fails once uploads have failed for this "
           "long; default 1m (Xrayd.ReadyFailureThreshold).\n"
           "\t--summary-interval DUR\tPeriod of the Info summary line, 0 = off; default 1m "
           "(Xrayd.SummaryInterval).\n"
           "\t--check-config\t\tPrint the effective configuration and exit 0, or the errors "
           "and exit 1.\n";
}

}  // namespace xrayd
