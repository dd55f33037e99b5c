// load_config: flags, cfg.yaml and environment merged into one Config, with the Go daemon's
// precedence, messages and exit codes.
#include <xrayd/config/config_loader.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <utility>

#include <fmt/format.h>

#include <xrayd/config/ca_bundle.h>
#include <xrayd/config/cli_flags.h>
#include <xrayd/config/describe.h>
#include <xrayd/config/settings.h>
#include <xrayd/log/log_file.h>
#include <xrayd/log/logger.h>
#include <xrayd/net/udp_socket.h>
#include <xrayd_config.h>

#include "config_file.h"

namespace xrayd {
namespace {

constexpr std::string_view level_names = "dev, debug, info, warn, error, prod";

template <typename T>
T pick(const std::optional<T>& flag, const std::optional<T>& file, T fallback) {
    if (flag) {
        return *flag;
    }
    if (file) {
        return *file;
    }
    return fallback;
}

// The long flag of an `Xrayd.<key>` file setting, for messages about the flag.
std::string_view flag_name(std::string_view key) {
    const Setting* row = find_setting_by_key("Xrayd." + std::string(key));
    return row != nullptr && !row->flag.empty() ? row->flag : key;
}

// Whether `address` (host:port) names a loopback host by its text: localhost, 127.0.0.0/8,
// ::1 (bracketed or not). An empty host or a wildcard listens on every interface; any other
// name is not resolved here and counts as reachable.
bool is_loopback_address(std::string_view address) {
    std::string_view host = address;
    if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
        host = host.substr(0, colon);
    }
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    if (const auto zone = host.find('%'); zone != std::string_view::npos) {
        host = host.substr(0, zone);
    }
    if (host == "localhost") {
        return true;
    }
    const std::string text(host);
    in_addr v4{};
    if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
        return (ntohl(v4.s_addr) >> 24) == 127;
    }
    in6_addr v6{};
    return ::inet_pton(AF_INET6, text.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// Go's os.Stat + os.IsNotExist: anything but "does not exist" selects the path (an unreadable
// file is then reported, not skipped).
bool present(const std::filesystem::path& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 || errno != ENOENT;
}

class Loader {
public:
    Loader(const Environment& env, const ConfigSources& sources) : env_(env), sources_(sources) {}

    CliOutcome run(std::span<const std::string> args) {
        auto parsed = parse_cli_flags(args);
        if (!parsed) {
            CliOutcome out;
            out.exit_code = 2;
            out.err = parsed.error().message + "\n";
            out.out = usage_text();
            return out;
        }
        const CliFlags& flags = parsed.value();
        // -h and -v before any file is read: a broken cfg.yaml must not hide them.
        if (flags.help) {
            CliOutcome out;
            out.out = usage_text();
            return out;
        }
        if (flags.version) {
            CliOutcome out;
            out.out = fmt::format("AWS X-Ray daemon version: xrayd {}\n", XRAYD_VERSION);
            return out;
        }
        error_log_ = flags.log_file.value_or("");
        log_errors_ = sources_.append_errors_to_log && !flags.check_config && !flags.health_check;
        CliOutcome out = build(flags);
        if (flags.check_config && out.config) {
            return check(std::move(out));
        }
        out.health_check = flags.health_check && out.config;
        return out;
    }

    CliOutcome error(std::string_view message) {
        CliOutcome out;
        out.exit_code = 1;
        out.err = format_log_prefix(WallClock::now(), LogLevel::error);
        out.err.append(message);
        out.err.push_back('\n');
        if (log_errors_ && !error_log_.empty()) {
            (void)append_line_to_file(error_log_, out.err);  // stderr has it regardless
        }
        return out;
    }

private:
    // --check-config after a successful load: the checks the daemon would only hit when
    // binding or opening files, every failure reported; then the effective configuration.
    CliOutcome check(CliOutcome loaded) {
        const Config& c = *loaded.config;
        std::vector<std::string> errors;
        const auto address = [&](std::string_view what, const std::string& text) {
            if (auto r = resolve_udp_address(text); !r) {
                errors.push_back(fmt::format("{} {}: {}", what, text, r.error()));
            }
        };
        address("UDP address (-b / Socket.UDPAddress)", c.net.udp_address);
        if (c.upload.local_sink.empty()) {
            address("TCP address (-t / Socket.TCPAddress)", c.proxy.tcp_address);
        }
        if (c.admin.enabled()) {
            address("admin address (--admin-address / Xrayd.AdminAddress)", c.admin.address);
        }
        if (!c.transport.ca_bundle.empty() && ::access(c.transport.ca_bundle.c_str(), R_OK) != 0) {
            errors.push_back(fmt::format("CA bundle (--ca-bundle / Xrayd.CABundle) {}: {}",
                                         c.transport.ca_bundle, std::strerror(errno)));
        }
        if (!c.upload.local_sink.empty() && c.upload.local_sink != "-") {
            std::filesystem::path dir = std::filesystem::path(c.upload.local_sink).parent_path();
            if (dir.empty()) {
                dir = ".";
            }
            if (::access(dir.c_str(), W_OK) != 0) {
                errors.push_back(fmt::format("local sink (--local-sink / Xrayd.LocalSink) "
                                             "directory {}: {}",
                                             dir.string(), std::strerror(errno)));
            }
        }
        if (c.spool.enabled()) {
            std::error_code ec;
            if (!c.upload.local_sink.empty()) {
                errors.push_back("spool (--spool-dir / Xrayd.SpoolDir) and local sink "
                                 "(--local-sink / Xrayd.LocalSink) cannot be combined: drop one");
            } else if (!std::filesystem::is_directory(c.spool.dir, ec)) {
                errors.push_back(fmt::format("spool directory (--spool-dir / Xrayd.SpoolDir) {}: "
                                             "{}",
                                             c.spool.dir,
                                             ec ? ec.message() : "not an existing directory"));
            } else if (::access(c.spool.dir.c_str(), W_OK | X_OK) != 0) {
                errors.push_back(fmt::format("spool directory (--spool-dir / Xrayd.SpoolDir) {}: "
                                             "{}",
                                             c.spool.dir, std::strerror(errno)));
            }
        }
        CliOutcome out;
        if (!errors.empty()) {
            out.exit_code = 1;
            for (const std::string& e : errors) {
                out.err += format_log_prefix(WallClock::now(), LogLevel::error);
                out.err += e;
                out.err.push_back('\n');
            }
            return out;
        }
        out.out = describe_config(c, env_);
        for (const std::string& w : loaded.warnings) {
            out.out += "# warning: " + w + "\n";
        }
        return out;
    }

    CliOutcome build(const CliFlags& flags) {
        CliOutcome out;
        // The file in effect: -c (key-validated), else the first default location present.
        std::filesystem::path file;
        bool validate = false;
        if (flags.config_path && !flags.config_path->empty()) {
            file = *flags.config_path;
            validate = true;
        } else {
            for (const auto& candidate : sources_.default_paths) {
                if (!present(candidate)) {
                    continue;
                }
                if (file.empty()) {
                    file = candidate;
                } else {
                    out.warnings.push_back(fmt::format(
                        "Config file {} is not read: {} comes first in the search list and is "
                        "the only one read (merge them, or remove one)",
                        candidate.string(), file.string()));
                }
            }
        }
        config_file::FileValues fv;
        if (!file.empty()) {
            auto loaded = config_file::load(file, validate);
            if (!loaded) {
                return error(loaded.error());
            }
            fv = std::move(loaded.value().values);
            if (loaded.value().version_assumed) {
                out.warnings.push_back(fmt::format(
                    "Config file {} has no Version key; reading it as Version 2, since every "
                    "key in it is a Version 2 key (the Go daemon refuses such a file). Add "
                    "`Version: 2` to it to silence this warning",
                    file.string()));
            }
            for (const std::string& key : loaded.value().unknown_keys) {
                out.warnings.push_back(fmt::format(
                    "Ignoring unknown key {} in {} (the Go daemon ignores it too; with -c it "
                    "would be an error)",
                    key, file.string()));
            }
        }
        if (!flags.ignored.empty()) {
            std::string list;
            for (const std::string& arg : flags.ignored) {
                list += (list.empty() ? "" : " ") + arg;
            }
            out.warnings.push_back(
                fmt::format("Ignoring command-line arguments after the options: {}", list));
        }

        Config c;
        c.daemon.config_path = file.string();
        c.aws.resource_arn = pick(flags.resource_arn, fv.resource_arn, std::string());
        c.aws.local_mode = pick(flags.local_mode, fv.local_mode, false);
        c.aws.region = pick(flags.region, fv.region, std::string());
        c.net.udp_address = pick(flags.udp_address, fv.udp_address, c.net.udp_address);
        c.proxy.tcp_address = pick(flags.tcp_address, fv.tcp_address, c.proxy.tcp_address);
        c.aws.role_arn = pick(flags.role_arn, fv.role_arn, std::string());
        c.log.file = pick(flags.log_file, fv.log_file, std::string());
        c.log.rotation = fv.log_rotation.value_or(true);
        c.aws.endpoint = pick(flags.endpoint, fv.endpoint, std::string());
        c.transport.no_verify_ssl = fv.no_verify_ssl.value_or(false);
        // From here on errors also go to the log file the daemon would have used (Go logs
        // its post-load errors, e.g. the buffer-memory one, through the configured logger).
        error_log_ = c.log.file;

        const std::string level = pick(flags.log_level, fv.log_level, std::string("prod"));
        if (auto parsed = parse_log_level(level)) {
            c.log.level = *parsed;
        } else {
            return error(fmt::format(
                "Invalid log level \"{}\" ({}). Allowed values (case-sensitive): {}.", level,
                flags.log_level ? "-l/--log-level" : "Logging.LogLevel in " + file.string(),
                level_names));
        }

        // -p > ProxyAddress (an explicit `-p ""` overrides the file, as any flag does); an
        // empty result falls back to the environment, as Go's getProxyAddress does.
        c.transport.proxy = pick(flags.proxy_address, fv.proxy_address, std::string());
        if (c.transport.proxy.empty()) {
            c.transport.proxy = env_.get_non_empty("HTTPS_PROXY")
                                    .value_or(env_.get_non_empty("https_proxy").value_or(""));
        }
        c.transport.no_proxy =
            env_.get_non_empty("NO_PROXY")
                .value_or(env_.get_non_empty("no_proxy").value_or(std::string()));

        if (flags.concurrency) {
            if (*flags.concurrency > config_limits::max_concurrency) {
                return error(fmt::format("--concurrency {} is too large: it must be at most {}.",
                                         *flags.concurrency, config_limits::max_concurrency));
            }
            c.upload.concurrency = *flags.concurrency;
        } else if (fv.concurrency) {
            // Go accepts a negative value and then never uploads anything (spec §13.2).
            if (*fv.concurrency < 1 || *fv.concurrency > config_limits::max_concurrency) {
                return error(fmt::format("Concurrency {} in {} is out of range: it must be at "
                                         "least 1 and at most {}.",
                                         *fv.concurrency, file.string(),
                                         config_limits::max_concurrency));
            }
            c.upload.concurrency = static_cast<int>(*fv.concurrency);
        }

        if (auto r = xrayd_settings(flags, fv, file, c); !r.empty()) {
            return error(r);
        }
#if XRAYD_STATIC_RELEASE
        // No CA path compiled into the static build's libcurl: use the host's (ca_bundle.h).
        if (c.transport.ca_bundle.empty()) {
            c.transport.ca_bundle =
                find_ca_bundle(env_.get_non_empty("SSL_CERT_FILE")).value_or("");
        }
#endif

        std::int64_t memory_mb = pick(flags.buffer_memory_mb, fv.buffer_memory_mb, std::int64_t{0});
        if (memory_mb > config_limits::max_buffer_memory_mb) {
            return error(fmt::format(
                "{} {} is too large: the buffer memory is given in MB and must be at most {} "
                "(e.g. -m 64).",
                flags.buffer_memory_mb ? "-m/--buffer-memory"
                                       : "TotalBufferSizeMB in " + file.string(),
                memory_mb, config_limits::max_buffer_memory_mb));
        }
        MemoryInfo memory;
        if (memory_mb <= 0) {
            auto info = read_memory_info(sources_.system_root);
            if (!info) {
                return error(info.error());
            }
            memory = info.value();
        }
        auto resolved = resolve_buffer_memory_mb(memory_mb, memory);
        if (!resolved) {
            return error(resolved.error());
        }
        c.queue.buffer_memory_mb = resolved.value();

        // Listeners others could reach: the proxy and the OTLP listener sign with our
        // credentials for whoever sends to them, and the admin listener shows the daemon's
        // state (Go's daemon has the same exposure for its proxy; xrayd says so once at start).
        struct Exposure {
            bool listens;
            std::string_view listener;  // "The TCP sampling proxy"
            const std::string& address;
            std::string_view risk;  // what anyone who reaches it can do
            std::string_view flag;  // how to keep it on loopback
        };
        for (const Exposure& e : {
                 Exposure{c.upload.local_sink.empty(), "The TCP sampling proxy",
                          c.proxy.tcp_address,
                          "have requests to X-Ray signed with this daemon's AWS credentials", "-t"},
                 Exposure{c.admin.enabled(), "The admin listener (--admin-address)",
                          c.admin.address, "read /metrics and probe /healthz and /readyz", "it"},
                 Exposure{c.otlp.enabled(), "The OTLP/HTTP listener (--otlp-address)",
                          c.otlp.address,
                          "have spans sent to X-Ray with this daemon's AWS credentials", "it"},
             }) {
            if (e.listens && !is_loopback_address(e.address)) {
                out.warnings.push_back(fmt::format(
                    "{} listens on {}, which is not a loopback address: anyone who can reach it "
                    "can {}. Keep {} on 127.0.0.1 unless a firewall or network policy limits who "
                    "can connect.",
                    e.listener, e.address, e.risk, e.flag));
            }
        }

        out.config = std::move(c);
        return out;
    }

    // xrayd's own settings; "" or the error message.
    static std::string xrayd_settings(const CliFlags& flags, const config_file::FileValues& fv,
                                      const std::filesystem::path& file, Config& c) {
        c.upload.local_sink = pick(flags.local_sink, fv.local_sink, std::string());
        c.transport.ca_bundle = pick(flags.ca_bundle, fv.ca_bundle, std::string());

        // `flag_name` is the long flag of the file key `key`.
        const auto duration = [&](const std::optional<std::chrono::milliseconds>& flag,
                                  const std::optional<std::string>& text, std::string_view key,
                                  std::chrono::milliseconds min,
                                  std::chrono::milliseconds& field) -> std::string {
            constexpr auto max = config_limits::max_duration;
            if (flag) {
                if (*flag > max) {
                    return fmt::format("--{} {}ms is too long: it must be at most {}h (one "
                                       "year).",
                                       flag_name(key), flag->count(),
                                       std::chrono::duration_cast<std::chrono::hours>(max).count());
                }
                field = *flag;
                return {};
            }
            if (!text) {
                return {};
            }
            auto d = parse_go_duration(*text);
            if (!d) {
                return fmt::format("Xrayd.{} in {}: {}", key, file.string(), d.error());
            }
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d.value());
            if (ms < min) {
                return fmt::format("Xrayd.{} in {}: {} is below the minimum of {}ms", key,
                                   file.string(), *text, min.count());
            }
            if (ms > max) {
                return fmt::format("Xrayd.{} in {}: {} is above the maximum of {}h (one year)", key,
                                   file.string(), *text,
                                   std::chrono::duration_cast<std::chrono::hours>(max).count());
            }
            field = ms;
            return {};
        };
        using std::chrono::milliseconds;
        for (std::string e :
             {duration(flags.linger, fv.linger, "Linger", milliseconds{0}, c.batch.linger),
              duration(flags.shutdown_timeout, fv.shutdown_timeout, "ShutdownTimeout",
                       milliseconds{0}, c.daemon.shutdown_timeout),
              duration(flags.request_timeout, fv.request_timeout, "RequestTimeout", milliseconds{1},
                       c.upload.request_timeout),
              duration(flags.retry_budget, fv.retry_budget, "RetryBudget", milliseconds{1},
                       c.upload.retry_budget)}) {
            if (!e.empty()) {
                return e;
            }
        }

        const auto bytes = [&](const std::optional<std::uint64_t>& flag,
                               const std::optional<std::int64_t>& value, std::string_view key,
                               std::uint64_t max, std::size_t& field) -> std::string {
            if (flag) {
                if (*flag > max) {
                    return fmt::format("--{} {} is too large: it must be at most {} bytes.",
                                       flag_name(key), *flag, max);
                }
                field = static_cast<std::size_t>(*flag);
            } else if (value) {
                if (*value < 1 || static_cast<std::uint64_t>(*value) > max) {
                    return fmt::format("Xrayd.{} in {} must be a positive number of bytes, at "
                                       "most {}, not {}",
                                       key, file.string(), max, *value);
                }
                field = static_cast<std::size_t>(*value);
            }
            return {};
        };
        if (auto e =
                bytes(flags.receive_buffer_bytes, fv.receive_buffer_bytes, "ReceiveBufferBytes",
                      config_limits::max_receive_buffer_bytes, c.net.receive_buffer_bytes);
            !e.empty()) {
            return e;
        }
        if (auto e = bytes(flags.max_batch_bytes, fv.max_batch_bytes, "MaxBatchBytes",
                           config_limits::max_batch_bytes, c.batch.max_batch_bytes);
            !e.empty()) {
            return e;
        }
        if (flags.receivers) {
            if (*flags.receivers > config_limits::max_receivers) {
                return fmt::format("--receivers {} is too large: use 0 (one per CPU) or at most "
                                   "{}.",
                                   *flags.receivers, config_limits::max_receivers);
            }
            c.net.receivers = *flags.receivers;
        } else if (fv.receivers) {
            if (*fv.receivers < 0 || *fv.receivers > config_limits::max_receivers) {
                return fmt::format("Xrayd.Receivers {} in {} is out of range: use 0 (one per "
                                   "CPU) or at most {}.",
                                   *fv.receivers, file.string(), config_limits::max_receivers);
            }
            c.net.receivers = static_cast<int>(*fv.receivers);
        }
        if (const auto name = flags.io_backend ? flags.io_backend : fv.io_backend) {
            const auto backend = parse_io_backend(*name);
            if (!backend) {
                return fmt::format("{} \"{}\" is not a receive backend: use auto, io_uring or "
                                   "epoll.",
                                   flags.io_backend ? "--io-backend" : "Xrayd.IoBackend", *name);
            }
            c.net.io_backend = *backend;
        }
        c.net.steer_by_cpu = pick(flags.steer_by_cpu, fv.steer_by_cpu, false);
        c.net.pin_receivers = pick(flags.pin_receivers, fv.pin_receivers, false);
        c.proxy.forward_all = pick(flags.proxy_forward_all, fv.proxy_forward_all, false);
        c.proxy.optional = pick(flags.proxy_optional, fv.proxy_optional, false);
        if (const auto name = flags.backpressure ? flags.backpressure : fv.backpressure) {
            const auto policy = parse_backpressure(*name);
            if (!policy) {
                return fmt::format("{} \"{}\" is not a backpressure policy: use drop-newest or "
                                   "drop-oldest.",
                                   flags.backpressure ? "--backpressure" : "Xrayd.Backpressure",
                                   *name);
            }
            c.queue.backpressure = *policy;
        }
        if (auto e = spool_settings(flags, fv, file, c.spool); !e.empty()) {
            return e;
        }
        for (std::string e :
             {duration(flags.ready_failure_threshold, fv.ready_failure_threshold,
                       "ReadyFailureThreshold", milliseconds{1}, c.admin.ready_failure_threshold),
              duration(flags.summary_interval, fv.summary_interval, "SummaryInterval",
                       milliseconds{0}, c.admin.summary_interval)}) {
            if (!e.empty()) {
                return e;
            }
        }
        c.admin.address = pick(flags.admin_address, fv.admin_address, c.admin.address);
        if (c.admin.enabled() && !is_host_port(c.admin.address)) {
            return fmt::format("{} \"{}\" is not host:port or off (e.g. 127.0.0.1:2100).",
                               flags.admin_address ? "--admin-address" : "Xrayd.AdminAddress",
                               c.admin.address);
        }
        if (auto e = otlp_settings(flags, fv, file, c); !e.empty()) {
            return e;
        }
        if (flags.log_rotation_bytes) {
            c.log.rotation_bytes = *flags.log_rotation_bytes;
        }
        return {};
    }

    // Syntax only: a host name is resolved when the listener binds.
    static bool is_host_port(std::string_view address) {
        const std::size_t colon = address.rfind(':');
        return colon != std::string_view::npos && colon + 1 != address.size();
    }

    // --otlp-address, --otlp-endpoint, --otlp-max-body-bytes; "" or the error message.
    static std::string otlp_settings(const CliFlags& flags, const config_file::FileValues& fv,
                                     const std::filesystem::path& file, Config& c) {
        OtlpConfig& o = c.otlp;
        o.address = pick(flags.otlp_address, fv.otlp_address, o.address);
        if (o.enabled() && !is_host_port(o.address)) {
            return fmt::format("{} \"{}\" is not host:port or off (e.g. 127.0.0.1:4318).",
                               flags.otlp_address ? "--otlp-address" : "Xrayd.OtlpAddress",
                               o.address);
        }
        o.endpoint = pick(flags.otlp_endpoint, fv.otlp_endpoint, std::string());
        if (!o.endpoint.empty() && !o.endpoint.starts_with("https://") &&
            !o.endpoint.starts_with("http://")) {
            return fmt::format("{} \"{}\" is not an http(s) URL (e.g. "
                               "https://xray.us-east-2.amazonaws.com/v1/traces).",
                               flags.otlp_endpoint ? "--otlp-endpoint" : "Xrayd.OtlpEndpoint",
                               o.endpoint);
        }
        // 0 in a file is "not set", as for every int key.
        if (flags.otlp_max_body_bytes || fv.otlp_max_body_bytes.value_or(0) != 0) {
            constexpr std::uint64_t max = config_limits::max_otlp_body_bytes;
            const bool from_flag = flags.otlp_max_body_bytes.has_value();
            const std::int64_t file_bytes = fv.otlp_max_body_bytes.value_or(0);
            if (!from_flag && file_bytes < 1) {
                return fmt::format("Xrayd.OtlpMaxBodyBytes in {} must be a positive number of "
                                   "bytes, at most {}, not {}",
                                   file.string(), max, file_bytes);
            }
            const std::uint64_t bytes =
                from_flag ? *flags.otlp_max_body_bytes : static_cast<std::uint64_t>(file_bytes);
            if (bytes > max) {
                return fmt::format("{} {} is too large: it must be at most {} bytes (a gzip body "
                                   "may inflate to {} times that, and is held whole).",
                                   from_flag ? "--otlp-max-body-bytes" : "Xrayd.OtlpMaxBodyBytes",
                                   bytes, max, config_limits::otlp_inflate_ratio);
            }
            o.max_body_bytes = static_cast<std::size_t>(bytes);
        }
        if (o.enabled() && !c.upload.local_sink.empty()) {
            return "--otlp-address (Xrayd.OtlpAddress) and --local-sink (Xrayd.LocalSink) cannot "
                   "be combined: OTLP spans go only to X-Ray; drop one.";
        }
        return {};
    }

    // --spool-dir, --spool-max-bytes, --spool-mode, --spool-sync; "" or the error message.
    static std::string spool_settings(const CliFlags& flags, const config_file::FileValues& fv,
                                      const std::filesystem::path& file, spool::SpoolConfig& s) {
        s.dir = pick(flags.spool_dir, fv.spool_dir, std::string());
        if (flags.spool_max_bytes || fv.spool_max_bytes) {
            constexpr std::uint64_t min = config_limits::min_spool_bytes;
            constexpr std::uint64_t max = config_limits::max_spool_bytes;
            // The flag parser took only a positive value; a file value may be any int.
            const std::int64_t file_bytes = fv.spool_max_bytes.value_or(0);
            const bool negative = !flags.spool_max_bytes && file_bytes < 0;
            const std::uint64_t bytes = flags.spool_max_bytes
                                            ? *flags.spool_max_bytes
                                            : static_cast<std::uint64_t>(file_bytes);
            const std::string what =
                flags.spool_max_bytes
                    ? fmt::format("--spool-max-bytes {}", bytes)
                    : fmt::format("Xrayd.SpoolMaxBytes {} in {}", file_bytes, file.string());
            if (negative || bytes < min) {
                return fmt::format("{} is too small: the spool writes files of a few MiB, so it "
                                   "must be at least {} bytes (1 MiB).",
                                   what, min);
            }
            if (bytes > max) {
                return fmt::format("{} is too large: it must be at most {} bytes (1 PiB).", what,
                                   max);
            }
            s.max_bytes = bytes;
        }
        if (const auto name = flags.spool_mode ? flags.spool_mode : fv.spool_mode) {
            const auto mode = spool::parse_spool_mode(*name);
            if (!mode) {
                return fmt::format("{} \"{}\" is not a spool mode: use overflow or write-ahead.",
                                   flags.spool_mode ? "--spool-mode" : "Xrayd.SpoolMode", *name);
            }
            s.mode = *mode;
        }
        if (const auto name = flags.spool_sync ? flags.spool_sync : fv.spool_sync) {
            const auto sync = spool::parse_spool_sync(*name);
            if (!sync) {
                return fmt::format("{} \"{}\" is not a spool sync policy: use none, interval or "
                                   "always.",
                                   flags.spool_sync ? "--spool-sync" : "Xrayd.SpoolSync", *name);
            }
            s.sync = *sync;
        }
        return {};
    }

    const Environment& env_;
    const ConfigSources& sources_;
    std::string error_log_;   // where config errors are appended besides stderr ("" = nowhere)
    bool log_errors_ = true;  // false: never append (reload, --check-config)
};

}  // namespace

std::vector<std::filesystem::path> ConfigSources::default_config_paths() {
    return {"/etc/amazon/xray/cfg.yaml", "/etc/xrayd/cfg.yaml", "cfg.yaml",
            "github.com/aws/aws-xray-daemon/pkg/cfg.yaml"};
}

CliOutcome load_config(std::span<const std::string> args, const Environment& env,
                       const ConfigSources& sources) {
    Loader loader(env, sources);
    try {
        return loader.run(args);
    } catch (const std::exception& e) {
        return loader.error(e.what());  // allocation failure or a library surprise
    }
}

}  // namespace xrayd
