// HttpClient: blocking HTTP(S) requests for control-plane calls (IMDS, container credentials,
// STS), with connect/total timeouts and an explicit proxy.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <xrayd/common/environment.h>
#include <xrayd/common/result.h>
#include <xrayd/http/curl.h>
#include <xrayd/http/transport.h>

namespace xrayd {

using HttpHeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
    std::string method = "GET";
    std::string url;
    HttpHeaderList headers;  // sent as given; curl adds Host and Content-Length
    std::string body;
    // Proxy (see proxy_for_url()), TLS trust and timeouts; defaults: direct, the system store,
    // 1 s to connect, 5 s in all.
    TransportOptions transport;
};

struct HttpResponse {
    long status = 0;
    HttpHeaderList headers;  // of the final response, names as received
    std::string body;

    // The first header of that name (case-insensitive), or "" when absent.
    [[nodiscard]] std::string_view header(std::string_view name) const noexcept;
};

enum class HttpErrc { timeout, connect, resolve, tls, other };

struct HttpError {
    HttpErrc code = HttpErrc::other;
    std::string message;  // curl's text; never contains request headers or bodies
};

// One reusable easy handle (connections are kept alive between calls).
// Thread-safety: one thread at a time; give each thread its own client.
// Lifetime: needs a live CurlGlobal (created in main or the test).
class HttpClient {
public:
    // Throws StartupError when libcurl cannot allocate a handle.
    HttpClient();

    // Performs the request and returns the response, whatever its status, or a transport
    // error. Never throws.
    [[nodiscard]] Result<HttpResponse, HttpError> perform(const HttpRequest& request) noexcept;

private:
    CurlEasy easy_;
};

// The proxy the AWS SDKs' default HTTP client would use for `url`, from HTTPS_PROXY /
// https_proxy (https URLs) or HTTP_PROXY / http_proxy (http URLs), upper case first; "" when
// none. NO_PROXY / no_proxy is returned in *no_proxy.
[[nodiscard]] std::string proxy_for_url(std::string_view url, const Environment& env,
                                        std::string* no_proxy);

}  // namespace xrayd
