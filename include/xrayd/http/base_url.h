// BaseUrl: an http(s) base URL ("https://host[:port][/base path]") split into what a request
// to a path below it needs (the X-Ray endpoint of uploads, the sampling proxy and telemetry).
#pragma once

#include <string>
#include <string_view>

namespace xrayd {

struct BaseUrl {
    std::string scheme;     // "http" or "https", lower-cased
    std::string authority;  // "host[:port]" as given
    std::string origin;     // "<scheme>://<authority>"
    std::string host;       // the Host header value, as signed and sent: a default port dropped
    std::string hostname;   // the authority without its port ("[::1]" keeps its brackets)
    std::string port;       // the authority's port, "" when none was given
    std::string base_path;  // "" or "/prefix" (no trailing '/'), put before every request path
};

// Splits "http(s)://authority[/base path]"; `what` names the URL in errors (e.g. "X-Ray
// endpoint"). Throws StartupError "<what> must start with http:// or https://: '<url>'" without
// an http(s) scheme, and "<what> is not a plain http(s) base URL: '<url>'" without an authority
// or with user info, a query, a fragment or whitespace. Start-up only; thread-safe (pure).
[[nodiscard]] BaseUrl parse_base_url(std::string_view url, std::string_view what);

}  // namespace xrayd
