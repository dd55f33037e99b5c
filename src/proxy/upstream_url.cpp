// Splitting an X-Ray base URL.
#include <xrayd/proxy/upstream_url.h>

#include <strings.h>

#include <xrayd/common/startup_error.h>

namespace xrayd {

UpstreamUrl parse_upstream_url(std::string_view url) {
    std::string_view rest = url;
    bool https = false;
    if (rest.size() >= 8 && strncasecmp(rest.data(), "https://", 8) == 0) {
        https = true;
        rest.remove_prefix(8);
    } else if (rest.size() >= 7 && strncasecmp(rest.data(), "http://", 7) == 0) {
        rest.remove_prefix(7);
    } else {
        throw StartupError("X-Ray endpoint must start with http:// or https://: '" +
                           std::string(url) + "'");
    }
    const std::size_t slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    std::string_view base_path = slash == std::string_view::npos ? "" : rest.substr(slash);
    while (!base_path.empty() && base_path.back() == '/') {
        base_path.remove_suffix(1);
    }
    if (authority.empty() || authority.find_first_of("@?# \t") != std::string_view::npos ||
        base_path.find_first_of("?# \t") != std::string_view::npos) {
        throw StartupError("X-Ray endpoint is not a plain http(s) base URL: '" + std::string(url) +
                           "'");
    }
    UpstreamUrl result;
    result.origin = std::string(https ? "https://" : "http://") + std::string(authority);
    std::string_view host = authority;
    const std::string_view default_port = https ? ":443" : ":80";
    if (host.size() > default_port.size() && host.ends_with(default_port)) {
        host.remove_suffix(default_port.size());
    }
    result.host = host;
    result.base_path = base_path;
    return result;
}

}  // namespace xrayd
