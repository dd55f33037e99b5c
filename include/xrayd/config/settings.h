// The settings table: every setting of the daemon once, with its flags, cfg.yaml key, kind,
// default, reloadability and help line. The flag parser, the cfg.yaml decoder, `-h`, the man
// page, --check-config and the SIGHUP reload diff are all generated from it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <xrayd/config/config.h>

namespace xrayd {

// How a setting is spelled on the command line and in cfg.yaml, and the C++ type the flag
// parser (CliFlags) and the file decoder hold it in until the loader merges them.
enum class SettingKind : std::uint8_t {
    text,       // flag: any text; file: a YAML string (CliFlags/FileValues: std::string)
    toggle,     // flag: -x or -x=<Go bool>; file: a YAML 1.1 bool (bool)
    megabytes,  // flag: Go int, any sign; file: int (std::int64_t)
    duration,   // flag: Go duration >= min ms (std::chrono::milliseconds); file: its text
    bytes,      // flag: Go int > 0 (std::uint64_t); file: int (std::int64_t)
    count,      // flag: Go int >= min that fits an int (int); file: int (std::int64_t)
    action,     // flag like toggle, asks main() for an action; no Config member (CliFlags bool)
    help,       // -h / -help: stops parsing and asks for the usage screen (CliFlags bool)
};

struct Setting {
    std::string_view id{};     // field name in CliFlags (and FileValues)
    std::string_view group{};  // the Config member holding it: "net", "upload", ...; "" = action
    SettingKind kind = SettingKind::text;
    std::string_view flag{};        // long flag without dashes; "" = none
    std::string_view short_flag{};  // the Go daemon's one-letter flag; "" = none (xrayd's own)
    std::string_view metavar{};     // after an xrayd flag in -h: "DUR", "PATH", ...
    std::string_view key{};         // cfg.yaml key path ("Socket.UDPAddress"); "" = not in files
    std::string_view label{};       // its name in reload messages when it has no key
    std::int64_t min = 0;           // duration (ms) and count: the smallest value taken
    // The default as a flag would spell it ("100ms", "4194304"); "" for an empty text and a
    // false toggle. -h shows it for xrayd's options (not for toggles); settings_test parses it
    // and compares it with Config{}.
    std::string_view default_text{};
    bool reloadable = false;  // SIGHUP may change it in a running daemon
    // -h text. The Go daemon's rows (short_flag set) and actions: the whole description, byte
    // for byte. xrayd's settings: the summary; -h appends "; default X" and "(key)".
    std::string_view help{};
    std::string_view note{};  // --check-config comment after the flag ("; 0 = off")
    bool redact_url = false;  // --check-config hides a URL password in the value
    int usage_rank = 0;       // position on the -h screen; 0 = not shown (no flag)
    int reload_rank = 0;      // position in reload diffs (settings only)
    // The value in `config`: show() as a reload diff spells it, describe() as --check-config
    // prints it (YAML). Null for actions.
    std::string (*show)(const Config& config) = nullptr;
    std::string (*describe)(const Config& config, const Setting& row) = nullptr;
};

// ---- The table ----------------------------------------------------------------------------
// X(id, group, member, kind, <designated initializers of the Setting fields after `kind`, in
// declaration order>). Row order is the cfg.yaml order (--check-config prints it so); -h and
// reload diffs use their ranks.
//
// To add a setting:
//   1. add its member, with a default, to the Config sub-struct of the module that reads it
//      (config.h): settings.cpp stops compiling until the row exists (member counts);
//   2. add its row here: flag/metavar/key/default/help/reloadable/ranks (the next free
//      usage_rank and reload_rank; settings_test checks they are unique and the default parses);
//   3. if the value needs more than "flag > file > default" (a range, a name to parse, an
//      environment fallback), check it in the merge (config_loader.cpp for the Go daemon's
//      settings, xrayd_settings_merge.cpp for the Xrayd: ones), which has every special case;
//      a plain text or toggle setting is merged there with one `pick` line.
//   The flag parser, cfg.yaml decoder and key validation, -h, the man page, --check-config and
//   the reload diff need nothing more.
// clang-format off
#define XRAYD_SETTINGS(X)                                                                      \
    X(buffer_memory_mb, queue, buffer_memory_mb, megabytes, .flag = "buffer-memory",           \
      .short_flag = "m", .key = "TotalBufferSizeMB", .default_text = "0",                      \
      .help = "Change the amount of memory in MB that buffers can use (minimum 3).",           \
      .note = " (resolved)", .usage_rank = 3, .reload_rank = 12)                               \
    X(concurrency, upload, concurrency, count, .flag = "concurrency", .metavar = "N",          \
      .key = "Concurrency", .min = 1, .default_text = "8", .reloadable = true,                 \
      .help = "PutTraceSegments requests in flight", .usage_rank = 37, .reload_rank = 2)       \
    X(endpoint, aws, endpoint, text, .flag = "endpoint", .metavar = "URL", .key = "Endpoint",  \
      .help = "X-Ray endpoint URL with scheme", .note = "; \"\" = from the region",            \
      .usage_rank = 21, .reload_rank = 22)                                                     \
    X(region, aws, region, text, .flag = "region", .short_flag = "n", .key = "Region",         \
      .help = "Send segments to X-Ray service in a specific region.",                          \
      .note = "; \"\" = environment or metadata at start-up", .usage_rank = 4,                 \
      .reload_rank = 13)                                                                       \
    X(udp_address, net, udp_address, text, .flag = "bind", .short_flag = "b",                  \
      .key = "Socket.UDPAddress", .default_text = "127.0.0.1:2000",                            \
      .help = "Overrides default UDP address (127.0.0.1:2000).", .usage_rank = 5,              \
      .reload_rank = 14)                                                                       \
    X(tcp_address, proxy, tcp_address, text, .flag = "bind-tcp", .short_flag = "t",            \
      .key = "Socket.TCPAddress", .default_text = "127.0.0.1:2000",                            \
      .help = "Overrides default TCP address (127.0.0.1:2000).", .usage_rank = 6,              \
      .reload_rank = 15)                                                                       \
    X(log_rotation, log, rotation, toggle, .key = "Logging.LogRotation",                       \
      .default_text = "true", .reload_rank = 19)                                               \
    X(log_level, log, level, text, .flag = "log-level", .short_flag = "l",                     \
      .key = "Logging.LogLevel", .default_text = "prod", .reloadable = true,                   \
      .help = "Log level, from most verbose to least: dev, debug, info, warn, error, prod "    \
              "(default).",                                                                    \
      .usage_rank = 10, .reload_rank = 1)                                                      \
    X(log_file, log, file, text, .flag = "log-file", .short_flag = "f",                        \
      .key = "Logging.LogPath", .help = "Output logs to the specified file path.",             \
      .note = "; \"\" = standard output", .usage_rank = 9, .reload_rank = 18)                  \
    X(local_mode, aws, local_mode, toggle, .flag = "local-mode", .short_flag = "o",            \
      .key = "LocalMode", .help = "Don't check for EC2 instance metadata.", .usage_rank = 2,    \
      .reload_rank = 11)                                                                       \
    X(resource_arn, aws, resource_arn, text, .flag = "resource-arn", .short_flag = "a",        \
      .key = "ResourceARN",                                                                    \
      .help = "Amazon Resource Name (ARN) of the AWS resource running the daemon.",            \
      .usage_rank = 1, .reload_rank = 10)                                                      \
    X(role_arn, aws, role_arn, text, .flag = "role-arn", .short_flag = "r", .key = "RoleARN",  \
      .help = "Assume the specified IAM role to upload segments to a different account.",      \
      .usage_rank = 7, .reload_rank = 16)                                                      \
    X(no_verify_ssl, transport, no_verify_ssl, toggle, .key = "NoVerifySSL",                   \
      .reload_rank = 23)                                                                       \
    X(proxy_address, transport, proxy, text, .flag = "proxy-address", .short_flag = "p",       \
      .key = "ProxyAddress", .help = "Proxy address through which to upload segments.",        \
      .note = " > file > HTTPS_PROXY > https_proxy", .redact_url = true, .usage_rank = 11,     \
      .reload_rank = 20)                                                                       \
    X(ca_bundle, transport, ca_bundle, text, .flag = "ca-bundle", .metavar = "PATH",           \
      .key = "Xrayd.CABundle", .help = "CA certificates for TLS to X-Ray", .usage_rank = 23,   \
      .reload_rank = 25)                                                                       \
    X(local_sink, upload, local_sink, text, .flag = "local-sink", .metavar = "PATH|-",         \
      .key = "Xrayd.LocalSink",                                                                \
      .help = "Write batches to PATH, or stdout for -, instead of uploading",                  \
      .usage_rank = 22, .reload_rank = 24)                                                     \
    X(linger, batch, linger, duration, .flag = "linger", .metavar = "DUR",                     \
      .key = "Xrayd.Linger", .default_text = "100ms", .reloadable = true,                      \
      .help = "Longest wait of a segment before its batch is sent", .usage_rank = 24,          \
      .reload_rank = 3)                                                                        \
    X(shutdown_timeout, daemon, shutdown_timeout, duration, .flag = "shutdown-timeout",        \
      .metavar = "DUR", .key = "Xrayd.ShutdownTimeout", .default_text = "5s",                  \
      .help = "Deadline for sending buffered segments at shutdown", .usage_rank = 25,          \
      .reload_rank = 26)                                                                       \
    X(request_timeout, upload, request_timeout, duration, .flag = "request-timeout",           \
      .metavar = "DUR", .key = "Xrayd.RequestTimeout", .min = 1, .default_text = "5s",         \
      .reloadable = true, .help = "Timeout of one PutTraceSegments request", .usage_rank = 26, \
      .reload_rank = 4)                                                                        \
    X(receive_buffer_bytes, net, receive_buffer_bytes, bytes, .flag = "receive-buffer",        \
      .metavar = "BYTES", .key = "Xrayd.ReceiveBufferBytes", .default_text = "4194304",        \
      .help = "UDP socket receive buffer to ask for", .usage_rank = 27, .reload_rank = 27)     \
    X(max_batch_bytes, batch, max_batch_bytes, bytes, .flag = "max-batch-bytes",               \
      .metavar = "BYTES", .key = "Xrayd.MaxBatchBytes", .default_text = "4194304",             \
      .help = "Largest PutTraceSegments request body", .usage_rank = 28, .reload_rank = 28)    \
    X(receivers, net, receivers, count, .flag = "receivers", .metavar = "N",                   \
      .key = "Xrayd.Receivers", .min = 0, .default_text = "0",                                 \
      .help = "UDP receive threads, 0 = one per CPU", .note = "; 0 = one per CPU",             \
      .usage_rank = 29, .reload_rank = 29)                                                     \
    X(io_backend, net, io_backend, text, .flag = "io-backend", .metavar = "NAME",              \
      .key = "Xrayd.IoBackend", .default_text = "auto",                                        \
      .help = "UDP receive engine: auto, io_uring or epoll", .usage_rank = 30,                 \
      .reload_rank = 30)                                                                       \
    X(steer_by_cpu, net, steer_by_cpu, toggle, .flag = "steer-by-cpu",                         \
      .key = "Xrayd.SteerByCpu",                                                               \
      .help = "Steer each datagram to the receiver of the CPU it arrived on",                  \
      .usage_rank = 31, .reload_rank = 31)                                                     \
    X(pin_receivers, net, pin_receivers, toggle, .flag = "pin-receivers",                      \
      .key = "Xrayd.PinReceivers", .help = "Pin receiver thread i to allowed CPU i",           \
      .usage_rank = 32, .reload_rank = 32)                                                     \
    X(proxy_forward_all, proxy, forward_all, toggle, .flag = "proxy-forward-all",              \
      .key = "Xrayd.ProxyForwardAll", .reloadable = true,                                      \
      .help = "Let the TCP proxy forward every X-Ray call, not only sampling",                 \
      .usage_rank = 33, .reload_rank = 7)                                                      \
    X(proxy_optional, proxy, optional, toggle, .flag = "proxy-optional",                       \
      .key = "Xrayd.ProxyOptional",                                                            \
      .help = "Run without the TCP proxy if its address cannot be bound", .usage_rank = 36,    \
      .reload_rank = 33)                                                                       \
    X(retry_budget, upload, retry_budget, duration, .flag = "retry-budget", .metavar = "DUR",  \
      .key = "Xrayd.RetryBudget", .min = 1, .default_text = "10m", .reloadable = true,         \
      .help = "How long a failing batch is retried before it is given up", .usage_rank = 34,   \
      .reload_rank = 5)                                                                        \
    X(backpressure, queue, backpressure, text, .flag = "backpressure", .metavar = "POLICY",    \
      .key = "Xrayd.Backpressure", .default_text = "drop-newest",                              \
      .help = "What gives way when memory is full: drop-newest or drop-oldest",                \
      .usage_rank = 35, .reload_rank = 6)                                                      \
    X(spool_dir, spool, dir, text, .flag = "spool-dir", .metavar = "DIR",                      \
      .key = "Xrayd.SpoolDir",                                                                 \
      .help = "Directory of the disk spool (must exist), or empty for none",                   \
      .note = "; \"\" = off", .usage_rank = 44, .reload_rank = 36)                             \
    X(spool_max_bytes, spool, max_bytes, bytes, .flag = "spool-max-bytes", .metavar = "BYTES", \
      .key = "Xrayd.SpoolMaxBytes", .default_text = "1073741824",                              \
      .help = "Disk space the spool may use, at least 1 MiB", .usage_rank = 45,                \
      .reload_rank = 37)                                                                       \
    X(spool_mode, spool, mode, text, .flag = "spool-mode", .metavar = "MODE",                  \
      .key = "Xrayd.SpoolMode", .default_text = "overflow",                                    \
      .help = "What goes to the spool: overflow (what memory cannot hold) or write-ahead "     \
              "(every segment)",                                                               \
      .usage_rank = 46, .reload_rank = 38)                                                     \
    X(spool_sync, spool, sync, text, .flag = "spool-sync", .metavar = "POLICY",                \
      .key = "Xrayd.SpoolSync", .default_text = "interval",                                    \
      .help = "When the spool file is fsynced: none, interval (every second) or always",       \
      .usage_rank = 47, .reload_rank = 39)                                                     \
    X(otlp_address, otlp, address, text, .flag = "otlp-address", .metavar = "ADDR",            \
      .key = "Xrayd.OtlpAddress", .default_text = "off",                                       \
      .help = "OTLP/HTTP listener (POST /v1/traces) for OpenTelemetry SDKs, or off",           \
      .usage_rank = 48, .reload_rank = 40)                                                     \
    X(otlp_endpoint, otlp, endpoint, text, .flag = "otlp-endpoint", .metavar = "URL",          \
      .key = "Xrayd.OtlpEndpoint",                                                             \
      .help = "URL OTLP spans are posted to, or empty for the X-Ray endpoint + /v1/traces",    \
      .note = "; \"\" = <X-Ray endpoint>/v1/traces", .usage_rank = 49, .reload_rank = 41)       \
    X(otlp_max_body_bytes, otlp, max_body_bytes, bytes, .flag = "otlp-max-body-bytes",         \
      .metavar = "BYTES", .key = "Xrayd.OtlpMaxBodyBytes", .default_text = "4194304",          \
      .help = "Largest OTLP request body taken (as received); larger ones are answered 413",   \
      .usage_rank = 50, .reload_rank = 42)                                                     \
    X(admin_address, admin, address, text, .flag = "admin-address", .metavar = "ADDR",         \
      .key = "Xrayd.AdminAddress", .default_text = "127.0.0.1:2100",                           \
      .help = "Admin HTTP listener for /healthz, /readyz and /metrics, or off",                \
      .usage_rank = 39, .reload_rank = 35)                                                     \
    X(ready_failure_threshold, admin, ready_failure_threshold, duration,                       \
      .flag = "ready-failure-threshold", .metavar = "DUR", .key = "Xrayd.ReadyFailureThreshold", \
      .min = 1, .default_text = "1m", .reloadable = true,                                      \
      .help = "/readyz fails once uploads have failed for this long", .usage_rank = 40,        \
      .reload_rank = 8)                                                                        \
    X(summary_interval, admin, summary_interval, duration, .flag = "summary-interval",         \
      .metavar = "DUR", .key = "Xrayd.SummaryInterval", .min = 0, .default_text = "1m",        \
      .reloadable = true, .help = "Period of the Info summary line, 0 = off",                  \
      .note = "; 0 = off", .usage_rank = 41, .reload_rank = 9)                                 \
    X(config_path, daemon, config_path, text, .flag = "config", .short_flag = "c",             \
      .label = "configuration file", .help = "Load a configuration file from the specified path.", \
      .usage_rank = 8, .reload_rank = 17)                                                      \
    X(no_proxy, transport, no_proxy, text, .label = "NO_PROXY", .reload_rank = 21)             \
    X(log_rotation_bytes, log, rotation_bytes, bytes, .flag = "log-rotation-bytes",            \
      .metavar = "N", .label = "--log-rotation-bytes", .default_text = "52428800",             \
      .help = "Log file rotation size, for tests", .usage_rank = 38, .reload_rank = 34)

// Flags that ask for an action instead of setting a value: X(id, kind, <initializers>).
#define XRAYD_ACTIONS(X)                                                                       \
    X(version, action, .flag = "version", .short_flag = "v",                                  \
      .help = "Show AWS X-Ray daemon version.", .usage_rank = 12)                              \
    X(help, help, .flag = "help", .short_flag = "h", .help = "Show this screen",               \
      .usage_rank = 13)                                                                        \
    X(check_config, action, .flag = "check-config",                                            \
      .help = "Print the effective configuration and exit 0, or the errors and exit 1.",       \
      .usage_rank = 51)                                                                        \
    X(health_check, action, .flag = "health-check",                                            \
      .help = "Ask the running daemon's /healthz on the admin address; exit 0 if healthy, "    \
              "else 1 (for container HEALTHCHECKs).",                                          \
      .usage_rank = 52)
// clang-format on

// NOLINTNEXTLINE(bugprone-macro-parentheses): a "+1" term appended to a sum, unparenthesised.
#define XRAYD_SETTING_PLUS_ONE(...) +1
inline constexpr std::size_t setting_count = 0 XRAYD_SETTINGS(XRAYD_SETTING_PLUS_ONE);
inline constexpr std::size_t action_count = 0 XRAYD_ACTIONS(XRAYD_SETTING_PLUS_ONE);
#undef XRAYD_SETTING_PLUS_ONE

// The table: the settings in row order, then the actions. Index i of the span is row i of the
// macros (CliFlags and FileValues setters rely on it). Thread-safe (immutable).
[[nodiscard]] std::span<const Setting> settings() noexcept;

// The row with long flag or short flag `name`; nullptr when none. Thread-safe.
[[nodiscard]] const Setting* find_setting_by_flag(std::string_view name) noexcept;

// The row with cfg.yaml key path `key` ("Xrayd.Linger"); nullptr when none. Thread-safe.
[[nodiscard]] const Setting* find_setting_by_key(std::string_view key) noexcept;

// The text -h shows for `row`: Go's rows and actions verbatim, xrayd's settings with
// "; default X" (when shown) and " (Xrayd.Key)" or " (cfg.yaml Key)" appended, and a period.
[[nodiscard]] std::string usage_description(const Setting& row);

}  // namespace xrayd
