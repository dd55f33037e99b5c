// The forwarding half of the sampling proxy, private to src/proxy: which headers go upstream,
// the SigV4 re-signing, and the blocking exchange with X-Ray on a pooled HttpExchange. The
// server half (sampling_proxy.cpp) turns its results into counters, log lines and answers.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <xrayd/aws/credentials.h>
#include <xrayd/aws/sigv4.h>
#include <xrayd/http/base_url.h>
#include <xrayd/http/cancellation.h>
#include <xrayd/http/curl.h>
#include <xrayd/http/exchange.h>
#include <xrayd/http/transport.h>
#include <xrayd/proxy/sampling_proxy.h>

namespace xrayd::proxy_detail {

// One client request as the server collected it; borrowed for one forward() call.
struct ClientRequest {
    std::string_view method;
    std::string_view path;   // origin-form (is_origin_form), as received (signed as sent)
    std::string_view query;  // without '?'
    std::string_view body;
    const std::vector<ForwardHeader>& headers;  // every header the client sent
};

// What came of one forward() call.
struct UpstreamResult {
    enum class Kind {
        answered,        // X-Ray answered: status, headers, body to relay
        no_credentials,  // nothing sent: the provider has no credentials (message says which)
        signing_failed,  // nothing sent: SigV4 signing failed
        bad_request,     // nothing sent: a target not in origin form or a header not a token
        failed,          // transport failure, answer over the limit, or cut by stop()
        dropped,         // out of memory or no curl handle: drop the client connection
    };
    Kind kind = Kind::dropped;
    long status = 0;                     // answered
    std::vector<ForwardHeader> headers;  // answered: hop-by-hop and Content-Length removed
    std::string body;                    // answered
    bool timed_out = false;              // failed: the upstream timeout passed
    std::string message;                 // no_credentials / failed: for the log and the client
};

// Signs client requests afresh and sends them to `upstream`, one blocking exchange per call on
// an HttpExchange from a small pool of kept-alive connections.
// Thread-safety: forward() from any number of connection threads at once; stop(), resume() and
// drop_idle_handles() from the control thread. Lifetime: `credentials` outlives it.
// IMPORTANT: a CurlGlobal must exist while it holds handles (drop_idle_handles() releases them).
class UpstreamForwarder {
public:
    // Throws StartupError when libcurl's URL API rejects the upstream's scheme, host or port, or
    // when no eventfd is left for its cancellation.
    UpstreamForwarder(const SamplingProxyOptions& options, BaseUrl upstream,
                      CredentialsProvider& credentials);

    // Forwards `request` and waits for the answer (at most options.upstream_timeout).
    [[nodiscard]] UpstreamResult forward(const ClientRequest& request) noexcept;

    // Aborts the exchanges in flight at once (they end as `failed`), and fails every later one,
    // until resume().
    void stop() noexcept;
    // Forwards again after stop(). Throws StartupError when no eventfd is left for the new
    // cancellation.
    void resume();
    [[nodiscard]] bool stopping() const noexcept;

    // Closes the pooled connections.
    void drop_idle_handles() noexcept;

    [[nodiscard]] const BaseUrl& upstream() const noexcept { return upstream_; }

private:
    [[nodiscard]] HttpExchange take_exchange();
    void give_back(HttpExchange&& exchange) noexcept;
    [[nodiscard]] std::shared_ptr<const Cancellation> current_stop() const;

    const BaseUrl upstream_;
    // Scheme, host and port of upstream_, set once: every request URL is a copy of it with
    // only the path and query set, so no request target can change where the request goes.
    const CurlUrl upstream_url_;
    CredentialsProvider& credentials_;
    const TransportOptions transport_;
    const std::size_t max_response_bytes_;

    std::mutex signer_mutex_;  // SigV4Signer is single-threaded; signing takes microseconds
    SigV4Signer signer_;
    mutable std::mutex pool_mutex_;             // guards idle_exchanges_ and stop_
    std::vector<HttpExchange> idle_exchanges_;  // kept-alive upstream connections live in these
    // Fired by stop(); replaced by a fresh one on resume(), since a Cancellation is one-way.
    std::shared_ptr<Cancellation> stop_;
};

}  // namespace xrayd::proxy_detail
