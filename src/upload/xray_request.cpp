// XRayRequest: target, timestamp and signed headers of an X-Ray API call.
#include <xrayd/upload/xray_request.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include <xrayd/common/startup_error.h>

namespace xrayd {

namespace {

// The scheme, lower-cased, when it is http or https; "" otherwise.
std::string_view scheme_of(std::string_view url) {
    std::string head(url.substr(0, 8));
    std::transform(head.begin(), head.end(), head.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (head.starts_with("https://")) return "https";
    if (head.starts_with("http://")) return "http";
    return "";
}

}  // namespace

XRayTarget make_xray_target(std::string_view endpoint, std::string_view operation_path) {
    const std::string_view scheme = scheme_of(endpoint);
    if (scheme.empty()) {
        throw StartupError("X-Ray endpoint must start with http:// or https://: '" +
                           std::string(endpoint) + "'");
    }
    const bool https = scheme == "https";
    std::string_view rest = endpoint.substr(scheme.size() + 3);
    const std::size_t slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    std::string_view base_path = slash == std::string_view::npos ? "" : rest.substr(slash);
    while (!base_path.empty() && base_path.back() == '/') {
        base_path.remove_suffix(1);
    }
    if (authority.empty() || authority.find_first_of("@?# \t") != std::string_view::npos ||
        base_path.find_first_of("?# \t") != std::string_view::npos) {
        throw StartupError("X-Ray endpoint is not a plain http(s) base URL: '" +
                           std::string(endpoint) + "'");
    }
    // Drop a default port from Host, as clients conventionally do.
    std::string_view host = authority;
    const std::string_view default_port = https ? ":443" : ":80";
    if (host.size() > default_port.size() && host.ends_with(default_port)) {
        host.remove_suffix(default_port.size());
    }
    XRayTarget target;
    target.host = host;
    target.path = std::string(base_path) + std::string(operation_path);
    target.url = fmt::format("{}://{}{}", scheme, authority, target.path);
    return target;
}

std::string xray_timestamp(WallClock::time_point now) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch());
    return fmt::format("{}.{:09}", ns.count() / 1'000'000'000, ns.count() % 1'000'000'000);
}

Result<void, std::string> build_signed_headers(SigV4Signer& signer, const XRayTarget& target,
                                               std::string_view body,
                                               const Credentials& credentials,
                                               WallClock::time_point now,
                                               CurlSlist& out) noexcept {
    try {
        const std::string timestamp = xray_timestamp(now);
        SigningRequest request;
        request.method = "POST";
        request.path = target.path;
        request.headers = {{"host", target.host},
                           {"content-type", "application/json"},
                           {"x-amzn-xray-timestamp", timestamp}};
        request.payload = body;
        const SignedHeaders signed_headers = signer.sign(request, credentials, now);
        if (signed_headers.authorization.empty()) {
            return fail(std::string("request signing failed"));
        }
        out.clear();
        bool ok = out.append(fmt::format("Host: {}", target.host).c_str()) &&
                  out.append("Content-Type: application/json") &&
                  out.append(fmt::format("X-Amz-Date: {}", signed_headers.amz_date).c_str()) &&
                  out.append(fmt::format("X-Amzn-Xray-Timestamp: {}", timestamp).c_str()) &&
                  out.append(
                      fmt::format("Authorization: {}", signed_headers.authorization).c_str()) &&
                  out.append("Expect:");  // no 100-continue round trip
        if (ok && !signed_headers.security_token.empty()) {
            ok = out.append(
                fmt::format("X-Amz-Security-Token: {}", signed_headers.security_token).c_str());
        }
        if (!ok) {
            return fail(std::string("out of memory building request headers"));
        }
        return {};
    } catch (...) {
        return fail(std::string("out of memory preparing the request"));
    }
}

}  // namespace xrayd
