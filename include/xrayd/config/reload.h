// SIGHUP reload: load the configuration again and decide whether it can replace the running one.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <xrayd/common/environment.h>
#include <xrayd/common/result.h>
#include <xrayd/config/config.h>
#include <xrayd/config/config_loader.h>

namespace xrayd {

// A configuration that may replace the running one.
struct ConfigReload {
    Config next;
    // One line per setting that changed, e.g. "Logging.LogLevel: info -> debug"; empty when
    // nothing changed. Only settings listed by is_reloadable_setting() can appear here.
    std::vector<std::string> changes;
};

// The settings a running daemon can take over without a restart (cfg.yaml key spelling):
// Logging.LogLevel, Concurrency, Xrayd.Linger, Xrayd.RequestTimeout, Xrayd.RetryBudget,
// Xrayd.ProxyForwardAll (the proxy allow-list), Xrayd.ReadyFailureThreshold,
// Xrayd.SummaryInterval. Everything else (addresses, region, memory, credentials, files, ...)
// needs a restart.
[[nodiscard]] bool is_reloadable_setting(std::string_view key) noexcept;

// Runs the loader again on the start-up `args` and `env` (the file is read afresh) and compares
// the result with `current`. Success: the new Config and the list of changes, all reloadable.
// Failure (the caller keeps `current`): every reason, either the loader's error for an invalid
// configuration (its text without the time/level prefix) or one line per changed setting that
// needs a restart ("Socket.UDPAddress: 127.0.0.1:2000 -> 0.0.0.0:2000 (needs a restart)").
// Never appends to the log file (the caller logs). Control thread only: reads files, may
// resolve nothing over the network. Never throws.
[[nodiscard]] Result<ConfigReload, std::vector<std::string>> reload_config(
    std::span<const std::string> args, const Environment& env, const Config& current,
    ConfigSources sources = {});

}  // namespace xrayd
