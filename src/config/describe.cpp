// describe_config: the effective configuration printed by --check-config.
#include <xrayd/config/describe.h>

#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/format.h>

namespace xrayd {
namespace {

// Variables read by xrayd or the AWS credential/region/endpoint chain.
constexpr std::array<std::string_view, 24> shown_variables{
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_XRAY",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_EXECUTION_ENV",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
};

bool name_says_secret(std::string_view name) {
    std::string upper(name);
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    for (std::string_view word : {"SECRET", "TOKEN", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL"}) {
        // A file or URI naming where a secret is, is not the secret.
        if (upper.find(word) != std::string::npos && !upper.ends_with("_FILE") &&
            !upper.ends_with("_URI")) {
            return true;
        }
    }
    return false;
}

// YAML double-quoted scalar.
std::string quoted(std::string_view text) {
    std::string out = "\"";
    for (const char ch : text) {
        if (ch == '"' || ch == '\\') {
            out.push_back('\\');
            out.push_back(ch);
        } else if (static_cast<unsigned char>(ch) < 0x20) {
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(ch));
        } else {
            out.push_back(ch);
        }
    }
    out.push_back('"');
    return out;
}

std::string duration(std::chrono::milliseconds ms) {
    return fmt::format("{}ms", ms.count());
}

// The cfg.yaml spelling of a level (parse_log_level's input).
std::string_view level_name(LogLevel level) {
    switch (level) {
    case LogLevel::trace: return "dev";
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error:
    case LogLevel::critical: return "error";
    }
    return "info";
}

std::string_view yes_no(bool b) {
    return b ? "true" : "false";
}

}  // namespace

std::string redact_url_password(std::string_view url) {
    const std::size_t scheme = url.find("://");
    const std::size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
    const std::size_t end = url.find_first_of("/?#", start);
    const std::string_view authority = url.substr(start, end == std::string_view::npos
                                                             ? std::string_view::npos
                                                             : end - start);
    const std::size_t at = authority.rfind('@');
    if (at == std::string_view::npos) {
        return std::string(url);
    }
    const std::size_t colon = authority.find(':');
    if (colon == std::string_view::npos || colon > at) {
        return std::string(url);
    }
    std::string out(url.substr(0, start + colon + 1));
    out += "****";
    out += url.substr(start + at);
    return out;
}

std::string redact_environment_value(std::string_view name, std::string_view value) {
    if (name_says_secret(name)) {
        if (value.empty()) {
            return {};
        }
        return std::string(value.substr(0, std::min<std::size_t>(4, value.size() / 4))) + "****";
    }
    return redact_url_password(value);
}

std::string describe_config(const Config& c, const Environment& env) {
    std::string out;
    const auto line = [&out](std::string_view indent, std::string_view key, std::string_view value,
                             std::string_view source) {
        out += fmt::format("{}{}: {}", indent, key, value);
        if (!source.empty()) {
            out += fmt::format("  # {}", source);
        }
        out.push_back('\n');
    };
    out += "# xrayd effective configuration: flag > file > environment > default.\n";
    out += fmt::format("# Configuration file: {}\n",
                       c.config_path.empty() ? "(none found)" : c.config_path);
    line("", "TotalBufferSizeMB", std::to_string(c.buffer_memory_mb), "-m (resolved)");
    line("", "Concurrency", std::to_string(c.concurrency), "--concurrency");
    line("", "Endpoint", quoted(c.endpoint), "--endpoint; \"\" = from the region");
    line("", "Region", quoted(c.region), "-n; \"\" = environment or metadata at start-up");
    out += "Socket:\n";
    line("  ", "UDPAddress", quoted(c.udp_address), "-b");
    line("  ", "TCPAddress", quoted(c.tcp_address), "-t");
    out += "Logging:\n";
    line("  ", "LogRotation", yes_no(c.log_rotation), "");
    line("  ", "LogLevel", quoted(level_name(c.log_level)), "-l");
    line("  ", "LogPath", quoted(c.log_file), "-f; \"\" = standard output");
    line("", "LocalMode", yes_no(c.local_mode), "-o");
    line("", "ResourceARN", quoted(c.resource_arn), "-a");
    line("", "RoleARN", quoted(c.role_arn), "-r");
    line("", "NoVerifySSL", yes_no(c.no_verify_ssl), "");
    line("", "ProxyAddress", quoted(redact_url_password(c.proxy_address)),
         "-p > file > HTTPS_PROXY > https_proxy");
    line("", "Version", "2", "");
    out += fmt::format("# Hosts bypassing the proxy (NO_PROXY > no_proxy): {}\n",
                       c.no_proxy.empty() ? "(none)" : c.no_proxy);
    out += "Xrayd:\n";
    line("  ", "CABundle", quoted(c.ca_bundle), "--ca-bundle");
    line("  ", "LocalSink", quoted(c.local_sink), "--local-sink");
    line("  ", "Linger", duration(c.linger), "--linger");
    line("  ", "ShutdownTimeout", duration(c.shutdown_timeout), "--shutdown-timeout");
    line("  ", "RequestTimeout", duration(c.request_timeout), "--request-timeout");
    line("  ", "ReceiveBufferBytes", std::to_string(c.receive_buffer_bytes), "--receive-buffer");
    line("  ", "MaxBatchBytes", std::to_string(c.max_batch_bytes), "--max-batch-bytes");
    line("  ", "Receivers", std::to_string(c.receivers), "--receivers; 0 = one per CPU");
    line("  ", "IoBackend", std::string(to_string(c.io_backend)), "--io-backend");
    line("  ", "SteerByCpu", yes_no(c.steer_by_cpu), "--steer-by-cpu");
    line("  ", "PinReceivers", yes_no(c.pin_receivers), "--pin-receivers");
    line("  ", "ProxyForwardAll", yes_no(c.proxy_forward_all), "--proxy-forward-all");
    line("  ", "ProxyOptional", yes_no(c.proxy_optional), "--proxy-optional");
    line("  ", "RetryBudget", duration(c.retry_budget), "--retry-budget");
    line("  ", "Backpressure", std::string(to_string(c.backpressure)), "--backpressure");
    line("  ", "AdminAddress", quoted(c.admin_address), "--admin-address");
    line("  ", "ReadyFailureThreshold", duration(c.ready_failure_threshold),
         "--ready-failure-threshold");
    line("  ", "SummaryInterval", duration(c.summary_interval), "--summary-interval; 0 = off");
    out += "# Environment (secrets redacted):\n";
    bool any = false;
    for (std::string_view name : shown_variables) {
        if (auto value = env.get(name)) {
            out += fmt::format("#   {}={}\n", name, redact_environment_value(name, *value));
            any = true;
        }
    }
    if (!any) {
        out += "#   (none of the variables xrayd reads is set)\n";
    }
    return out;
}

}  // namespace xrayd
