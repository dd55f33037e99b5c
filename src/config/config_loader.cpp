// load_config: flags, cfg.yaml and environment merged into one Config, with the Go daemon's
// precedence, messages and exit codes.
#include <xrayd/config/config_loader.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <limits>

#include <fmt/format.h>

#include <xrayd/config/ca_bundle.h>
#include <xrayd/config/cli_flags.h>
#include <xrayd/config/describe.h>
#include <xrayd/net/udp_socket.h>
#include <xrayd/log/log_file.h>
#include <xrayd/log/logger.h>
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
        address("UDP address (-b / Socket.UDPAddress)", c.udp_address);
        if (c.local_sink.empty()) {
            address("TCP address (-t / Socket.TCPAddress)", c.tcp_address);
        }
        if (c.admin_enabled()) {
            address("admin address (--admin-address / Xrayd.AdminAddress)", c.admin_address);
        }
        if (!c.ca_bundle.empty() && ::access(c.ca_bundle.c_str(), R_OK) != 0) {
            errors.push_back(fmt::format("CA bundle (--ca-bundle / Xrayd.CABundle) {}: {}",
                                         c.ca_bundle, std::strerror(errno)));
        }
        if (!c.local_sink.empty() && c.local_sink != "-") {
            std::filesystem::path dir = std::filesystem::path(c.local_sink).parent_path();
            if (dir.empty()) {
                dir = ".";
            }
            if (::access(dir.c_str(), W_OK) != 0) {
                errors.push_back(fmt::format("local sink (--local-sink / Xrayd.LocalSink) "
                                             "directory {}: {}",
                                             dir.string(), std::strerror(errno)));
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
                if (present(candidate)) {
                    file = candidate;
                    break;
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
        c.config_path = file.string();
        c.resource_arn = pick(flags.resource_arn, fv.resource_arn, std::string());
        c.local_mode = pick(flags.local_mode, fv.local_mode, false);
        c.region = pick(flags.region, fv.region, std::string());
        c.udp_address = pick(flags.udp_address, fv.udp_address, c.udp_address);
        c.tcp_address = pick(flags.tcp_address, fv.tcp_address, c.tcp_address);
        c.role_arn = pick(flags.role_arn, fv.role_arn, std::string());
        c.log_file = pick(flags.log_file, fv.log_path, std::string());
        c.log_rotation = fv.log_rotation.value_or(true);
        c.endpoint = pick(flags.endpoint, fv.endpoint, std::string());
        c.no_verify_ssl = fv.no_verify_ssl.value_or(false);
        // From here on errors also go to the log file the daemon would have used (Go logs
        // its post-load errors, e.g. the buffer-memory one, through the configured logger).
        error_log_ = c.log_file;

        const std::string level = pick(flags.log_level, fv.log_level, std::string("prod"));
        if (auto parsed = parse_log_level(level)) {
            c.log_level = *parsed;
        } else {
            return error(fmt::format(
                "Invalid log level \"{}\" ({}). Allowed values (case-sensitive): {}.", level,
                flags.log_level ? "-l/--log-level" : "Logging.LogLevel in " + file.string(),
                level_names));
        }

        // -p > ProxyAddress (an explicit `-p ""` overrides the file, as any flag does); an
        // empty result falls back to the environment, as Go's getProxyAddress does.
        c.proxy_address = pick(flags.proxy_address, fv.proxy_address, std::string());
        if (c.proxy_address.empty()) {
            c.proxy_address = env_.get_non_empty("HTTPS_PROXY")
                                  .value_or(env_.get_non_empty("https_proxy").value_or(""));
        }
        c.no_proxy = env_.get_non_empty("NO_PROXY")
                         .value_or(env_.get_non_empty("no_proxy").value_or(std::string()));

        if (flags.concurrency) {
            c.concurrency = *flags.concurrency;
        } else if (fv.concurrency) {
            // Go accepts a negative value and then never uploads anything (spec §13.2).
            if (*fv.concurrency < 1 || *fv.concurrency > std::numeric_limits<int>::max()) {
                return error(fmt::format("Concurrency {} in {} is out of range: it must be at "
                                         "least 1.",
                                         *fv.concurrency, file.string()));
            }
            c.concurrency = static_cast<int>(*fv.concurrency);
        }

        if (auto r = xrayd_settings(flags, fv, file, c); !r.empty()) {
            return error(r);
        }
#if XRAYD_STATIC_RELEASE
        // No CA path compiled into the static build's libcurl: use the host's (ca_bundle.h).
        if (c.ca_bundle.empty()) {
            c.ca_bundle = find_ca_bundle(env_.get_non_empty("SSL_CERT_FILE")).value_or("");
        }
#endif

        std::int64_t memory_mb = pick(flags.buffer_memory_mb, fv.total_buffer_size_mb,
                                      std::int64_t{0});
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
        c.buffer_memory_mb = resolved.value();

        out.config = std::move(c);
        return out;
    }

    // xrayd's own settings; "" or the error message.
    static std::string xrayd_settings(const CliFlags& flags, const config_file::FileValues& fv,
                                      const std::filesystem::path& file, Config& c) {
        c.local_sink = pick(flags.local_sink, fv.local_sink, std::string());
        c.ca_bundle = pick(flags.ca_bundle, fv.ca_bundle, std::string());

        const auto duration = [&](const std::optional<std::chrono::milliseconds>& flag,
                                  const std::optional<std::string>& text, std::string_view key,
                                  std::chrono::milliseconds min,
                                  std::chrono::milliseconds& field) -> std::string {
            if (flag) {
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
            field = ms;
            return {};
        };
        using std::chrono::milliseconds;
        for (std::string e : {duration(flags.linger, fv.linger, "Linger", milliseconds{0},
                                       c.linger),
                              duration(flags.shutdown_timeout, fv.shutdown_timeout,
                                       "ShutdownTimeout", milliseconds{0}, c.shutdown_timeout),
                              duration(flags.request_timeout, fv.request_timeout,
                                       "RequestTimeout", milliseconds{1}, c.request_timeout),
                              duration(flags.retry_budget, fv.retry_budget, "RetryBudget",
                                       milliseconds{1}, c.retry_budget)}) {
            if (!e.empty()) {
                return e;
            }
        }

        const auto bytes = [&](const std::optional<std::uint64_t>& flag,
                               const std::optional<std::int64_t>& value, std::string_view key,
                               std::size_t& field) -> std::string {
            if (flag) {
                field = static_cast<std::size_t>(*flag);
            } else if (value) {
                if (*value < 1) {
                    return fmt::format("Xrayd.{} in {} must be a positive number of bytes, "
                                       "not {}",
                                       key, file.string(), *value);
                }
                field = static_cast<std::size_t>(*value);
            }
            return {};
        };
        if (auto e = bytes(flags.receive_buffer_bytes, fv.receive_buffer_bytes,
                           "ReceiveBufferBytes", c.receive_buffer_bytes);
            !e.empty()) {
            return e;
        }
        if (auto e = bytes(flags.max_batch_bytes, fv.max_batch_bytes, "MaxBatchBytes",
                           c.max_batch_bytes);
            !e.empty()) {
            return e;
        }
        if (flags.receivers) {
            c.receivers = *flags.receivers;
        } else if (fv.receivers) {
            if (*fv.receivers < 0 || *fv.receivers > std::numeric_limits<int>::max()) {
                return fmt::format("Xrayd.Receivers {} in {} is out of range: use 0 (one per "
                                   "CPU) or more.",
                                   *fv.receivers, file.string());
            }
            c.receivers = static_cast<int>(*fv.receivers);
        }
        if (const auto name = flags.io_backend ? flags.io_backend : fv.io_backend) {
            const auto backend = parse_io_backend(*name);
            if (!backend) {
                return fmt::format("{} \"{}\" is not a receive backend: use auto, io_uring or "
                                   "epoll.",
                                   flags.io_backend ? "--io-backend" : "Xrayd.IoBackend", *name);
            }
            c.io_backend = *backend;
        }
        c.steer_by_cpu = pick(flags.steer_by_cpu, fv.steer_by_cpu, false);
        c.pin_receivers = pick(flags.pin_receivers, fv.pin_receivers, false);
        c.proxy_forward_all = pick(flags.proxy_forward_all, fv.proxy_forward_all, false);
        c.proxy_optional = pick(flags.proxy_optional, fv.proxy_optional, false);
        if (const auto name = flags.backpressure ? flags.backpressure : fv.backpressure) {
            const auto policy = parse_backpressure(*name);
            if (!policy) {
                return fmt::format("{} \"{}\" is not a backpressure policy: use drop-newest or "
                                   "drop-oldest.",
                                   flags.backpressure ? "--backpressure" : "Xrayd.Backpressure",
                                   *name);
            }
            c.backpressure = *policy;
        }
        for (std::string e :
             {duration(flags.ready_failure_threshold, fv.ready_failure_threshold,
                       "ReadyFailureThreshold", milliseconds{1}, c.ready_failure_threshold),
              duration(flags.summary_interval, fv.summary_interval, "SummaryInterval",
                       milliseconds{0}, c.summary_interval)}) {
            if (!e.empty()) {
                return e;
            }
        }
        c.admin_address = pick(flags.admin_address, fv.admin_address, c.admin_address);
        if (c.admin_enabled()) {
            // Syntax only (a host name is resolved when the listener binds).
            const std::size_t colon = c.admin_address.rfind(':');
            if (colon == std::string::npos || colon + 1 == c.admin_address.size()) {
                return fmt::format("{} \"{}\" is not host:port or off (e.g. 127.0.0.1:2100).",
                                   flags.admin_address ? "--admin-address" : "Xrayd.AdminAddress",
                                   c.admin_address);
            }
        }
        if (flags.log_rotation_bytes) {
            c.log_rotation_bytes = *flags.log_rotation_bytes;
        }
        return {};
    }

    const Environment& env_;
    const ConfigSources& sources_;
    std::string error_log_;  // where config errors are appended besides stderr ("" = nowhere)
    bool log_errors_ = true;  // false: never append (reload, --check-config)
};

}  // namespace

std::vector<std::filesystem::path> ConfigSources::default_config_paths() {
    return {"/etc/xrayd/cfg.yaml", "/etc/amazon/xray/cfg.yaml", "cfg.yaml",
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
