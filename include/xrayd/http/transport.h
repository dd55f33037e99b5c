// TransportOptions: the connection settings every outbound HTTP client of the daemon applies to
// its curl handles (proxy, TLS trust, timeouts, protocols, User-Agent), set in one place.
#pragma once

#include <chrono>
#include <string>

#include <xrayd/http/curl.h>

namespace xrayd {

struct TransportOptions {
    // Outbound proxy URL; "" = direct. curl's own reading of http_proxy / https_proxy is always
    // off: the caller decides (see proxy_for_url()).
    std::string proxy;
    std::string no_proxy;        // curl NO_PROXY list; only used with a proxy; "" = none
    std::string ca_bundle;       // CA file for TLS; "" = the system store
    bool no_verify_ssl = false;  // Go's -n / NoVerifySSL: no peer or host name check
    std::chrono::milliseconds connect_timeout{1000};
    std::chrono::milliseconds total_timeout{5000};  // the whole exchange
    std::string user_agent;                         // full User-Agent value; "" = none
};

// Sets on `easy`: CURLOPT_PROXY and CURLOPT_NOPROXY (always, "" included), CURLOPT_CAINFO (with a
// bundle), CURLOPT_SSL_VERIFYPEER/VERIFYHOST off (no_verify_ssl), CURLOPT_CONNECTTIMEOUT_MS,
// CURLOPT_TIMEOUT_MS, CURLOPT_USERAGENT (when set), http and https as the only protocols, and
// CURLOPT_NOSIGNAL (every client runs on a multi-threaded daemon). Returns the first error curl
// reports (the later options are still tried), CURLE_OK when all took. libcurl copies the strings:
// `options` may go away afterwards. Thread: the handle's.
[[nodiscard]] CURLcode apply_transport(CurlEasy& easy, const TransportOptions& options) noexcept;

}  // namespace xrayd
