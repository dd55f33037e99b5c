// apply_transport: the shared connection settings of every outbound curl handle.
#include <xrayd/http/transport.h>

namespace xrayd {

CURLcode apply_transport(CurlEasy& easy, const TransportOptions& options) noexcept {
    CurlFirstError set;
    set(easy.set(CURLOPT_NOSIGNAL, 1L));
    set(easy.set(CURLOPT_PROTOCOLS_STR, "http,https"));
    set(easy.set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count())));
    set(easy.set(CURLOPT_TIMEOUT_MS, static_cast<long>(options.total_timeout.count())));
    // Both always, "" included: unset, curl reads http_proxy / https_proxy and no_proxy /
    // NO_PROXY from the environment again at every request (two getenv scans of it per
    // request, seen in the upload path's profile); the daemon resolved them at start-up.
    set(easy.set(CURLOPT_PROXY, options.proxy.c_str()));
    set(easy.set(CURLOPT_NOPROXY, options.no_proxy.c_str()));
    if (!options.ca_bundle.empty()) {
        set(easy.set(CURLOPT_CAINFO, options.ca_bundle.c_str()));
    }
    if (options.no_verify_ssl) {
        set(easy.set(CURLOPT_SSL_VERIFYPEER, 0L));
        set(easy.set(CURLOPT_SSL_VERIFYHOST, 0L));
    }
    if (!options.user_agent.empty()) {
        set(easy.set(CURLOPT_USERAGENT, options.user_agent.c_str()));
    }
    return set.code();
}

}  // namespace xrayd
