// HttpClient: blocking HTTP(S) requests for the credential fetchers (IMDS, container credentials,
// STS), on an HttpExchange (exchange.h: caps, cancellation, errors); and proxy_for_url.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <xrayd/common/environment.h>
#include <xrayd/common/result.h>
#include <xrayd/http/cancellation.h>
#include <xrayd/http/exchange.h>
#include <xrayd/http/transport.h>

namespace xrayd {

struct HttpRequest {
    std::string method = "GET";
    std::string url;
    HttpHeaderList headers;  // sent as given; curl adds Host and Content-Length
    std::string body;
    // Proxy (see proxy_for_url()), TLS trust and timeouts; defaults: direct, the system store,
    // 1 s to connect, 5 s in all.
    TransportOptions transport;
    // A longer body fails the request with HttpErrc::too_large.
    std::size_t max_body = max_credential_response_body;
};

// The credential fetchers' client: an HttpExchange with a fixed cancellation, taking requests
// with their headers as name/value pairs.
// Thread-safety: one thread at a time; give each thread its own client.
// Lifetime: needs a live CurlGlobal (created in main or the test); shares `cancel`.
class HttpClient {
public:
    // `cancel` (may be null: never cancelled) ends any request in progress, and fails every
    // later one at once, with HttpErrc::cancelled. Throws StartupError when libcurl cannot
    // allocate a handle.
    explicit HttpClient(std::shared_ptr<const Cancellation> cancel = nullptr);

    // Performs the request and returns the response, whatever its status, or a transport
    // error. Never throws.
    [[nodiscard]] Result<HttpResponse, HttpError> perform(const HttpRequest& request) noexcept;

private:
    std::shared_ptr<const Cancellation> cancel_;
    HttpExchange exchange_;
};

// The proxy the AWS SDKs' default HTTP client would use for `url`, from HTTPS_PROXY /
// https_proxy (https URLs) or HTTP_PROXY / http_proxy (http URLs), upper case first; "" when
// none. NO_PROXY / no_proxy is returned in *no_proxy.
[[nodiscard]] std::string proxy_for_url(std::string_view url, const Environment& env,
                                        std::string* no_proxy);

}  // namespace xrayd
