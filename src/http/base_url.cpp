// Splitting an http(s) base URL.
#include <xrayd/http/base_url.h>

#include <strings.h>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>

namespace xrayd {

BaseUrl parse_base_url(std::string_view url, std::string_view what) {
    std::string_view rest = url;
    BaseUrl result;
    if (rest.size() >= 8 && strncasecmp(rest.data(), "https://", 8) == 0) {
        result.scheme = "https";
        rest.remove_prefix(8);
    } else if (rest.size() >= 7 && strncasecmp(rest.data(), "http://", 7) == 0) {
        result.scheme = "http";
        rest.remove_prefix(7);
    } else {
        throw StartupError(fmt::format("{} must start with http:// or https://: '{}'", what, url));
    }
    const std::size_t slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    std::string_view base_path = slash == std::string_view::npos ? "" : rest.substr(slash);
    while (!base_path.empty() && base_path.back() == '/') {
        base_path.remove_suffix(1);
    }
    if (authority.empty() || authority.find_first_of("@?# \t") != std::string_view::npos ||
        base_path.find_first_of("?# \t") != std::string_view::npos) {
        throw StartupError(fmt::format("{} is not a plain http(s) base URL: '{}'", what, url));
    }
    // Drop a default port from Host, as clients conventionally do (and as the signature wants).
    std::string_view host = authority;
    const std::string_view default_port = result.scheme == "https" ? ":443" : ":80";
    if (host.size() > default_port.size() && host.ends_with(default_port)) {
        host.remove_suffix(default_port.size());
    }
    // The port follows the last ':' that is not inside an IPv6 literal's brackets.
    const std::size_t bracket = authority.rfind(']');
    const std::size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
        result.hostname = authority.substr(0, colon);
        result.port = authority.substr(colon + 1);
    } else {
        result.hostname = authority;
    }
    result.authority = authority;
    result.origin = fmt::format("{}://{}", result.scheme, authority);
    result.host = host;
    result.base_path = base_path;
    return result;
}

}  // namespace xrayd
