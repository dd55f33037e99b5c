// merge_xrayd_settings: xrayd's own settings (the Xrayd: section of cfg.yaml, and their flags)
// merged into a Config and checked, as opposed to the Go daemon's settings (config_loader.cpp).
#include "xrayd_settings_merge.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include <xrayd/config/settings.h>
#include <xrayd/net/io_backend.h>
#include <xrayd/queue/backpressure.h>
#include <xrayd/spool/spool_options.h>

namespace xrayd::config_detail {
namespace {

// The long flag of an `Xrayd.<key>` file setting, for messages about the flag.
std::string_view flag_name(std::string_view key) {
    const Setting* row = find_setting_by_key("Xrayd." + std::string(key));
    return row != nullptr && !row->flag.empty() ? row->flag : key;
}

// Syntax only: a host name is resolved when the listener binds.
bool is_host_port(std::string_view address) {
    const std::size_t colon = address.rfind(':');
    return colon != std::string_view::npos && colon + 1 != address.size();
}

// --otlp-address, --otlp-endpoint, --otlp-max-body-bytes; "" or the error message.
std::string otlp_settings(const CliFlags& flags, const config_file::FileValues& fv,
                          const std::filesystem::path& file, Config& c) {
    OtlpConfig& o = c.otlp;
    o.address = pick(flags.otlp_address, fv.otlp_address, o.address);
    if (o.enabled() && !is_host_port(o.address)) {
        return fmt::format("{} \"{}\" is not host:port or off (e.g. 127.0.0.1:4318).",
                           flags.otlp_address ? "--otlp-address" : "Xrayd.OtlpAddress", o.address);
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
std::string spool_settings(const CliFlags& flags, const config_file::FileValues& fv,
                           const std::filesystem::path& file, spool::SpoolConfig& s) {
    s.dir = pick(flags.spool_dir, fv.spool_dir, std::string());
    if (flags.spool_max_bytes || fv.spool_max_bytes) {
        constexpr std::uint64_t min = config_limits::min_spool_bytes;
        constexpr std::uint64_t max = config_limits::max_spool_bytes;
        // The flag parser took only a positive value; a file value may be any int.
        const std::int64_t file_bytes = fv.spool_max_bytes.value_or(0);
        const bool negative = !flags.spool_max_bytes && file_bytes < 0;
        const std::uint64_t bytes =
            flags.spool_max_bytes ? *flags.spool_max_bytes : static_cast<std::uint64_t>(file_bytes);
        const std::string what = flags.spool_max_bytes ? fmt::format("--spool-max-bytes {}", bytes)
                                                       : fmt::format("Xrayd.SpoolMaxBytes {} in {}",
                                                                     file_bytes, file.string());
        if (negative || bytes < min) {
            return fmt::format("{} is too small: the spool writes files of a few MiB, so it "
                               "must be at least {} bytes (1 MiB).",
                               what, min);
        }
        if (bytes > max) {
            return fmt::format("{} is too large: it must be at most {} bytes (1 PiB).", what, max);
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

}  // namespace

// xrayd's own settings; "" or the error message.
std::string merge_xrayd_settings(const CliFlags& flags, const config_file::FileValues& fv,
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
          duration(flags.shutdown_timeout, fv.shutdown_timeout, "ShutdownTimeout", milliseconds{0},
                   c.daemon.shutdown_timeout),
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
    if (auto e = bytes(flags.receive_buffer_bytes, fv.receive_buffer_bytes, "ReceiveBufferBytes",
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
                               flags.backpressure ? "--backpressure" : "Xrayd.Backpressure", *name);
        }
        c.queue.backpressure = *policy;
    }
    if (auto e = spool_settings(flags, fv, file, c.spool); !e.empty()) {
        return e;
    }
    for (std::string e :
         {duration(flags.ready_failure_threshold, fv.ready_failure_threshold,
                   "ReadyFailureThreshold", milliseconds{1}, c.admin.ready_failure_threshold),
          duration(flags.summary_interval, fv.summary_interval, "SummaryInterval", milliseconds{0},
                   c.admin.summary_interval)}) {
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

}  // namespace xrayd::config_detail
