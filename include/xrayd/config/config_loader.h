// The configuration loader: command line (Go flag rules), cfg.yaml (Go daemon's keys and checks),
// the proxy environment variables and the buffer-memory default, combined into one Config.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <xrayd/common/environment.h>
#include <xrayd/common/result.h>
#include <xrayd/config/config.h>

namespace xrayd {

// What main() does with the command line. Exactly one of: run with `config`, or print `out` to
// stdout and `err` to stderr and exit with `exit_code`.
//   exit 0: -h/--help (usage in `out`), -v (version line in `out`).
//   exit 2: flag error (Go's message in `err`, the usage in `out`: the Go daemon prints its usage
//           on stdout even then).
//   exit 1: configuration error: `err` holds `<time> [Error] <message>\n`, the Go daemon's line;
//           the same line has already been appended to the log file (-f, else the loaded
//           file's Logging.LogPath when the error came after loading it).
struct CliOutcome {
    std::optional<Config> config;
    int exit_code = 0;
    std::string out;
    std::string err;
    // Non-fatal findings for main() to log at Warn once the logger runs: keys ignored in a
    // default-location file (the Go daemon ignores them silently), positional arguments ignored.
    std::vector<std::string> warnings;
    // --health-check: main() asks the admin listener of config (a running daemon) and exits.
    bool health_check = false;
};

// Where the loader looks. Tests inject temporary paths; production uses the defaults.
struct ConfigSources {
    // Searched in order when no -c is given; the first that exists is used (spec §2.4).
    std::vector<std::filesystem::path> default_paths = default_config_paths();
    // Prefix for /proc/meminfo, /proc/self/cgroup and /sys/fs/cgroup (buffer-memory default).
    std::filesystem::path system_root = "/";
    // false: a configuration error is only returned, never appended to the log file (a SIGHUP
    // reload, whose caller logs it through the running logger). --check-config never appends.
    bool append_errors_to_log = true;

    // The Go daemon's /etc/amazon/xray/cfg.yaml first (a machine moving from the Go daemon
    // keeps its file, which the Go package leaves behind when xrayd's replaces it), then
    // /etc/xrayd/cfg.yaml (xrayd's own, shipped by its package), then the rest of the Go
    // daemon's list: cfg.yaml (CWD), github.com/aws/aws-xray-daemon/pkg/cfg.yaml. Later files
    // that also exist are not read; each gets a warning.
    [[nodiscard]] static std::vector<std::filesystem::path> default_config_paths();
};

// Parses `args` (argv without argv[0]) and loads the configuration. Precedence per setting:
// flag > cfg.yaml > environment (HTTPS_PROXY/https_proxy, NO_PROXY/no_proxy only) > default.
// Region and credentials are NOT resolved here (Config::region is "" unless -n/Region).
// -h and -v never read a configuration file. A file named by -c is key-validated (spec §2.2);
// a default-location file is not (unknown keys become `warnings`), but its syntax, types and
// Version are checked. Start-up only: does file I/O; never throws (errors are in the outcome).
// Thread-safe as long as nothing else changes the files it reads.
//
// --check-config: never a `config`. Valid: the effective configuration (describe_config(),
// secrets redacted) and the warnings in `out`, exit 0. Invalid: exit 1 with every error found
// in `err`, one `<time> [Error] <message>` line each: the loader stops at its first error, and
// when it passes, listen addresses, the CA bundle and the local sink's directory are checked
// too and all of their errors reported.
[[nodiscard]] CliOutcome load_config(std::span<const std::string> args, const Environment& env,
                                     const ConfigSources& sources = {});

// Memory the daemon may assume it has.
struct MemoryInfo {
    std::uint64_t host_total_bytes = 0;               // MemTotal of /proc/meminfo
    std::optional<std::uint64_t> cgroup_limit_bytes;  // lowest limit of our cgroup and ancestors
};

// Reads `<root>/proc/meminfo` and the memory limit of this process's cgroup: v2 `memory.max`
// under `<root>/sys/fs/cgroup/<path from 0::>` and v1 `memory.limit_in_bytes` under
// `<root>/sys/fs/cgroup/memory/<path>`, walking up to the hierarchy root (a limit on a parent
// slice applies too; inside a cgroup namespace the path is "/" and the root file is ours).
// Error text when /proc/meminfo is unreadable. Start-up only.
[[nodiscard]] Result<MemoryInfo, std::string> read_memory_info(const std::filesystem::path& root);

// The Go daemon's rule (spec §4.1), cgroup-aware: `configured_mb > 0` is used as is; otherwise
// 1% of min(host RAM, cgroup limit), floored to whole MB. Below 3 MB the error is the Go text
// `Not enough Buffers Memory Allocated. Min Buffers Memory required: 3 MB.`
[[nodiscard]] Result<std::int64_t, std::string> resolve_buffer_memory_mb(std::int64_t configured_mb,
                                                                         const MemoryInfo& memory);

}  // namespace xrayd
