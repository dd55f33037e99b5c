// parse_url / url_with_path: URLs taken apart and put together by libcurl's URL API (CURLU), the
// parser the transfer itself uses, so a check on the host can never disagree with curl.
#pragma once

#include <string>
#include <string_view>

#include <xrayd/common/result.h>

namespace xrayd {

struct UrlParts {
    std::string scheme;     // lower-cased, e.g. "http"
    std::string host;       // without IPv6 brackets
    std::string port;       // "" when not given
    std::string path;       // "/" at least
    bool has_user = false;  // user info ("user[:password]@")
    bool has_query = false;
    bool has_fragment = false;
};

// Parses an absolute URL (any scheme curl knows). Error: curl's reason. Thread-safe (pure).
[[nodiscard]] Result<UrlParts, std::string> parse_url(std::string_view url);

// `base` (scheme://authority, any path of it replaced) with `origin_form` ("/path[?query]") as
// its path and query. The host and port are always the base's: `origin_form` must start with
// '/', and must hold no '#', space or control byte; else an error that says so. Thread-safe.
[[nodiscard]] Result<std::string, std::string> url_with_path(std::string_view base,
                                                             std::string_view origin_form);

}  // namespace xrayd
