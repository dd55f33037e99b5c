// OtlpExporter: the OTLP sink of the daemon (issue #16). Holds the requests the receiver accepted
// within the memory budget, merges them into requests for X-Ray's OTLP endpoint, and posts them
// gzip-compressed and SigV4-signed, with the uploader's retry policy and throttle control.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <xrayd/aws/credentials.h>
#include <xrayd/common/time.h>
#include <xrayd/http/transport.h>
#include <xrayd/log/logger.h>
#include <xrayd/otlp/otlp_receiver.h>
#include <xrayd/otlp/otlp_request.h>
#include <xrayd/otlp/otlp_spool.h>
#include <xrayd/queue/backpressure.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/stats/counters.h>

namespace xrayd::otlp {

struct OtlpExporterOptions {
    std::string url;  // where requests are posted: "<X-Ray endpoint>/v1/traces" by default
    std::string region;
    int concurrency = 8;  // requests in flight, at most
    std::chrono::milliseconds request_timeout{5000};
    TransportOptions transport;  // proxy, TLS trust, User-Agent; timeouts as request_timeout
    Duration retry_base = std::chrono::milliseconds(200);
    Duration retry_cap = std::chrono::seconds(30);
    Duration retry_budget = std::chrono::minutes(10);  // per request, from its first failure
    // Requests wait this long at most for others to merge with (the segments' linger): an
    // SDK's batch costs one merged request per linger, not one each.
    Duration linger = std::chrono::milliseconds(100);
    Backpressure backpressure = Backpressure::drop_newest;
    OtlpLimits limits;  // X-Ray's per-request limits, which merged requests stay within
    // Nullable: the disk spool. When set, what memory cannot keep goes to it instead of being
    // dropped — requests past the retry budget, the oldest queued ones while memory is more
    // than three quarters full, what is held at the drain deadline — and it is read back, one
    // request at a time, while X-Ray answers. Used on the exporter thread only; must outlive
    // the exporter.
    OtlpSpool* spool = nullptr;
    // zlib level of the posted bodies: 1, the fastest, since the exporter's CPU is what a host
    // pays for and the link to X-Ray is rarely the limit.
    int gzip_level = 1;
};

// Spans move through the exporter as whole client requests ("items"); their outcomes are
// counted in spans (CounterKind::otlp_*), so that with the receiver's counters
//   otlp_received = otlp_sent + otlp_rejected + otlp_dropped + held_spans()
// holds between calls.
//
// offer() (receiver threads): charges the body to the memory budget and queues it. When the
// budget is full, drop-newest answers `full` (the receiver answers 503, the SDK retries);
// drop-oldest gives up the oldest queued requests (otlp_spans_dropped_oldest) until the new one
// fits, and answers `full` only when nothing queued is left to give up (requests in flight or
// waiting for a retry are never given up: they may already be stored). With a spool, neither
// policy gives anything up here: the exporter thread keeps a quarter of memory free by moving
// queued requests to disk, and a client that still finds it full gets a 503.
//
// The exporter thread merges queued requests of one encoding (OtlpBatch: protobuf by
// concatenating resource_spans fields, JSON by joining resourceSpans elements) once the oldest
// has waited `linger` or the merge is full, gzips and signs the body and posts it:
// - 2xx: otlp_spans_sent, less the partial_success rejected_spans (otlp_spans_rejected_by_xray,
//   its error_message logged, rate-limited);
// - 5xx, 429, throttling errors, transport failures: otlp_upload_failures, then a retry with
//   jittered exponential back-off (Retry-After honoured, capped) until `retry_budget` has passed
//   since the request's first failure: then otlp_spans_dropped_gave_up. 429s halve the requests
//   in flight (ThrottleController), successes grow them back;
// - a final 4xx on a merged request of several client requests: it is split and each client
//   request sent again on its own (otlp_requests_split), so that one bad client request does not
//   cost the others; on a single one: otlp_spans_rejected_request_<class> (invalid, denied,
//   too_large, other), logged with X-Ray's words.
//
// With a spool (options.spool), the identity gains the spans on disk (OtlpSpool's gauge):
//   otlp_received = otlp_sent + otlp_rejected + otlp_dropped + held_spans() + spooled,
// requests past the retry budget are spooled instead of given up, and at the drain deadline
// what is held goes to disk (held_spans() 0). Replay: while the last answer was a success, up
// to two requests read back wait or are in flight at a time, and only while memory is less
// than half full; after a failure one is read back only when nothing else is held (it probes
// whether X-Ray is back).
//
// Threads: offer() any thread; held_spans() any thread; start() and drain() one control thread.
// Lifetime: `credentials`, `counters`, `logger` and `budget` outlive the exporter.
// IMPORTANT: curl_global_init (CurlGlobal::init()) must have run before create().
class OtlpExporter final : public OtlpSink {
public:
    // Throws StartupError on a bad option (a URL that is not http(s), concurrency < 1) or when
    // libcurl cannot be set up. Does not start the thread.
    [[nodiscard]] static std::unique_ptr<OtlpExporter> create(OtlpExporterOptions options,
                                                              CredentialsProvider& credentials,
                                                              Counters& counters, Logger& logger,
                                                              MemoryBudget& budget);
    ~OtlpExporter() override;  // drain(now): gives up what is still held
    OtlpExporter(const OtlpExporter&) = delete;
    OtlpExporter& operator=(const OtlpExporter&) = delete;

    OfferResult offer(OtlpEncoding encoding, std::string body,
                      const OtlpExportRequest& request) noexcept override;

    // Starts the exporter thread ("xrayd-otlp"). Throws StartupError if it cannot.
    void start();

    // Shutdown, after the receiver stopped: from now on offers are refused, what is queued is
    // sent at once (no linger) and retries go on until nothing is held or `deadline` passes.
    // Returns at once, so the daemon drains segments and spans side by side.
    void begin_drain(TimePoint deadline) noexcept;
    // begin_drain(deadline) if not begun, then waits for the thread: it cancels what is still
    // in flight at the deadline and ends. Returns the spans still held then (the exit summary's
    // otlp "held": not counted as dropped, as the segments' held). A second call returns 0.
    [[nodiscard]] std::size_t drain(TimePoint deadline) noexcept;

    // Spans accepted and not yet at an outcome: queued, in flight or waiting to retry.
    [[nodiscard]] std::size_t held_spans() const noexcept;

    // The requests in flight now (the throttle controller's limit applies to it).
    [[nodiscard]] std::size_t in_flight() const noexcept;

private:
    struct State;  // src/otlp/otlp_exporter.cpp
    explicit OtlpExporter(std::unique_ptr<State> state) noexcept;
    std::unique_ptr<State> state_;
};

}  // namespace xrayd::otlp
