// OtlpReceiver: the OTLP/HTTP listener (issue #16): serves POST /v1/traces per the OTLP/HTTP
// specification and hands each valid request to an OtlpSink.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <xrayd/common/time.h>
#include <xrayd/http/connection_gate.h>
#include <xrayd/log/logger.h>
#include <xrayd/otlp/otlp_request.h>
#include <xrayd/stats/counters.h>

namespace xrayd::otlp {

// The only path served (OTLP/HTTP's default for traces).
inline constexpr std::string_view traces_path = "/v1/traces";

struct OtlpReceiverOptions {
    std::string address = "127.0.0.1:4318";  // host:port (port 0: any free port)
    // Body as received (compressed or not): a larger one is answered 413.
    std::size_t max_body_bytes = 4 * 1024 * 1024;
    // A gzip body that inflates past this is answered 413 too (a gzip bomb stops here).
    std::size_t max_inflated_bytes = 16 * 1024 * 1024;
    OtlpLimits limits;  // X-Ray's limits; spans over limits.max_span_bytes are refused
    // Connection limits and deadlines: the sampling proxy's (SamplingProxyOptions), for the
    // same kind of clients (SDKs on this host).
    // libmicrohttpd's per-connection memory (the head limit is half of it). At most 32 KB:
    // libmicrohttpd mallocs such a pool but mmaps a larger one, and the munmap (with its TLB
    // flush) of a 64 KB pool was 11 % of the receiver's CPU at 5000 spans/s (bench/README.md).
    std::size_t max_header_bytes = 32 * 1024;
    unsigned max_connections = 256;
    unsigned max_per_peer = 64;
    std::chrono::milliseconds head_timeout = default_head_timeout;
    std::chrono::seconds idle_timeout{30};
    std::chrono::milliseconds body_timeout{10000};  // end of headers to end of body
    // The receiver's threads (libmicrohttpd's thread pool): each reads, checks and offers the
    // requests of its share of the connections.
    unsigned threads = 2;
    // Retry-After of a 503 (the sink is full, or memory ran out).
    std::chrono::seconds retry_after{5};
    Duration error_log_interval = std::chrono::seconds(60);  // one bad-request line per
};

// What the sink did with an offered request.
enum class OfferResult {
    accepted,  // taken: the client is answered 200
    full,      // no room (memory budget): the client is answered 503 + Retry-After and retries
};

// Where accepted requests go (the exporter, in the daemon). Called on the receiver's connection
// threads, several at once: an implementation must be thread-safe, and should be quick (the
// client waits for its answer).
class OtlpSink {
public:
    virtual ~OtlpSink() = default;
    // `body` is the request as read_export_request read it (inflated), given to the sink;
    // `request` describes it (parts, exact span counts) and is valid only during the call.
    // Only requests with at least one accepted span are offered.
    virtual OfferResult offer(OtlpEncoding encoding, std::string body,
                              const OtlpExportRequest& request) noexcept = 0;
};

// POST /v1/traces (OTLP/HTTP):
// - Content-Type application/x-protobuf or application/json (parameters such as charset
//   allowed), else 415; Content-Encoding gzip or identity (or none), else 415;
// - another path 404, another method 405 (Allow: POST);
// - a body over max_body_bytes 413 (at once when Content-Length says so; a chunked body is cut
//   when it passes the limit), a gzip body inflating past max_inflated_bytes 413;
// - a body that is not a valid ExportTraceServiceRequest 400;
// - valid: offered to the sink unless no span in it is accepted; 200 with an
//   ExportTraceServiceResponse (partial_success when spans over limits.max_span_bytes were
//   refused), or 503 with Retry-After when the sink is full.
// Every answer other than 200 carries a google.rpc.Status; bodies are in the request's encoding
// (protobuf when its Content-Type is not one of the two). Every answer closes the connection.
// Why 503 and not 429 when the sink is full: the specification makes both retryable with
// Retry-After; 429 says this client sends too much, 503 that the server cannot take data now.
// A full memory budget is the daemon's state (X-Ray slow or unreachable), shared by every client.
//
// Connections: a ConnectionGate (limits, head deadline, strict head check) in front of
// libmicrohttpd, as the sampling proxy; `threads` threads serve them.
// Threads: create(), start() and stop() from one control thread.
// Lifetime: `sink`, `counters` and `logger` outlive the receiver.
class OtlpReceiver {
public:
    // Checks the options (address syntax, limits); throws StartupError on a bad one. Does not
    // listen yet.
    [[nodiscard]] static std::unique_ptr<OtlpReceiver> create(OtlpReceiverOptions options,
                                                              OtlpSink& sink, Counters& counters,
                                                              Logger& logger);
    ~OtlpReceiver();  // stop()
    OtlpReceiver(const OtlpReceiver&) = delete;
    OtlpReceiver& operator=(const OtlpReceiver&) = delete;

    // Binds and starts serving. Throws StartupError ("otlp http server failed to listen: listen
    // tcp 127.0.0.1:4318: bind: address already in use") when the address cannot be used.
    void start();
    // Stops accepting, closes every connection and joins the server's threads. Requests in
    // flight finish first (a sink call is never cut). Idempotent; noexcept.
    void stop() noexcept;

    // The address bound, "127.0.0.1:41234" (the real port when port 0 was asked for); "" when
    // not serving.
    [[nodiscard]] std::string bound_address() const;
    [[nodiscard]] std::uint16_t port() const noexcept;

private:
    struct State;  // src/otlp/otlp_receiver.cpp
    explicit OtlpReceiver(std::unique_ptr<State> state) noexcept;
    std::unique_ptr<State> state_;
};

}  // namespace xrayd::otlp
