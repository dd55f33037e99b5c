// SamplingProxy: the TCP HTTP/1.1 server SDKs poll for centralised sampling; it signs each
// request with SigV4 and forwards it to X-Ray.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <xrayd/aws/credentials.h>
#include <xrayd/common/time.h>
#include <xrayd/http/connection_gate.h>
#include <xrayd/http/transport.h>
#include <xrayd/log/logger.h>
#include <xrayd/stats/counters.h>

namespace xrayd {

// The paths forwarded by default: the X-Ray sampling operations (all POST).
inline constexpr std::string_view default_proxy_paths[] = {"/GetSamplingRules", "/SamplingTargets",
                                                           "/SamplingStatisticSummaries"};

struct SamplingProxyOptions {
    std::string address = "127.0.0.1:2000";  // host:port to listen on (Go's -t / TCPAddress)
    std::string upstream;  // X-Ray base URL, e.g. "https://xray.us-east-1.amazonaws.com"
    std::string region;    // signing region
    // false: only POST to default_proxy_paths (others: 404 / 405). true: every method and
    // path, as the Go daemon does.
    bool forward_all = false;
    // false: a listen failure throws StartupError. true: log Go's
    // "proxy http server failed to listen: <e>" at Error and run without the proxy.
    bool listen_failure_non_fatal = false;
    std::size_t max_body_bytes = 1024 * 1024;          // larger request bodies: 413
    std::size_t max_header_bytes = 64 * 1024;          // libmicrohttpd's per-connection memory
    std::size_t max_response_bytes = 8 * 1024 * 1024;  // larger upstream answers: 502
    // Connections open at once (waiting for their head or served); see ConnectionGate for
    // what happens at the limit. Of those, at most max_per_peer from one source address.
    unsigned max_connections = 256;
    unsigned max_per_peer = 64;
    // From accept to the end of the request head, whatever trickles in (then 408, closed).
    std::chrono::milliseconds head_timeout = default_head_timeout;
    // Inactivity limit of a client connection while its body is read or its answer sent
    // (libmicrohttpd's timeout, reset by every byte).
    std::chrono::seconds idle_timeout{30};
    // From the end of the headers to the end of the body: a client trickling its body is cut.
    std::chrono::milliseconds body_timeout{10000};
    std::chrono::milliseconds upstream_connect_timeout{2000};
    std::chrono::milliseconds upstream_timeout{10000};  // whole upstream exchange: 504 after
    // Proxy (Go's -p / ProxyAddress) and TLS trust; its timeouts are replaced by the two
    // upstream ones above.
    TransportOptions transport;
    Duration error_log_interval = std::chrono::seconds(60);  // one upstream-error line per
};

// One inbound request after hop-by-hop removal, ready to be signed and sent: exposed so the
// header rules can be tested on their own.
struct ForwardHeader {
    std::string name;  // as the client spelled it
    std::string value;
};

// Applies the forwarding rules to the client's headers, in order:
// - drops Host (replaced), Content-Length (recomputed), Expect, Connection and every header it
//   names, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade, X-Forwarded-For,
//   Authorization, X-Amz-Date and X-Amz-Security-Token (the proxy signs afresh);
// - keeps everything else unchanged.
// Names compare case-insensitively. Thread-safe (pure).
[[nodiscard]] std::vector<ForwardHeader> forwardable_headers(
    const std::vector<ForwardHeader>& client_headers);

// True for the headers the proxy signs: host, content-type and x-amz-* (the ones no sidecar
// rewrites). Thread-safe (pure).
[[nodiscard]] bool is_signed_proxy_header(std::string_view name) noexcept;

// The sampling proxy: a libmicrohttpd server (thread per connection) behind a ConnectionGate
// that signs and forwards requests to X-Ray.
//
// Before libmicrohttpd sees a connection, the gate enforces the connection limits and the head
// deadline and refuses a malformed head with 400 (check_request_head: a target not in origin
// form, a header name that is not a token, folding, conflicting or bad lengths and codings).
// Every answer carries "Connection: close", so each request head passes the gate.
// The upstream URL is X-Ray's scheme, host and port with the client's path and query set as
// parts (libcurl's URL API): the host is the configured endpoint's, always.
//
// Per request: the allow-list (404 unknown path, 405 method other than POST, proxy_not_allowed),
// the body cap (413 at once when Content-Length is over it, else the connection is closed once
// the chunked body passes it; proxy_too_large), credentials (503 when none, proxy_no_credentials),
// then a blocking upstream exchange on the connection's thread whose status, headers (minus
// hop-by-hop ones) and body go back unchanged (proxy_forwarded). Upstream unreachable: 502
// (504 on timeout) with a JSON body {"message": ...}, proxy_upstream_error, and at most one
// Error line per `error_log_interval`.
//
// Threads: start() and stop() from one control thread; the server runs its own threads.
// Lifetime: `credentials`, `counters` and `logger` outlive the proxy.
// IMPORTANT: a CurlGlobal must exist before start() and outlive stop().
class SamplingProxy {
public:
    // Validates the options (address syntax, upstream URL); throws StartupError on a bad one.
    // Logs Go's "HTTP Proxy server using X-Ray Endpoint : <url>" at Info. Does not listen yet.
    [[nodiscard]] static std::unique_ptr<SamplingProxy> create(SamplingProxyOptions options,
                                                               CredentialsProvider& credentials,
                                                               Counters& counters, Logger& logger);
    ~SamplingProxy();  // stop()
    SamplingProxy(const SamplingProxy&) = delete;
    SamplingProxy& operator=(const SamplingProxy&) = delete;

    // Binds and starts serving; logs Go's "Starting proxy http server on <addr>" at Info.
    // On a listen failure: throws StartupError ("proxy http server failed to listen: listen
    // tcp <addr>: bind: <reason>"), or with listen_failure_non_fatal logs that at Error and
    // returns false. True when serving.
    bool start();

    // Stops accepting, aborts upstream exchanges in flight and joins every server thread.
    // Idempotent; noexcept.
    void stop() noexcept;

    // Switches between forwarding every X-Ray call and only the sampling operations (SIGHUP
    // reload). Any thread; applies to requests that start after the call.
    void set_forward_all(bool forward_all) noexcept;

    // The port actually bound (useful with port 0); 0 when not serving.
    [[nodiscard]] std::uint16_t port() const noexcept;
    [[nodiscard]] bool serving() const noexcept;

private:
    struct State;  // src/proxy/sampling_proxy.cpp
    explicit SamplingProxy(std::unique_ptr<State> state) noexcept;
    std::unique_ptr<State> state_;
};

}  // namespace xrayd
