// Config: the daemon's effective settings, immutable once loaded. Plain data in one sub-struct
// per module: the loader (config_loader.h) alone knows files, environment and flags; each module
// takes its part by const reference. Every member is a row of the settings table (settings.h),
// which gives its flag, cfg.yaml key, default, help line and whether SIGHUP may change it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include <xrayd/http/transport.h>
#include <xrayd/log/logger.h>
#include <xrayd/net/io_backend.h>
#include <xrayd/queue/backpressure.h>
#include <xrayd/spool/spool_options.h>

namespace xrayd {

// The largest values the loader accepts: past them a value no longer fits what it feeds (a byte
// count shifted from MB, a time point plus a duration, an int the kernel takes) or asks for
// more than any machine has. The loader refuses them with a message naming the option.
namespace config_limits {
// -m: MB << 20 must fit a size_t with room for the budget's own sums (used + headroom).
inline constexpr std::int64_t max_buffer_memory_mb = std::int64_t{1} << 40;
// Every duration: steady-clock time points (ns since boot) plus this cannot overflow.
inline constexpr std::chrono::milliseconds max_duration{std::chrono::hours(24 * 365)};
// SO_RCVBUF is an int the kernel doubles; a request body over 1 GiB is no request X-Ray takes.
inline constexpr std::uint64_t max_receive_buffer_bytes = 1u << 30;
inline constexpr std::uint64_t max_batch_bytes = 1u << 30;
// Each request in flight and each receiver holds a handle, a socket or a thread up front.
inline constexpr int max_concurrency = 1024;
inline constexpr int max_receivers = 1024;
// --spool-max-bytes: the spool writes files of a few MiB, so a quota under 1 MiB cannot hold
// one; past 1 PiB the number is a typo, not a disk.
inline constexpr std::uint64_t min_spool_bytes = std::uint64_t{1} << 20;
inline constexpr std::uint64_t max_spool_bytes = std::uint64_t{1} << 50;
// --otlp-max-body-bytes: a body is held whole while it is read; a gzip one may inflate to
// otlp_inflate_ratio times its size (the receiver's limit on inflated bytes).
inline constexpr std::uint64_t max_otlp_body_bytes = std::uint64_t{64} << 20;
inline constexpr std::uint64_t otlp_inflate_ratio = 4;
}  // namespace config_limits

// Who the daemon is and where it sends (aws module: region, credentials, endpoint).
struct AwsConfig {
    std::string resource_arn;  // -a / ResourceARN
    bool local_mode = false;   // -o / LocalMode
    // -n / Region (flag > file). The environment and metadata fallbacks (AWS_REGION, ECS, IMDS)
    // belong to region resolution (aws module), not to the loader: "" here means "not given".
    std::string region;
    std::string role_arn;  // -r / RoleARN
    // --endpoint > Endpoint; AWS_ENDPOINT_URL_XRAY and the region's default are the aws module's.
    std::string endpoint;
};

// The UDP receive side (net module).
struct NetConfig {
    std::string udp_address = "127.0.0.1:2000";   // -b / Socket.UDPAddress
    std::size_t receive_buffer_bytes = 4u << 20;  // --receive-buffer: SO_RCVBUF asked for
    int receivers = 0;  // --receivers / Xrayd.Receivers: receive threads (0 = one per CPU)
    // --io-backend / Xrayd.IoBackend: auto (io_uring when the probe passes, else epoll),
    // io_uring (fail if unavailable) or epoll.
    IoBackend io_backend = IoBackend::auto_;
    // --steer-by-cpu / Xrayd.SteerByCpu: a reuseport BPF program sends each datagram to the
    // socket of the CPU it arrived on (pays off with --pin-receivers).
    bool steer_by_cpu = false;
    bool pin_receivers = false;  // --pin-receivers: receiver thread i runs only on CPU i
};

// Batching (batch module).
struct BatchConfig {
    // --linger / Xrayd.Linger: longest wait of a segment before its batch is sent.
    std::chrono::milliseconds linger{100};
    std::size_t max_batch_bytes = 4u << 20;  // --max-batch-bytes: request body cap
};

// The memory budget of buffered segments (queue module).
struct QueueConfig {
    // -m / TotalBufferSizeMB. After load_config() always the resolved value (>= 3): a setting
    // <= 0 becomes 1% of RAM, cgroup-aware (config_loader.h resolve_buffer_memory_mb).
    std::int64_t buffer_memory_mb = 0;
    // --backpressure / Xrayd.Backpressure: what gives way when the memory limit is reached.
    Backpressure backpressure = Backpressure::drop_newest;
};

// PutTraceSegments (upload module).
struct UploadConfig {
    int concurrency = 8;  // --concurrency / Concurrency: requests in flight
    std::chrono::milliseconds request_timeout{5000};  // --request-timeout: one request
    // --retry-budget / Xrayd.RetryBudget: how long a batch may keep failing before it is given
    // up (dropped_gave_up), from its first failure.
    std::chrono::milliseconds retry_budget{std::chrono::minutes(10)};
    std::string local_sink;  // --local-sink PATH or "-": write batches, no upload
};

// The TCP sampling proxy (proxy module).
struct ProxyConfig {
    std::string tcp_address = "127.0.0.1:2000";  // -t / Socket.TCPAddress
    // --proxy-forward-all / Xrayd.ProxyForwardAll: forward every X-Ray call, as the Go daemon
    // does (default: only the sampling operations).
    bool forward_all = false;
    // --proxy-optional / Xrayd.ProxyOptional: if the TCP address cannot be bound, log it and run
    // without the proxy, as the Go daemon does (default: exit 1).
    bool optional = false;
};

// The OTLP/HTTP receiver and its exporter to X-Ray's /v1/traces (otlp module).
struct OtlpConfig {
    // --otlp-address / Xrayd.OtlpAddress: host:port of the OTLP/HTTP listener; "off" (the
    // default, so that a drop-in install takes no port the Go daemon did not) = none.
    std::string address = "off";
    // --otlp-endpoint / Xrayd.OtlpEndpoint: the URL OTLP requests are posted to; "" = the X-Ray
    // endpoint (resolved as for segments) + /v1/traces.
    std::string endpoint;
    // --otlp-max-body-bytes / Xrayd.OtlpMaxBodyBytes: a request body (as received, compressed
    // or not) larger than this is answered 413.
    std::size_t max_body_bytes = 4u << 20;

    [[nodiscard]] bool enabled() const noexcept { return address != "off"; }
};

// The admin HTTP listener and the periodic summary (admin module).
struct AdminConfig {
    // --admin-address / Xrayd.AdminAddress: host:port of /healthz, /readyz, /metrics; "off" =
    // no listener (enabled() false).
    std::string address = "127.0.0.1:2100";
    // --ready-failure-threshold: /readyz turns 503 once uploads have failed without a success
    // for longer than this.
    std::chrono::milliseconds ready_failure_threshold{60000};
    // --summary-interval / Xrayd.SummaryInterval: period of the Info summary line (0 = off).
    std::chrono::milliseconds summary_interval{60000};

    [[nodiscard]] bool enabled() const noexcept { return address != "off"; }
};

// Logging (log module).
struct LogConfig {
    std::string file;                 // -f / Logging.LogPath ("" = stdout)
    LogLevel level = LogLevel::info;  // -l / Logging.LogLevel (prod = info)
    bool rotation = true;             // Logging.LogRotation
    // --log-rotation-bytes (test-only, no file key): the 50 MiB rotation size of the log file.
    std::uint64_t rotation_bytes = 50ull << 20;
};

// The daemon itself (daemon.cpp, main.cpp).
struct DaemonConfig {
    std::string config_path;  // -c or the default location found ("" = none)
    std::chrono::milliseconds shutdown_timeout{5000};  // --shutdown-timeout: drain deadline
};

// IMPORTANT: a member of a sub-struct must have its row in the settings table (settings.h);
// src/config/settings.cpp counts both and does not compile when they differ.
struct Config {
    AwsConfig aws;
    NetConfig net;
    BatchConfig batch;
    QueueConfig queue;
    // --spool-dir, --spool-max-bytes, --spool-mode, --spool-sync (Xrayd.Spool*): the disk spool.
    spool::SpoolConfig spool;
    UploadConfig upload;
    // -p / ProxyAddress > HTTPS_PROXY > https_proxy, NO_PROXY > no_proxy, --ca-bundle /
    // Xrayd.CABundle, NoVerifySSL. Its timeouts and User-Agent are not settings: each client
    // sets its own on its copy.
    TransportOptions transport;
    ProxyConfig proxy;
    OtlpConfig otlp;
    AdminConfig admin;
    LogConfig log;
    DaemonConfig daemon;
};

}  // namespace xrayd
