// Partitions and the X-Ray / STS endpoint resolver (the services' endpoint rule sets).
#include <xrayd/aws/endpoint.h>

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/log/remote_text.h>

#include "string_util.h"

namespace xrayd {

namespace {

struct PartitionRule {
    Partition partition;
    std::array<std::string_view, 9> prefixes;  // first label(s) of its regions; "" = unused
    std::string_view global_region;            // the partition's pseudo-region, e.g. aws-global
};

// From the SDKs' partitions.json (regionRegex, dnsSuffix, dualStackDnsSuffix, supportsFIPS,
// supportsDualStack). The "aws" entry is first: unknown regions fall back to it.
constexpr std::array<PartitionRule, 8> partitions = {{
    {{"aws", "amazonaws.com", "api.aws", true, true, "us-east-1"},
     {"us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"},
     "aws-global"},
    {{"aws-cn", "amazonaws.com.cn", "api.amazonwebservices.com.cn", true, true, "cn-north-1"},
     {"cn"},
     "aws-cn-global"},
    {{"aws-us-gov", "amazonaws.com", "api.aws", true, true, "us-gov-west-1"},
     {"us-gov"},
     "aws-us-gov-global"},
    {{"aws-iso", "c2s.ic.gov", "c2s.ic.gov", true, false, "us-iso-east-1"},
     {"us-iso"},
     "aws-iso-global"},
    {{"aws-iso-b", "sc2s.sgov.gov", "sc2s.sgov.gov", true, false, "us-isob-east-1"},
     {"us-isob"},
     "aws-iso-b-global"},
    {{"aws-iso-e", "cloud.adc-e.uk", "cloud.adc-e.uk", true, false, "eu-isoe-west-1"},
     {"eu-isoe"},
     "aws-iso-e-global"},
    {{"aws-iso-f", "csp.hci.ic.gov", "csp.hci.ic.gov", true, false, "us-isof-south-1"},
     {"us-isof"},
     "aws-iso-f-global"},
    {{"aws-eusc", "amazonaws.eu", "api.amazonwebservices.eu", true, true, "eusc-de-east-1"},
     {"eusc-de"},
     "aws-eusc-global"},
}};

bool is_word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// `region` == prefix "-" \w+ "-" \d+ (the shape of every partition's regionRegex).
bool matches(std::string_view region, std::string_view prefix) {
    if (prefix.empty() || region.size() <= prefix.size() + 1 ||
        region.substr(0, prefix.size()) != prefix || region[prefix.size()] != '-') {
        return false;
    }
    std::string_view rest = region.substr(prefix.size() + 1);
    const std::size_t dash = rest.find('-');
    if (dash == 0 || dash == std::string_view::npos) {
        return false;
    }
    for (const char c : rest.substr(0, dash)) {
        if (!is_word_char(c)) {
            return false;
        }
    }
    const std::string_view digits = rest.substr(dash + 1);
    if (digits.empty()) {
        return false;
    }
    for (const char c : digits) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    return true;
}

bool is_true(const Environment& env, std::string_view name) {
    const auto v = env.get_non_empty(name);
    return v && aws_detail::to_lower(aws_detail::trim(*v)) == "true";
}

bool has_control_or_space(std::string_view s) {
    return std::any_of(s.begin(), s.end(),
                       [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; });
}

// The endpoint rule sets' isValidHostLabel(Region): the region becomes part of a host name and
// of the signature's credential scope (a header), so nothing else may pass.
bool valid_region(std::string_view region) {
    return !region.empty() && region.size() <= 63 && region.front() != '-' &&
           std::all_of(region.begin(), region.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-';
           });
}

Result<std::string, std::string> normalize_custom(std::string_view url, std::string_view source) {
    if (url.substr(0, 8) != "https://" && url.substr(0, 7) != "http://") {
        return fail(fmt::format(
            "Endpoint \"{}\" (from {}) has no scheme: write it as https://host or http://host:port",
            url, source));
    }
    std::string out(url);
    while (!out.empty() && out.back() == '/') {
        out.pop_back();
    }
    // User info, a query, a fragment or a control byte would move the request (and the signed
    // headers) elsewhere or split a header line.
    const std::string_view rest = std::string_view(out).substr(out.find("://") + 3);
    const std::string_view authority = rest.substr(0, rest.find('/'));
    if (authority.empty() || authority.find_first_of("@\\") != std::string_view::npos ||
        out.find_first_of("?#") != std::string::npos || has_control_or_space(out)) {
        return fail(fmt::format("Endpoint {} (from {}) is not a plain http(s)://host[:port][/path] "
                                "URL: no user info, query, fragment, space or control character",
                                RemoteText{url}, source));
    }
    return out;
}

}  // namespace

const Partition& partition_of(std::string_view region) noexcept {
    for (const auto& rule : partitions) {
        if (region == rule.global_region) {
            return rule.partition;
        }
    }
    // The more specific prefixes ("us-gov", "us-iso") can never match the "aws" shape
    // ("us-" + one word + "-" + digits), so the order of the checks does not matter.
    for (const auto& rule : partitions) {
        for (const auto prefix : rule.prefixes) {
            if (matches(region, prefix)) {
                return rule.partition;
            }
        }
    }
    return partitions[0].partition;
}

EndpointSettings EndpointSettings::from_environment(std::string_view configured_xray,
                                                    const Environment& env) {
    EndpointSettings s;
    s.configured_xray = std::string(configured_xray);
    s.use_fips = is_true(env, "AWS_USE_FIPS_ENDPOINT");
    s.use_dualstack = is_true(env, "AWS_USE_DUALSTACK_ENDPOINT");
    s.ignore_configured_endpoints = is_true(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    if (!s.ignore_configured_endpoints) {
        s.env_xray = env.get_non_empty("AWS_ENDPOINT_URL_XRAY").value_or("");
        s.env_sts = env.get_non_empty("AWS_ENDPOINT_URL_STS").value_or("");
        s.env_global = env.get_non_empty("AWS_ENDPOINT_URL").value_or("");
    }
    return s;
}

EndpointResolver::EndpointResolver(std::string region, EndpointSettings settings)
    : region_(std::move(region)), settings_(std::move(settings)) {}

Result<ResolvedEndpoint, std::string> EndpointResolver::resolve(
    std::string_view service, std::string_view region, std::string_view custom,
    std::string_view custom_source) const {
    const bool fips = settings_.use_fips;
    const bool dualstack = settings_.use_dualstack;
    if (!region.empty() && !valid_region(region)) {
        return fail(fmt::format("Invalid Configuration: region {} is not a valid host label "
                                "(letters, digits and '-' only)",
                                RemoteText{region}));
    }
    if (!custom.empty()) {
        if (fips) {
            return fail(std::string("Invalid Configuration: FIPS and custom endpoint are not "
                                    "supported"));
        }
        if (dualstack) {
            return fail(std::string("Invalid Configuration: Dualstack and custom endpoint are "
                                    "not supported"));
        }
        auto url = normalize_custom(custom, custom_source);
        if (!url) {
            return fail(url.error());
        }
        return ResolvedEndpoint{std::move(url).value(), custom_source, std::string(region)};
    }
    if (region.empty()) {
        return fail(std::string("unable to generate endpoint from region with empty value"));
    }
    const Partition& p = partition_of(region);
    if (service == "sts" && region == "aws-global" && !fips && !dualstack) {
        return ResolvedEndpoint{"https://sts.amazonaws.com", "default", "us-east-1"};
    }
    std::string host;
    if (fips && dualstack) {
        if (!p.supports_fips || !p.supports_dualstack) {
            return fail(std::string(
                "FIPS and DualStack are enabled, but this partition does not support one or both"));
        }
        host = fmt::format("{}-fips.{}.{}", service, region, p.dualstack_dns_suffix);
    } else if (fips) {
        if (!p.supports_fips) {
            return fail(std::string("FIPS is enabled but this partition does not support FIPS"));
        }
        if (service == "sts" && p.id == "aws-us-gov") {
            host = fmt::format("sts.{}.{}", region, p.dns_suffix);  // GovCloud STS is FIPS
        } else {
            host = fmt::format("{}-fips.{}.{}", service, region, p.dns_suffix);
        }
    } else if (dualstack) {
        if (!p.supports_dualstack) {
            return fail(
                std::string("DualStack is enabled but this partition does not support DualStack"));
        }
        host = fmt::format("{}.{}.{}", service, region, p.dualstack_dns_suffix);
    } else {
        host = fmt::format("{}.{}.{}", service, region, p.dns_suffix);
    }
    return ResolvedEndpoint{"https://" + host, "default", std::string(region)};
}

Result<ResolvedEndpoint, std::string> EndpointResolver::xray() const {
    if (!settings_.configured_xray.empty()) {
        return resolve("xray", region_, settings_.configured_xray, "config Endpoint");
    }
    if (!settings_.env_xray.empty()) {
        return resolve("xray", region_, settings_.env_xray, "AWS_ENDPOINT_URL_XRAY");
    }
    return resolve("xray", region_, settings_.env_global, "AWS_ENDPOINT_URL");
}

Result<ResolvedEndpoint, std::string> EndpointResolver::sts(std::string_view region) const {
    if (!settings_.env_sts.empty()) {
        return resolve("sts", region, settings_.env_sts, "AWS_ENDPOINT_URL_STS");
    }
    return resolve("sts", region, settings_.env_global, "AWS_ENDPOINT_URL");
}

ResolvedEndpoint EndpointResolver::xray_or_throw() const {
    auto r = xray();
    if (!r) {
        throw StartupError(r.error());
    }
    return std::move(r).value();
}

std::string regional_xray_endpoint(std::string_view region) {
    return fmt::format("https://xray.{}.{}", region, partition_of(region).dns_suffix);
}

ResolvedEndpoint resolve_xray_endpoint(std::string_view configured, std::string_view region,
                                       const Environment& env) {
    return EndpointResolver(std::string(region),
                            EndpointSettings::from_environment(configured, env))
        .xray_or_throw();
}

}  // namespace xrayd
