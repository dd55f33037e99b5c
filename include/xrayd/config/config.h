// Config: the daemon's effective settings, immutable once loaded. Plain data: the loader
// (config_loader.h) alone knows files, environment and flags; modules take the part they need.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include <xrayd/log/logger.h>
#include <xrayd/net/io_backend.h>
#include <xrayd/queue/backpressure.h>

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
}  // namespace config_limits

// IMPORTANT: a new field must also be listed in src/config/reload.cpp (reloadable or not) and
// shown by describe_config().
struct Config {
    // --- The Go daemon's settings (flags and cfg.yaml keys, same defaults) -------------------
    std::string resource_arn;                  // -a / ResourceARN
    bool local_mode = false;                   // -o / LocalMode
    // -m / TotalBufferSizeMB. After load_config() always the resolved value (>= 3): a setting
    // <= 0 becomes 1% of RAM, cgroup-aware (config_loader.h resolve_buffer_memory_mb).
    std::int64_t buffer_memory_mb = 0;
    // -n / Region (flag > file). The environment and metadata fallbacks (AWS_REGION, ECS, IMDS)
    // belong to region resolution (aws module), not to the loader: "" here means "not given".
    std::string region;
    std::string udp_address = "127.0.0.1:2000";  // -b / Socket.UDPAddress
    std::string tcp_address = "127.0.0.1:2000";  // -t / Socket.TCPAddress
    std::string role_arn;                      // -r / RoleARN
    std::string config_path;                   // -c or the default location found ("" = none)
    std::string log_file;                      // -f / Logging.LogPath ("" = stdout)
    LogLevel log_level = LogLevel::info;       // -l / Logging.LogLevel (prod = info)
    bool log_rotation = true;                  // Logging.LogRotation
    std::string proxy_address;                 // -p / ProxyAddress > HTTPS_PROXY > https_proxy
    std::string no_proxy;                      // NO_PROXY > no_proxy (xrayd only; Go ignores it)
    int concurrency = 8;                       // Concurrency: PutTraceSegments requests in flight
    // --endpoint > Endpoint; AWS_ENDPOINT_URL_XRAY and the region's default are the aws module's.
    std::string endpoint;
    bool no_verify_ssl = false;                // NoVerifySSL

    // --- xrayd's own settings (long flags only; cfg.yaml key `Xrayd:`) -----------------------
    std::string local_sink;                    // --local-sink PATH or "-": write batches, no upload
    std::string ca_bundle;                     // --ca-bundle / Xrayd.CABundle
    // --linger / Xrayd.Linger: longest wait of a segment before its batch is sent.
    std::chrono::milliseconds linger{100};
    std::chrono::milliseconds shutdown_timeout{5000};  // --shutdown-timeout: drain deadline
    std::chrono::milliseconds request_timeout{5000};   // --request-timeout: one PutTraceSegments
    std::size_t receive_buffer_bytes = 4u << 20;  // --receive-buffer: SO_RCVBUF asked for
    std::size_t max_batch_bytes = 4u << 20;    // --max-batch-bytes: request body cap
    // --receivers / Xrayd.Receivers: receive threads (0 = one per CPU, capped).
    int receivers = 0;
    // --io-backend / Xrayd.IoBackend: auto (io_uring when the probe passes, else epoll),
    // io_uring (fail if unavailable) or epoll.
    IoBackend io_backend = IoBackend::auto_;
    // --steer-by-cpu / Xrayd.SteerByCpu: a reuseport BPF program sends each datagram to the
    // socket of the CPU it arrived on (pays off with --pin-receivers).
    bool steer_by_cpu = false;
    // --pin-receivers / Xrayd.PinReceivers: receiver thread i runs only on allowed CPU i.
    bool pin_receivers = false;
    // --proxy-forward-all / Xrayd.ProxyForwardAll: the TCP proxy forwards every X-Ray call, as
    // the Go daemon does (default: only the sampling operations).
    bool proxy_forward_all = false;
    // --proxy-optional / Xrayd.ProxyOptional: if the TCP address cannot be bound, log it and run
    // without the proxy, as the Go daemon does (default: exit 1).
    bool proxy_optional = false;
    // --retry-budget / Xrayd.RetryBudget: how long a batch may keep failing before it is given
    // up (dropped_gave_up), from its first failure.
    std::chrono::milliseconds retry_budget{std::chrono::minutes(10)};
    // --backpressure / Xrayd.Backpressure: what gives way when the memory limit is reached.
    Backpressure backpressure = Backpressure::drop_newest;
    // --log-rotation-bytes (test-only, no file key): the 50 MiB rotation size of the log file.
    std::uint64_t log_rotation_bytes = 50ull << 20;
    // --admin-address / Xrayd.AdminAddress: host:port of the admin HTTP listener (/healthz,
    // /readyz, /metrics); "off" = no listener (admin_enabled() false).
    std::string admin_address = "127.0.0.1:2100";
    // --ready-failure-threshold / Xrayd.ReadyFailureThreshold: /readyz turns 503 once uploads
    // have failed without a success for longer than this.
    std::chrono::milliseconds ready_failure_threshold{60000};
    // --summary-interval / Xrayd.SummaryInterval: period of the Info summary line (0 = off).
    std::chrono::milliseconds summary_interval{60000};

    [[nodiscard]] bool admin_enabled() const noexcept { return admin_address != "off"; }
};

}  // namespace xrayd
