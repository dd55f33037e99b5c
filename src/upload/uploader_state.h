// Uploader::State: the uploader's private state, shared by the files of its implementation.
#pragma once

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <xrayd/aws/sigv4.h>
#include <xrayd/http/curl.h>
#include <xrayd/http/transport.h>
#include <xrayd/upload/retry_policy.h>
#include <xrayd/upload/throttle_controller.h>
#include <xrayd/upload/uploader.h>
#include <xrayd/upload/xray_request.h>
#include <xrayd/upload/xray_response.h>

namespace xrayd {

inline constexpr std::size_t max_response_bytes = 1 << 20;  // X-Ray answers are a few hundred bytes

// A batch and its retry bookkeeping.
struct UploadJob {
    explicit UploadJob(Batch&& b) noexcept : batch(std::move(b)) {}
    Batch batch;
    unsigned failures = 0;
    TimePoint first_failure{};
    TimePoint due{};
};

// One transfer slot: a reusable easy handle (kept-alive connections live in the multi's
// cache) and what the current attempt needs to stay alive. Not movable once configured:
// libcurl holds its address (callbacks, CURLOPT_PRIVATE, the error buffer).
struct UploadSlot {
    CurlEasy easy;
    CurlSlist headers;             // must outlive the transfer
    std::optional<UploadJob> job;  // the batch in flight: its body is sent without copying
    std::string response;
    std::string error_type_header;  // x-amzn-ErrorType
    bool response_too_large = false;
    TimePoint started{};
    char error_buffer[CURL_ERROR_SIZE]{};
};

// What queue_retry() did with a failed batch.
enum class RetryQueued {
    queued,         // waiting for its due time
    gave_up,        // past the retry budget: counted as dropped_gave_up, released
    out_of_memory,  // could not be queued: counted as dropped_gave_up, released
};

// Everything runs on the pipeline thread, except `wanted_concurrency` (written from any thread).
struct Uploader::State {
    using Job = UploadJob;
    using Slot = UploadSlot;

    State(UploaderOptions opts, XRayTarget ep, CredentialsProvider& creds, Counters& ctrs,
          Logger& log, MemoryBudget* mem, std::uint64_t seed);
    ~State();
    State(const State&) = delete;
    State& operator=(const State&) = delete;

    // Transfers (uploader_transfers.cpp).
    // Adds one configured idle slot. Throws StartupError when libcurl cannot provide it.
    void add_slot();
    void configure(Slot& slot);
    // Picks up set_concurrency(): throttle ceiling, connection cache, slot pool size.
    void apply_concurrency() noexcept;
    void resize_pool() noexcept;
    void do_work() noexcept;
    void start(Slot& slot, Job&& job, TimePoint now) noexcept;
    bool drain_completions() noexcept;
    void complete(Slot& slot, CURLcode result) noexcept;
    [[nodiscard]] std::size_t in_flight() const noexcept { return slots.size() - idle.size(); }

    // Queues, retries and eviction (uploader_queues.cpp).
    void promote_due(TimePoint now) noexcept;
    void start_ready(TimePoint now) noexcept;
    [[nodiscard]] bool can_start() const noexcept;
    // `rejected_as`: where the segments are counted when the failure is final.
    void on_failure(Job&& job, FailureClass failure, bool retryable, std::string_view reason,
                    Duration retry_after, TimePoint now,
                    Counter rejected_as = Counter::rejected_request_other) noexcept;
    // Schedules `job` (which failed) for another attempt; `*delay` gets the back-off.
    RetryQueued queue_retry(Job&& job, Duration retry_after, TimePoint now,
                            Duration* delay) noexcept;
    void make_room() noexcept;
    void release(std::size_t segments) noexcept { held -= std::min(held, segments); }
    void log_failure(RateLimiter& limiter, std::string_view reason,
                     std::string_view outcome) noexcept;
    [[nodiscard]] Duration next_wait(Duration max_wait, TimePoint now) const noexcept;

    // Answers (uploader_outcomes.cpp).
    void on_http_answer(Slot& slot, Job&& job, long status, TimePoint now) noexcept;
    void on_success(Job&& job, TimePoint started, TimePoint now, std::string_view body) noexcept;
    void resend_unprocessed(Job&& job, std::span<const std::size_t> indexes,
                            TimePoint now) noexcept;
    void on_throttled(TimePoint started, TimePoint now, std::string_view reason) noexcept;
    void on_not_throttled() noexcept;

    UploaderOptions options;
    TransportOptions transport;  // built once from `options`
    XRayTarget endpoint;
    CredentialsProvider& credentials;
    Counters& counters;
    Logger& logger;
    MemoryBudget* budget;  // nullable
    SigV4Signer signer;
    ThrottleController throttle;
    int concurrency;                      // applied: the throttle ceiling and the pool's size
    std::atomic<int> wanted_concurrency;  // set_concurrency(), from any thread
    // set_retry_settings(), from any thread; read when a transfer starts or a batch fails.
    std::atomic<Duration::rep> retry_budget;
    std::atomic<std::chrono::milliseconds::rep> request_timeout_ms;
    CurlMulti multi;
    std::vector<std::unique_ptr<Slot>> slots;
    std::vector<Slot*> idle;
    std::deque<Job> fresh;        // submitted, never tried
    std::deque<Job> retry_ready;  // due retries: they go before fresh batches
    std::vector<Job> waiting;     // failed, waiting for their due time
    std::size_t held = 0;
    simdjson::dom::parser parser;
    std::vector<UnprocessedSegment> unprocessed;
    std::vector<std::size_t> resend_indexes;
    std::vector<char> matched;            // per segment of the batch being answered
    simdjson::dom::parser resend_parser;  // request bodies: kept apart from the small answers
    JitterSource jitter;
    RateLimiter retry_limiter;
    RateLimiter final_limiter;
    RateLimiter internal_limiter;
    RateLimiter evict_limiter;
    // Per reason: a final unprocessed item, one sent again, an answer naming more items than
    // its batch holds (UnprocessedTraceSegments).
    RateLimiter unprocessed_final_limiter;
    RateLimiter unprocessed_retry_limiter;
    RateLimiter unprocessed_excess_limiter;
    std::uint64_t evicted_since_log = 0;
};

}  // namespace xrayd
