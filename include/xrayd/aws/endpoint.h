// Where AWS lives: partitions, and the one endpoint resolver for X-Ray (uploads, telemetry,
// the TCP proxy) and STS, following the services' endpoint rule sets.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <xrayd/aws/region.h>
#include <xrayd/common/environment.h>
#include <xrayd/common/result.h>

namespace xrayd {

// One AWS partition, as the SDKs' partitions.json describes it.
struct Partition {
    std::string_view id;                    // "aws", "aws-cn", ...
    std::string_view dns_suffix;            // "amazonaws.com"
    std::string_view dualstack_dns_suffix;  // "api.aws"
    bool supports_fips;
    bool supports_dualstack;
    std::string_view primary_region;  // where STS falls back on RegionDisabledException
};

// The partition of `region`: by its name prefix (regionRegex), else "aws" (as aws.partition
// does for unknown regions). Never fails. Thread-safe (static data).
[[nodiscard]] const Partition& partition_of(std::string_view region) noexcept;

struct ResolvedEndpoint {
    std::string url;             // scheme://host[:port][/path], no trailing slash
    std::string_view source;     // "config Endpoint", "AWS_ENDPOINT_URL_XRAY", ..., "default"
    std::string signing_region;  // region to sign with (the global STS endpoint signs as
                                 // us-east-1)
};

// Endpoint settings taken once at start-up.
struct EndpointSettings {
    std::string configured_xray;               // --endpoint / config `Endpoint` ("" = none)
    bool use_fips = false;                     // AWS_USE_FIPS_ENDPOINT=true
    bool use_dualstack = false;                // AWS_USE_DUALSTACK_ENDPOINT=true
    std::string env_xray;                      // AWS_ENDPOINT_URL_XRAY
    std::string env_sts;                       // AWS_ENDPOINT_URL_STS
    std::string env_global;                    // AWS_ENDPOINT_URL (every service)
    bool ignore_configured_endpoints = false;  // AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true

    // Reads the AWS_* variables above (booleans: "true", case-insensitive) from `env`.
    [[nodiscard]] static EndpointSettings from_environment(std::string_view configured_xray,
                                                           const Environment& env);
};

// Resolves service endpoints the way the X-Ray and STS endpoint rule sets do:
// - a custom endpoint wins: X-Ray: config `Endpoint` > AWS_ENDPOINT_URL_XRAY > AWS_ENDPOINT_URL;
//   STS: AWS_ENDPOINT_URL_STS > AWS_ENDPOINT_URL. With FIPS or dual-stack also on this is the
//   rule set's error ("Invalid Configuration: FIPS and custom endpoint are not supported").
// - else https://{service}[-fips].{region}.{dnsSuffix | dualStackDnsSuffix}; FIPS STS in
//   aws-us-gov is sts.{region}.amazonaws.com; FIPS or dual-stack where the partition has none is
//   the rule set's error.
// - STS is always regional (the SDK v2 default); region "aws-global" is sts.amazonaws.com,
//   signed as us-east-1.
// The same resolver serves uploads, telemetry and the proxy: unlike the Go daemon, the proxy
// honours FIPS and dual-stack too. Immutable after construction; thread-safe.
class EndpointResolver {
public:
    EndpointResolver(std::string region, EndpointSettings settings);

    [[nodiscard]] const std::string& region() const noexcept { return region_; }
    [[nodiscard]] const EndpointSettings& settings() const noexcept { return settings_; }

    // The X-Ray endpoint for the daemon's region. Error text is the rule set's (or says the
    // custom URL has no http(s) scheme).
    [[nodiscard]] Result<ResolvedEndpoint, std::string> xray() const;
    // The STS endpoint for `region` (the daemon's region unless a fallback is being tried).
    [[nodiscard]] Result<ResolvedEndpoint, std::string> sts(std::string_view region) const;
    [[nodiscard]] Result<ResolvedEndpoint, std::string> sts() const { return sts(region_); }

    // xray(), or throws StartupError with the error text (start-up helper).
    [[nodiscard]] ResolvedEndpoint xray_or_throw() const;

private:
    [[nodiscard]] Result<ResolvedEndpoint, std::string> resolve(
        std::string_view service, std::string_view region, std::string_view custom,
        std::string_view custom_source) const;
    std::string region_;
    EndpointSettings settings_;
};

// --- Compatibility with the first minimal version (the daemon still calls these) -----------

// https://xray.<region>.<DNS suffix of the region's partition>.
[[nodiscard]] std::string regional_xray_endpoint(std::string_view region);

// EndpointResolver(region, EndpointSettings::from_environment(configured, env)).xray_or_throw().
[[nodiscard]] ResolvedEndpoint resolve_xray_endpoint(std::string_view configured,
                                                     std::string_view region,
                                                     const Environment& env);

}  // namespace xrayd
