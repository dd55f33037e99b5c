// HttpExchange: one blocking HTTP(S) request and its answer, with what every control-plane client
// of the daemon needs around curl: capped answers, captured headers, cancellation, and errors
// classified. The credential fetchers (through HttpClient), telemetry's PutTelemetryRecords and
// the sampling proxy's forwarding all go through it; the uploader's transfers, which never
// block, go through upload/'s TransferPool instead.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <xrayd/common/result.h>
#include <xrayd/http/cancellation.h>
#include <xrayd/http/curl.h>
#include <xrayd/http/transport.h>

namespace xrayd {

using HttpHeaderList = std::vector<std::pair<std::string, std::string>>;

// Control-plane answers (credentials, telemetry, sampling rules) are a few KB: a bigger body is
// refused, so a hostile or broken endpoint cannot make the daemon buffer without bound within
// the timeout. Callers with a setting of their own (the proxy) pass it instead.
inline constexpr std::size_t max_credential_response_body = 64 * 1024;
// All header lines of one response together (status lines included).
inline constexpr std::size_t max_response_header_bytes = 16 * 1024;

// One request, borrowed for the duration of one perform() call.
struct ExchangeRequest {
    // "GET" (with an empty body) and "HEAD" send no body; any other method sends `body` with
    // Content-Length = body.size() (callers that sign the length rely on exactly that).
    std::string_view method = "GET";
    // Where it goes: `url_parts` when set (a URL built from parts with libcurl's URL API, so
    // that no caller-supplied text is pasted into a URL string), else `url`.
    std::string_view url;
    const CurlUrl* url_parts = nullptr;
    // Sent as given, after curl's own Host and Content-Length unless the list overrides them.
    const CurlSlist* headers = nullptr;
    std::string_view body;
    // Proxy, TLS trust, connect and total timeouts.
    const TransportOptions* transport = nullptr;
    // A longer body (by Content-Length or as it arrives) fails with HttpErrc::too_large.
    std::size_t max_body = max_credential_response_body;
    // Send the path exactly as given: no "/../" squashing (the proxy signs the path it sends).
    bool path_as_is = false;
    // HTTP/1.1 only, no HTTP/2 upgrade (the proxy relays a 1.1 exchange).
    bool http_1_1 = false;
};

struct HttpResponse {
    long status = 0;
    HttpHeaderList headers;  // of the final response, names as received
    std::string body;

    // The first header of that name (case-insensitive), or "" when absent.
    [[nodiscard]] std::string_view header(std::string_view name) const noexcept;
};

// too_large: the body passed ExchangeRequest::max_body or the headers max_response_header_bytes.
// cancelled: the Cancellation fired (cancel()); timeout: the transfer's or the Cancellation's
// deadline passed.
enum class HttpErrc { timeout, connect, resolve, tls, too_large, cancelled, other };

struct HttpError {
    HttpErrc code = HttpErrc::other;
    // curl's text and error buffer, or ours. Never contains request headers or bodies, but may
    // hold text from the peer (a TLS alert, a proxy's answer): log it through RemoteText.
    std::string message;
    CURLcode curl_code = CURLE_OK;  // CURLE_OK when the failure was not curl's
    long os_errno = 0;              // CURLINFO_OS_ERRNO of the failed transfer
};

// One reusable easy handle (connections are kept alive between calls), driven through a private
// multi handle so that a wait can also watch a cancellation fd.
// Thread-safety: one thread at a time; pool or give each thread its own.
// Lifetime: needs a live CurlGlobal (created in main or the test).
class HttpExchange {
public:
    // Throws StartupError when libcurl cannot allocate a handle.
    HttpExchange();

    // Performs `request` and returns the response, whatever its status, or a transport error.
    // `cancel` (may be null: never cancelled) ends the request at once when it fires (its fd
    // wakes the wait): HttpErrc::cancelled; or within 200 ms once its deadline passes:
    // HttpErrc::timeout with CURLE_OPERATION_TIMEDOUT, as the caller's time ran out. Never throws.
    [[nodiscard]] Result<HttpResponse, HttpError> perform(const ExchangeRequest& request,
                                                          const Cancellation* cancel) noexcept;

private:
    [[nodiscard]] CURLcode run_transfer(const Cancellation* cancel) noexcept;

    CurlMulti multi_;
    CurlEasy easy_;  // never left added to multi_ between calls
};

}  // namespace xrayd
