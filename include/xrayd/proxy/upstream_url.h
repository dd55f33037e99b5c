// UpstreamUrl: an X-Ray base URL split into what a signed request needs (proxy, telemetry).
#pragma once

#include <string>
#include <string_view>

namespace xrayd {

struct UpstreamUrl {
    std::string origin;     // "https://host[:port]" as given (scheme lower-cased)
    std::string host;       // the Host header value, as signed: default port dropped
    std::string base_path;  // "" or "/prefix" (no trailing '/'), put before every request path
};

// Splits "http(s)://authority[/base path]". Throws StartupError when the URL has no http(s)
// scheme, no authority, user info, a query or a fragment. Start-up only; thread-safe.
[[nodiscard]] UpstreamUrl parse_upstream_url(std::string_view url);

}  // namespace xrayd
