// AnswerHandler: what each finished PutTraceSegments attempt means — counted, logged, retried,
// re-sent in part or final — and the throttling it tells of.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <xrayd/common/time.h>
#include <xrayd/log/logger.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/stats/counters.h>
#include <xrayd/stats/latency_histogram.h>
#include <xrayd/upload/throttle_controller.h>
#include <xrayd/xray/retry_policy.h>
#include <xrayd/xray/xray_response.h>

#include "job_queues.h"
#include "live_settings.h"
#include "upload_job.h"

namespace xrayd {

// How often each kind of failure may be logged.
inline constexpr Duration failure_log_interval = std::chrono::seconds(10);

// The outcomes, counters and log lines are the ones include/xrayd/upload/uploader.h lists.
// Every job handed in reaches an outcome: counted and released from `queues`, or scheduled
// there for a retry (the job stays held).
//
// Threads: the pipeline thread only. Lifetime: every reference (and `budget` and `latency`
// when set) outlives the handler.
class AnswerHandler {
public:
    struct Parts {
        JobQueues& queues;             // retries go back here; outcomes are released here
        ThrottleController& throttle;  // fed by 429s, throttling errors and successes
        const LiveSettings& settings;  // the retry budget, read at each failure
        Counters& counters;
        Logger& logger;
        RateLimiter& internal_errors;    // shared with the TransferPool: one budget of lines
        MemoryBudget* budget = nullptr;  // nullable: without it, unprocessed segments are final
        LatencyHistogram* latency = nullptr;  // nullable: observes every answered request
    };

    explicit AnswerHandler(Parts parts) noexcept;

    // A finished transfer: X-Ray's answer (any status) or a transport failure.
    void on_finished(FinishedTransfer&& done) noexcept;

    // An attempt failed (`failure` counts it): retried while `retryable` and within the retry
    // budget, else final and counted as `rejected_as` (a given-up retry is dropped_gave_up).
    // `reason` is logged, rate-limited.
    void on_failure(UploadJob&& job, FailureClass failure, bool retryable, std::string_view reason,
                    Duration retry_after, TimePoint now,
                    Counter rejected_as = Counter::rejected_request_other) noexcept;

private:
    void on_http_answer(FinishedTransfer&& done) noexcept;
    void on_success(UploadJob&& job, TimePoint started, TimePoint now,
                    std::string_view body) noexcept;
    void resend_unprocessed(UploadJob&& job, std::span<const std::size_t> indexes,
                            TimePoint now) noexcept;
    void on_throttled(TimePoint started, TimePoint now, std::string_view reason) noexcept;
    void on_not_throttled() noexcept;
    void log_failure(RateLimiter& limiter, std::string_view reason,
                     std::string_view outcome) noexcept;

    Parts p_;
    simdjson::dom::parser parser_;
    std::vector<UnprocessedSegment> unprocessed_;
    std::vector<std::size_t> resend_indexes_;
    std::vector<char> matched_;            // per segment of the batch being answered
    simdjson::dom::parser resend_parser_;  // request bodies: kept apart from the small answers
    RateLimiter retry_limiter_;
    RateLimiter final_limiter_;
    // Per reason: a final unprocessed item, one sent again, an answer naming more items than
    // its batch holds (UnprocessedTraceSegments).
    RateLimiter unprocessed_final_limiter_;
    RateLimiter unprocessed_retry_limiter_;
    RateLimiter unprocessed_excess_limiter_;
};

}  // namespace xrayd
