// Where X-Ray lives: region and endpoint resolution (the minimal chain; the full SDK-style
// resolver with IMDS, ECS, FIPS and dual-stack extends this).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <xrayd/common/environment.h>

namespace xrayd {

struct ResolvedRegion {
    std::string region;
    std::string_view source;  // for the Go daemon's log line "Fetch region <r> from <source>"
};

// -n / config `Region`, then AWS_REGION, then AWS_DEFAULT_REGION. nullopt when none is set.
[[nodiscard]] std::optional<ResolvedRegion> resolve_region(std::string_view configured,
                                                           const Environment& env);

// https://xray.<region>.<DNS suffix of the region's partition>.
[[nodiscard]] std::string regional_xray_endpoint(std::string_view region);

struct ResolvedEndpoint {
    std::string url;          // scheme://host[:port], no trailing slash
    std::string_view source;  // "--endpoint/config", "AWS_ENDPOINT_URL_XRAY", ...
};

// `configured` (--endpoint or config `Endpoint`) > AWS_ENDPOINT_URL_XRAY > AWS_ENDPOINT_URL >
// the regional default. Throws StartupError when the chosen URL has no http(s) scheme.
[[nodiscard]] ResolvedEndpoint resolve_xray_endpoint(std::string_view configured,
                                                     std::string_view region,
                                                     const Environment& env);

}  // namespace xrayd
