// Region and endpoint resolution.
#include <xrayd/aws/endpoint.h>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>

namespace xrayd {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

// DNS suffix of the partition a region belongs to (the prefixes the endpoint rules use).
std::string_view partition_dns_suffix(std::string_view region) {
    if (starts_with(region, "cn-")) return "amazonaws.com.cn";
    if (starts_with(region, "us-isob-")) return "sc2s.sgov.gov";
    if (starts_with(region, "us-isof-")) return "csp.hci.ic.gov";
    if (starts_with(region, "us-iso-")) return "c2s.ic.gov";
    if (starts_with(region, "eu-isoe-")) return "cloud.adc-e.uk";
    if (starts_with(region, "eusc-")) return "amazonaws.eu";
    return "amazonaws.com";
}

}  // namespace

std::optional<ResolvedRegion> resolve_region(std::string_view configured, const Environment& env) {
    if (!configured.empty()) {
        return ResolvedRegion{std::string(configured), "commandline/config file"};
    }
    if (auto r = env.get_non_empty("AWS_REGION")) {
        return ResolvedRegion{*r, "environment variables"};
    }
    if (auto r = env.get_non_empty("AWS_DEFAULT_REGION")) {
        return ResolvedRegion{*r, "environment variables"};
    }
    return std::nullopt;
}

std::string regional_xray_endpoint(std::string_view region) {
    return fmt::format("https://xray.{}.{}", region, partition_dns_suffix(region));
}

ResolvedEndpoint resolve_xray_endpoint(std::string_view configured, std::string_view region,
                                       const Environment& env) {
    ResolvedEndpoint chosen;
    if (!configured.empty()) {
        chosen = {std::string(configured), "--endpoint/config Endpoint"};
    } else if (auto e = env.get_non_empty("AWS_ENDPOINT_URL_XRAY")) {
        chosen = {*e, "AWS_ENDPOINT_URL_XRAY"};
    } else if (auto e2 = env.get_non_empty("AWS_ENDPOINT_URL")) {
        chosen = {*e2, "AWS_ENDPOINT_URL"};
    } else {
        return {regional_xray_endpoint(region), "default"};
    }
    if (!starts_with(chosen.url, "https://") && !starts_with(chosen.url, "http://")) {
        throw StartupError(fmt::format(
            "Endpoint \"{}\" (from {}) has no scheme: write it as https://host or http://host:port",
            chosen.url, chosen.source));
    }
    while (!chosen.url.empty() && chosen.url.back() == '/') {
        chosen.url.pop_back();
    }
    return chosen;
}

}  // namespace xrayd
