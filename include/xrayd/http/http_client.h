// HttpClient: blocking HTTP(S) requests for control-plane calls (IMDS, container credentials,
// STS), with connect/total timeouts, capped answers, shutdown cancellation and an explicit proxy.
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
#include <xrayd/http/curl.h>
#include <xrayd/http/transport.h>

namespace xrayd {

using HttpHeaderList = std::vector<std::pair<std::string, std::string>>;

// Credential answers (IMDS, container, STS) are a few KB: a bigger body is refused, so a hostile
// or broken endpoint cannot make the daemon buffer without bound within the timeout.
inline constexpr std::size_t max_credential_response_body = 64 * 1024;
// All header lines of one response together (status lines included).
inline constexpr std::size_t max_response_header_bytes = 16 * 1024;

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

struct HttpResponse {
    long status = 0;
    HttpHeaderList headers;  // of the final response, names as received
    std::string body;

    // The first header of that name (case-insensitive), or "" when absent.
    [[nodiscard]] std::string_view header(std::string_view name) const noexcept;
};

// too_large: the body passed HttpRequest::max_body or the headers max_response_header_bytes.
// cancelled: the client's Cancellation fired (shutdown).
enum class HttpErrc { timeout, connect, resolve, tls, too_large, cancelled, other };

struct HttpError {
    HttpErrc code = HttpErrc::other;
    std::string message;  // curl's text or ours; never contains request headers or bodies
};

// One reusable easy handle (connections are kept alive between calls), driven through a private
// multi handle so that a wait can also watch the cancellation fd.
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
    [[nodiscard]] CURLcode run_transfer() noexcept;

    std::shared_ptr<const Cancellation> cancel_;
    CurlMulti multi_;
    CurlEasy easy_;  // never left added to multi_ between calls
};

// The proxy the AWS SDKs' default HTTP client would use for `url`, from HTTPS_PROXY /
// https_proxy (https URLs) or HTTP_PROXY / http_proxy (http URLs), upper case first; "" when
// none. NO_PROXY / no_proxy is returned in *no_proxy.
[[nodiscard]] std::string proxy_for_url(std::string_view url, const Environment& env,
                                        std::string* no_proxy);

}  // namespace xrayd
