// Retry policy of the uploader: failure classification, the retry decision and the back-off,
// as small pure functions.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <string_view>

#include <xrayd/common/time.h>
#include <xrayd/stats/counters.h>

namespace xrayd {

// Why a PutTraceSegments attempt failed, as the backend_* counters split it.
enum class FailureClass { timeout, connection_refused, unknown_host, http_4xx, http_5xx, other };

// The backend_* counter of a failure class.
[[nodiscard]] Counter failure_counter(FailureClass failure) noexcept;

// A transfer that ended with `code` (never CURLE_OK); `os_errno` is CURLINFO_OS_ERRNO.
[[nodiscard]] FailureClass classify_transport_failure(CURLcode code, long os_errno) noexcept;

// A completed transfer whose HTTP status is not 2xx.
[[nodiscard]] FailureClass classify_http_status(long status) noexcept;

// True when an AWS error type names throttling. Accepts the bare name ("ThrottlingException")
// and the qualified forms AWS uses ("com.amazon.coral.availability#ThrottlingException",
// "ThrottlingException:http://internal.amazon.com/...").
[[nodiscard]] bool is_throttling_error(std::string_view error_type) noexcept;

// Whether a non-2xx response is worth retrying: 5xx, 429 and throttling errors are; any other
// status (4xx: the request itself is wrong) is final. `error_type` is X-Ray's error type from
// the body's `__type`/`code` or the x-amzn-ErrorType header (may be empty).
[[nodiscard]] bool http_failure_is_retryable(long status, std::string_view error_type) noexcept;

// The counter a final (not retryable) HTTP failure's segments go to, by its error: 401/403 and
// the AWS authentication errors (AccessDenied, InvalidSignature, UnrecognizedClient,
// ExpiredToken, ...) -> rejected_request_denied; 413 -> rejected_request_too_large; other
// 400s (InvalidRequestException, ...) -> rejected_request_invalid; anything else ->
// rejected_request_other. The log line names the exact code.
[[nodiscard]] Counter final_rejection_counter(long status, std::string_view error_type) noexcept;

// Whether an UnprocessedTraceSegments ErrorCode is transient, so the segment is worth sending
// again: throttling (see is_throttling_error), X-Ray's internal errors ("InternalFailure",
// "InternalError", "InternalServerError", "ServiceUnavailable", "ServiceUnavailableException")
// and numeric codes "429" and "5xx". Anything else (a bad segment: "InvalidSegment",
// "MissingId", ...) is final.
[[nodiscard]] bool unprocessed_is_retryable(std::string_view error_code) noexcept;

// Whether an UnprocessedTraceSegments ErrorCode says X-Ray throttled that segment
// (a throttling name or "429"): it slows the uploader down like a 429 answer.
[[nodiscard]] bool unprocessed_is_throttled(std::string_view error_code) noexcept;

// A transport failure (no HTTP status) is always retryable: it never means X-Ray refused the
// batch, only that it was not delivered. Kept as a function so the rule is stated once.
[[nodiscard]] constexpr bool transport_failure_is_retryable(CURLcode) noexcept {
    return true;
}

// Delay before retry number `retry` (0 for the first retry): exponential back-off with full
// jitter, drawn uniformly from [base, min(cap, base * 2^retry)] with `unit_random` in [0, 1).
// A server's Retry-After (`retry_after`, zero when absent) raises the delay to at least
// min(retry_after, cap): it is honoured, but a hostile value cannot park a batch past the cap.
[[nodiscard]] Duration backoff_delay(unsigned retry, Duration base, Duration cap,
                                     double unit_random, Duration retry_after) noexcept;

// A Retry-After header's seconds (libcurl's CURLINFO_RETRY_AFTER) as a Duration: negative is
// zero (absent), and anything past a day is a day, clamped before the conversion to
// nanoseconds so that a hostile 1e10 s cannot overflow into a negative or tiny delay.
[[nodiscard]] Duration retry_after_delay(std::int64_t seconds) noexcept;

// What to do with a batch after a retryable failure at `now`.
enum class RetryDecision { retry, give_up };

// Gives up once `budget` has passed since the batch's first failure (`first_failure`).
[[nodiscard]] RetryDecision decide_retry(TimePoint first_failure, TimePoint now,
                                         Duration budget) noexcept;

// A small, fast, non-cryptographic generator (splitmix64) for jitter. Not thread-safe.
class JitterSource {
public:
    explicit JitterSource(std::uint64_t seed) noexcept : state_(seed) {}
    // Uniform in [0, 1).
    [[nodiscard]] double next_unit() noexcept;

private:
    std::uint64_t state_;
};

}  // namespace xrayd
