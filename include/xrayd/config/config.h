// Config: the daemon's effective settings, immutable once loaded. Plain data: the loader
// (config_loader.h) alone knows files, environment and flags; modules take the part they need.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include <xrayd/log/logger.h>

namespace xrayd {

struct Config {
    // --- The Go daemon's settings (flags and cfg.yaml keys, same defaults) -------------------
    std::string resource_arn;                  // -a / ResourceARN
    bool local_mode = false;                   // -o / LocalMode
    std::int64_t buffer_memory_mb = 0;         // -m / TotalBufferSizeMB; <= 0: 1% of RAM (cgroup-aware)
    std::string region;                        // -n / Region (flag > file > AWS_REGION > AWS_DEFAULT_REGION)
    std::string udp_address = "127.0.0.1:2000";  // -b / Socket.UDPAddress
    std::string tcp_address = "127.0.0.1:2000";  // -t / Socket.TCPAddress
    std::string role_arn;                      // -r / RoleARN
    std::string config_path;                   // -c: the file in effect ("" = none)
    std::string log_file;                      // -f / Logging.LogPath ("" = stdout)
    LogLevel log_level = LogLevel::info;       // -l / Logging.LogLevel (prod = info)
    bool log_rotation = true;                  // Logging.LogRotation
    std::string proxy_address;                 // -p / ProxyAddress > HTTPS_PROXY
    int concurrency = 8;                       // Concurrency: PutTraceSegments requests in flight
    std::string endpoint;                      // --endpoint / Endpoint / AWS_ENDPOINT_URL_XRAY
    bool no_verify_ssl = false;                // NoVerifySSL

    // --- xrayd's own settings (long flags only; cfg.yaml key `Xrayd:`) -----------------------
    std::string local_sink;                    // --local-sink PATH or "-": write batches, no upload
    std::string ca_bundle;                     // --ca-bundle / CABundle
    std::chrono::milliseconds linger{100};     // --linger: max wait of a segment before its batch flushes
    std::chrono::milliseconds shutdown_timeout{5000};  // --shutdown-timeout: drain deadline
    std::chrono::milliseconds request_timeout{5000};   // --request-timeout per PutTraceSegments
    std::size_t receive_buffer_bytes = 4u << 20;  // --receive-buffer: SO_RCVBUF asked for
    std::size_t max_batch_bytes = 4u << 20;    // --max-batch-bytes: request body cap
    int receivers = 0;                         // --receivers: receive threads (0 = one per CPU, capped)
    std::uint64_t log_rotation_bytes = 50ull << 20;  // test-only override of the 50 MiB rotation size
};

}  // namespace xrayd
