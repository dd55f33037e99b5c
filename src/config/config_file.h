// cfg.yaml reading, private to the config module: the Go daemon's key validation (spec §2.2) and
// its yaml.v2 decoding rules (spec §2.3), on top of yaml-cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <xrayd/common/result.h>

namespace xrayd::config_file {

// The values a file sets, after the Go daemon's default filling: a string that is "" and an
// int that is 0 count as absent (so `Concurrency: 0` means 8), a null bool counts as absent.
// Xrayd.* values are kept as written (their checks are the loader's).
struct FileValues {
    std::optional<std::int64_t> total_buffer_size_mb;
    std::optional<std::int64_t> concurrency;
    std::optional<std::string> endpoint;
    std::optional<std::string> region;
    std::optional<std::string> udp_address;
    std::optional<std::string> tcp_address;
    std::optional<bool> log_rotation;
    std::optional<std::string> log_level;
    std::optional<std::string> log_path;
    std::optional<bool> local_mode;
    std::optional<std::string> resource_arn;
    std::optional<std::string> role_arn;
    std::optional<bool> no_verify_ssl;
    std::optional<std::string> proxy_address;
    std::int64_t version = 0;

    std::optional<std::string> ca_bundle;
    std::optional<std::string> local_sink;
    std::optional<std::string> linger;            // Go duration text
    std::optional<std::string> shutdown_timeout;  // Go duration text
    std::optional<std::string> request_timeout;   // Go duration text
    std::optional<std::int64_t> receive_buffer_bytes;
    std::optional<std::int64_t> max_batch_bytes;
    std::optional<std::int64_t> receivers;
    std::optional<std::string> io_backend;
    std::optional<bool> steer_by_cpu;
    std::optional<bool> pin_receivers;
    std::optional<bool> proxy_forward_all;
    std::optional<bool> proxy_optional;
    std::optional<std::string> retry_budget;  // Go duration text
    std::optional<std::string> backpressure;
    std::optional<std::string> admin_address;
    std::optional<std::string> ready_failure_threshold;  // Go duration text
    std::optional<std::string> summary_interval;         // Go duration text
};

// The outcome of loading one file. `error` is the complete message the Go daemon logs (e.g.
// `Error occur when using config flag: open x: no such file or directory`).
struct Loaded {
    FileValues values;
    std::vector<std::string> unknown_keys;  // key paths that no setting uses, in file order
    // The file has no Version key and every key in it is a valid Version 2 key, so it is read as
    // Version 2 (the Go daemon refuses it: "Config Version is missing." with -c, "Config
    // Version Setting is not correct." from a default location); the loader warns.
    bool version_assumed = false;
};

// Reads, (when `validate_keys`) key-validates, decodes and version-checks `path`. A file
// without Version is accepted as Version 2 when every key is a valid one (version_assumed).
[[nodiscard]] Result<Loaded, std::string> load(const std::filesystem::path& path,
                                               bool validate_keys);

}  // namespace xrayd::config_file
