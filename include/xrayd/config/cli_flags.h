// Command-line parsing with the Go `flag` package's rules, for the Go daemon's thirteen flags and
// xrayd's own long options, plus the Go text parsers (int, bool, duration) they rely on.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <xrayd/common/result.h>

namespace xrayd {

// What the command line said. A field is set only when its flag appeared (the last occurrence
// wins), so the loader can apply flag > file > environment > default; an explicit empty string
// (`-r ""`) is "set". Values are syntax-checked here; cross-field checks are the loader's.
struct CliFlags {
    // The Go daemon's flags (short and long name bound to one field, as in pkg/cli/cli.go).
    std::optional<std::string> resource_arn;      // -a --resource-arn
    std::optional<bool> local_mode;               // -o --local-mode
    std::optional<std::int64_t> buffer_memory_mb; // -m --buffer-memory
    std::optional<std::string> region;            // -n --region
    std::optional<std::string> udp_address;       // -b --bind
    std::optional<std::string> tcp_address;       // -t --bind-tcp
    std::optional<std::string> role_arn;          // -r --role-arn
    std::optional<std::string> config_path;       // -c --config
    std::optional<std::string> log_file;          // -f --log-file
    std::optional<std::string> log_level;         // -l --log-level (name checked by the loader)
    std::optional<std::string> proxy_address;     // -p --proxy-address
    bool version = false;                         // -v --version
    bool help = false;                            // -h --help (parsing stopped there)

    // xrayd's own options (long names only).
    std::optional<std::string> endpoint;
    std::optional<std::string> local_sink;
    std::optional<std::string> ca_bundle;
    std::optional<std::chrono::milliseconds> linger;
    std::optional<std::chrono::milliseconds> shutdown_timeout;
    std::optional<std::chrono::milliseconds> request_timeout;
    std::optional<std::uint64_t> receive_buffer_bytes;
    std::optional<std::uint64_t> max_batch_bytes;
    std::optional<int> receivers;
    std::optional<std::string> io_backend;  // checked by the loader
    std::optional<bool> steer_by_cpu;
    std::optional<bool> pin_receivers;
    std::optional<bool> proxy_forward_all;
    std::optional<bool> proxy_optional;
    std::optional<std::chrono::milliseconds> retry_budget;
    std::optional<std::string> backpressure;  // checked by the loader
    std::optional<int> concurrency;
    std::optional<std::uint64_t> log_rotation_bytes;
    std::optional<std::string> admin_address;  // "off" or host:port (checked by the loader)
    std::optional<std::chrono::milliseconds> ready_failure_threshold;
    std::optional<std::chrono::milliseconds> summary_interval;
    bool check_config = false;  // --check-config: print the effective configuration and exit
    bool health_check = false;  // --health-check: ask the running daemon's /healthz, exit 0/1

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

// The usage screen: the Go daemon's `-h` text byte for byte (spec §1.4), a blank line, then
// xrayd's own options. Ends with '\n'.
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
