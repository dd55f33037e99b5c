// Uploader: sends sealed batches to X-Ray with PutTraceSegments over libcurl multi.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <xrayd/aws/credentials.h>
#include <xrayd/batch/batch_sink.h>
#include <xrayd/batch/batch_spill.h>
#include <xrayd/common/time.h>
#include <xrayd/flow/event_loop.h>
#include <xrayd/http/transport.h>
#include <xrayd/log/logger.h>
#include <xrayd/queue/backpressure.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/stats/counters.h>
#include <xrayd/stats/latency_histogram.h>

namespace xrayd {

struct UploaderOptions {
    std::string endpoint;  // base URL, e.g. "https://xray.us-east-2.amazonaws.com"
    std::string region;
    int concurrency = 8;  // requests in flight
    std::chrono::milliseconds request_timeout{5000};
    // Proxy, TLS trust and User-Agent; its timeouts are replaced by request_timeout.
    TransportOptions transport;
    Duration retry_base = std::chrono::milliseconds(200);
    Duration retry_cap = std::chrono::seconds(30);
    Duration retry_budget = std::chrono::minutes(10);  // per batch, from its first failure
    // Throttle-aware concurrency: requests in flight halve on each round of throttled answers
    // and grow by one per this many successes, back up to `concurrency`.
    unsigned throttle_successes_per_increase = 10;
    Backpressure backpressure = Backpressure::drop_newest;
    // drop-oldest keeps this much of the memory limit free, evicting ahead of need so that
    // arriving segments find room. 0: an eighth of the limit.
    std::size_t drop_oldest_headroom = 0;
    // Nullable: the disk spool. When set, what memory cannot keep is spilled to it instead of
    // dropped (batches evicted for room under either backpressure policy, past their retry
    // budget, held at shutdown), and batches read back from it (Batch::origin() != 0) are
    // sent beside fresh ones, with at most half the requests in flight while fresh batches
    // wait. Must outlive the uploader.
    BatchSpill* spill = nullptr;
    // Nullable; when set, observes the duration of every request X-Ray answered (any HTTP
    // status; transport failures are not answers). Must outlive the uploader.
    LatencyHistogram* latency = nullptr;
};

// POST <endpoint>/TraceSegments, SigV4-signed for service "xray", at most `concurrency`
// requests in flight over kept-alive connections (HTTP/2 where the server offers it).
//
// Outcomes and counters (upload_requests counts every attempt):
// - 2xx: segments_sent += count - unprocessed, rejected_by_xray += unprocessed, batches_sent.
// - transport failures, 5xx, 429 and throttling 4xx: the matching backend_* counter, then a
//   retry with jittered exponential back-off (upload_retries), ahead of newer batches, until
//   `retry_budget` has passed since the batch's first failure: then dropped_gave_up += count.
// - other 4xx: backend_http_4xx, and rejected_request_<class> += count (final; the class from
//   final_rejection_counter: invalid, denied, too_large, other), logged with X-Ray's
//   error type and message.
// - no credentials: backend_other, retried like a transport failure.
// - 429 / ThrottlingException (and throttled unprocessed segments) also count upload_throttled
//   and feed a ThrottleController: requests in flight shrink (AIMD) while X-Ray throttles and
//   grow back when it stops; one Info line when throttling starts, one when it ends.
// - UnprocessedTraceSegments with a transient ErrorCode (unprocessed_is_retryable) are rebuilt
//   into a smaller batch and retried like a failed batch (unprocessed_retried); the others
//   count as rejected_by_xray. Needs `budget`; without it every unprocessed segment is final.
// - Backpressure::drop_oldest (needs `budget`): while the budget has less than the headroom
//   free, the batch with the oldest segment among those not in flight is given up
//   (dropped_oldest): queued, due for a retry or waiting out a back-off (a batch waiting for
//   its retry is not in flight). In-flight batches are never evicted: a request cannot be
//   un-sent, and cancelling it would lose what X-Ray may already have stored. When only they
//   hold the memory, new segments are refused at ingest (dropped_buffer_full), as drop-newest.
// At every moment between calls, segments submitted = sent + rejected + dropped (by the
// counters above) + held_segments().
// No proxy is read from the environment: `transport.proxy` is the only one used (the config
// loader is the one place that knows the environment).
//
// Threads: one pipeline thread calls everything, except wakeup() and set_concurrency() (any
// thread).
// Lifetime: `credentials`, `counters` and `logger` outlive the uploader.
// IMPORTANT: curl_global_init (CurlGlobal::init()) must have run before create(), and the
// CurlGlobal must outlive the uploader.
class Uploader final : public BatchSink, public EventLoop {
public:
    // Throws StartupError on a bad option (endpoint without an http(s) scheme, concurrency < 1)
    // or when libcurl cannot be set up. `budget` (nullable) is the one the batches are charged
    // to: it enables re-sending unprocessed segments and drop-oldest; it must outlive the
    // uploader.
    [[nodiscard]] static std::unique_ptr<Uploader> create(UploaderOptions options,
                                                          CredentialsProvider& credentials,
                                                          Counters& counters, Logger& logger,
                                                          MemoryBudget* budget = nullptr);
    ~Uploader() override;
    Uploader(const Uploader&) = delete;
    Uploader& operator=(const Uploader&) = delete;

    void submit(Batch&& batch) noexcept override;
    using EventLoop::run_once;
    void run_once(Duration max_wait, Answers answers) noexcept override;
    void wakeup() noexcept override;
    [[nodiscard]] std::size_t held_segments() const noexcept override;
    [[nodiscard]] std::size_t abandon() noexcept override;
    // True while a batch read back from the spool is welcome: uploads succeed and fewer than
    // two replayed batches wait; after a failure, only when nothing at all is held (one batch
    // then probes whether X-Ray is back).
    [[nodiscard]] bool wants_replay() const noexcept override;

    // Requests allowed in flight now (the throttle controller's limit). Pipeline thread.
    [[nodiscard]] int in_flight_limit() const noexcept;

    // A new `concurrency` (SIGHUP reload); below 1 is taken as 1. Any thread: it is stored and
    // the pipeline thread, woken, applies it on its next run_once(): the throttle ceiling and
    // the pool of transfer slots follow it. Transfers in flight are never cancelled: after a
    // decrease no new request starts until fewer than the new limit are in flight.
    void set_concurrency(int concurrency) noexcept;

    // Changes the per-batch retry budget and the per-request timeout (SIGHUP reload). Any
    // thread; the budget applies at a batch's next failure, the timeout to requests that start
    // afterwards. Non-positive values are ignored.
    void set_retry_settings(Duration retry_budget,
                            std::chrono::milliseconds request_timeout) noexcept;

private:
    struct State;  // src/upload/uploader.cpp: the parts (JobQueues, TransferPool, AnswerHandler)
    explicit Uploader(std::unique_ptr<State> state) noexcept;
    std::unique_ptr<State> state_;
};

}  // namespace xrayd
