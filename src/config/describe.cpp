// describe_config: the effective configuration printed by --check-config.
#include <xrayd/config/describe.h>

#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/format.h>

#include <xrayd/config/settings.h>

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

}  // namespace

std::string redact_url_password(std::string_view url) {
    const std::size_t scheme = url.find("://");
    const std::size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
    const std::size_t end = url.find_first_of("/?#", start);
    const std::string_view authority =
        url.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
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
    out += "# xrayd effective configuration: flag > file > environment > default.\n";
    out += fmt::format("# Configuration file: {}\n",
                       c.daemon.config_path.empty() ? "(none found)" : c.daemon.config_path);
    // The rows with a cfg.yaml key, in table (cfg.yaml) order; a dotted key goes under its
    // group's heading. Go's Version and the NO_PROXY list come before xrayd's own group.
    std::string_view open_group;
    bool version_shown = false;
    const auto show_version = [&] {
        out += "Version: 2\n";
        out += fmt::format("# Hosts bypassing the proxy (NO_PROXY > no_proxy): {}\n",
                           c.transport.no_proxy.empty() ? "(none)" : c.transport.no_proxy);
        version_shown = true;
    };
    for (const Setting& row : settings()) {
        if (row.key.empty() || row.describe == nullptr) {
            continue;
        }
        const std::size_t dot = row.key.find('.');
        const std::string_view group = dot == std::string_view::npos ? "" : row.key.substr(0, dot);
        if (group == "Xrayd" && !version_shown) {
            show_version();
        }
        if (group != open_group && !group.empty()) {
            out += fmt::format("{}:\n", group);
        }
        open_group = group;
        const std::string_view name = group.empty() ? row.key : row.key.substr(dot + 1);
        out += fmt::format("{}{}: {}", group.empty() ? "" : "  ", name, row.describe(c, row));
        if (!row.flag.empty()) {
            out += fmt::format("  # {}{}{}", row.short_flag.empty() ? "--" : "-",
                               row.short_flag.empty() ? row.flag : row.short_flag, row.note);
        }
        out.push_back('\n');
    }
    if (!version_shown) {
        show_version();
    }
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
