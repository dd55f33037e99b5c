// reload_config: which settings changed, and whether a running daemon can take them.
#include <xrayd/config/reload.h>

#include <array>
#include <exception>
#include <functional>

#include <fmt/format.h>

namespace xrayd {
namespace {

struct Setting {
    std::string_view key;
    bool reloadable;
    std::function<std::string(const Config&)> show;
};

std::string ms(std::chrono::milliseconds d) {
    return fmt::format("{}ms", d.count());
}

std::string yes_no(bool b) {
    return b ? "true" : "false";
}

// Every Config field once. IMPORTANT: a field missing here is taken over on reload without
// being compared, whatever it needs: add each new Config field.
const std::array<Setting, 35>& settings() {
    static const std::array<Setting, 35> table{{
        {"Logging.LogLevel", true,
         [](const Config& c) { return std::string(level_label(c.log_level)); }},
        {"Concurrency", true, [](const Config& c) { return std::to_string(c.concurrency); }},
        {"Xrayd.Linger", true, [](const Config& c) { return ms(c.linger); }},
        {"Xrayd.RequestTimeout", true, [](const Config& c) { return ms(c.request_timeout); }},
        {"Xrayd.RetryBudget", true, [](const Config& c) { return ms(c.retry_budget); }},
        {"Xrayd.Backpressure", false,
         [](const Config& c) { return std::string(to_string(c.backpressure)); }},
        {"Xrayd.ProxyForwardAll", true,
         [](const Config& c) { return yes_no(c.proxy_forward_all); }},
        {"Xrayd.ReadyFailureThreshold", true,
         [](const Config& c) { return ms(c.ready_failure_threshold); }},
        {"Xrayd.SummaryInterval", true, [](const Config& c) { return ms(c.summary_interval); }},
        {"ResourceARN", false, [](const Config& c) { return c.resource_arn; }},
        {"LocalMode", false, [](const Config& c) { return yes_no(c.local_mode); }},
        {"TotalBufferSizeMB", false,
         [](const Config& c) { return std::to_string(c.buffer_memory_mb); }},
        {"Region", false, [](const Config& c) { return c.region; }},
        {"Socket.UDPAddress", false, [](const Config& c) { return c.udp_address; }},
        {"Socket.TCPAddress", false, [](const Config& c) { return c.tcp_address; }},
        {"RoleARN", false, [](const Config& c) { return c.role_arn; }},
        {"configuration file", false, [](const Config& c) { return c.config_path; }},
        {"Logging.LogPath", false, [](const Config& c) { return c.log_file; }},
        {"Logging.LogRotation", false, [](const Config& c) { return yes_no(c.log_rotation); }},
        {"ProxyAddress", false, [](const Config& c) { return c.proxy_address; }},
        {"NO_PROXY", false, [](const Config& c) { return c.no_proxy; }},
        {"Endpoint", false, [](const Config& c) { return c.endpoint; }},
        {"NoVerifySSL", false, [](const Config& c) { return yes_no(c.no_verify_ssl); }},
        {"Xrayd.LocalSink", false, [](const Config& c) { return c.local_sink; }},
        {"Xrayd.CABundle", false, [](const Config& c) { return c.ca_bundle; }},
        {"Xrayd.ShutdownTimeout", false, [](const Config& c) { return ms(c.shutdown_timeout); }},
        {"Xrayd.ReceiveBufferBytes", false,
         [](const Config& c) { return std::to_string(c.receive_buffer_bytes); }},
        {"Xrayd.MaxBatchBytes", false,
         [](const Config& c) { return std::to_string(c.max_batch_bytes); }},
        {"Xrayd.Receivers", false, [](const Config& c) { return std::to_string(c.receivers); }},
        {"Xrayd.IoBackend", false,
         [](const Config& c) { return std::string(to_string(c.io_backend)); }},
        {"Xrayd.SteerByCpu", false, [](const Config& c) { return yes_no(c.steer_by_cpu); }},
        {"Xrayd.PinReceivers", false, [](const Config& c) { return yes_no(c.pin_receivers); }},
        {"Xrayd.ProxyOptional", false, [](const Config& c) { return yes_no(c.proxy_optional); }},
        {"--log-rotation-bytes", false,
         [](const Config& c) { return std::to_string(c.log_rotation_bytes); }},
        {"Xrayd.AdminAddress", false, [](const Config& c) { return c.admin_address; }},
    }};
    return table;
}

// The loader's error line without its "<time> [Error] " prefix and trailing newline.
std::string strip_log_prefix(std::string text) {
    if (const std::size_t at = text.find("[Error] "); at != std::string::npos) {
        text.erase(0, at + 8);
    }
    while (!text.empty() && text.back() == '\n') {
        text.pop_back();
    }
    return text;
}

}  // namespace

bool is_reloadable_setting(std::string_view key) noexcept {
    for (const Setting& s : settings()) {
        if (s.key == key) {
            return s.reloadable;
        }
    }
    return false;
}

Result<ConfigReload, std::vector<std::string>> reload_config(std::span<const std::string> args,
                                                             const Environment& env,
                                                             const Config& current,
                                                             ConfigSources sources) {
    try {
        sources.append_errors_to_log = false;
        CliOutcome outcome = load_config(args, env, sources);
        if (!outcome.config) {
            std::vector<std::string> errors;
            std::string err = outcome.err.empty() ? outcome.out : outcome.err;
            std::size_t start = 0;
            while (start < err.size()) {
                std::size_t end = err.find('\n', start);
                if (end == std::string::npos) {
                    end = err.size();
                }
                // Lines starting with a time stamp are errors; the rest continue the previous.
                std::string line = err.substr(start, end - start);
                if (line.find(" [Error] ") != std::string::npos || errors.empty()) {
                    errors.push_back(strip_log_prefix(std::move(line)));
                } else {
                    errors.back() += "\n" + line;
                }
                start = end + 1;
            }
            if (errors.empty()) {
                errors.emplace_back("the configuration could not be loaded");
            }
            return fail(std::move(errors));
        }
        ConfigReload reload{std::move(*outcome.config), {}};
        std::vector<std::string> refused;
        for (const Setting& s : settings()) {
            const auto shown = [](std::string v) { return v.empty() ? std::string("\"\"") : v; };
            const std::string before = shown(s.show(current));
            const std::string after = shown(s.show(reload.next));
            if (before == after) {
                continue;
            }
            if (s.reloadable) {
                reload.changes.push_back(fmt::format("{}: {} -> {}", s.key, before, after));
            } else {
                refused.push_back(
                    fmt::format("{}: {} -> {} (needs a restart)", s.key, before, after));
            }
        }
        if (!refused.empty()) {
            return fail(std::move(refused));
        }
        return reload;
    } catch (const std::exception& e) {
        return fail(std::vector<std::string>{e.what()});
    }
}

}  // namespace xrayd
