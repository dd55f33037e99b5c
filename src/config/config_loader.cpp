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
#include <xrayd/log/log_file.h>
#include <xrayd/log/logger.h>
#include <xrayd/net/udp_socket.h>
#include <xrayd_config.h>

#include "config_file.h"
#include "xrayd_settings_merge.h"

namespace xrayd {
namespace {

constexpr std::string_view level_names = "dev, debug, info, warn, error, prod";

using config_detail::pick;

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

        if (auto r = config_detail::merge_xrayd_settings(flags, fv, file, c); !r.empty()) {
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