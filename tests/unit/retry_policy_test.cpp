// Tests of the retry policy: failure classes, the retry decision, back-off with jitter and the
// unprocessed error codes. Pure functions, no I/O.
#include <xrayd/xray/retry_policy.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include <xrayd/stats/counters.h>

using namespace std::chrono_literals;
using xrayd::Counter;

TEST_CASE("transport failures are classified into the backend counters") {
    using xrayd::FailureClass;
    CHECK(xrayd::classify_transport_failure(CURLE_OPERATION_TIMEDOUT, 0) == FailureClass::timeout);
    CHECK(xrayd::classify_transport_failure(CURLE_COULDNT_CONNECT, ECONNREFUSED) ==
          FailureClass::connection_refused);
    CHECK(xrayd::classify_transport_failure(CURLE_COULDNT_CONNECT, ENETUNREACH) ==
          FailureClass::other);
    CHECK(xrayd::classify_transport_failure(CURLE_COULDNT_RESOLVE_HOST, 0) ==
          FailureClass::unknown_host);
    CHECK(xrayd::classify_transport_failure(CURLE_PEER_FAILED_VERIFICATION, 0) ==
          FailureClass::other);
    CHECK(xrayd::classify_http_status(400) == FailureClass::http_4xx);
    CHECK(xrayd::classify_http_status(499) == FailureClass::http_4xx);
    CHECK(xrayd::classify_http_status(503) == FailureClass::http_5xx);
    CHECK(xrayd::classify_http_status(302) == FailureClass::other);
    CHECK(xrayd::failure_counter(FailureClass::timeout) == Counter::backend_timeout);
    CHECK(xrayd::failure_counter(FailureClass::connection_refused) ==
          Counter::backend_connection_refused);
    CHECK(xrayd::failure_counter(FailureClass::unknown_host) == Counter::backend_unknown_host);
    CHECK(xrayd::failure_counter(FailureClass::http_4xx) == Counter::backend_http_4xx);
    CHECK(xrayd::failure_counter(FailureClass::http_5xx) == Counter::backend_http_5xx);
    CHECK(xrayd::failure_counter(FailureClass::other) == Counter::backend_other);
}

TEST_CASE("retry decision: 5xx, 429 and throttling retry; other 4xx are final") {
    CHECK(xrayd::http_failure_is_retryable(500, ""));
    CHECK(xrayd::http_failure_is_retryable(503, "ServiceUnavailable"));
    CHECK(xrayd::http_failure_is_retryable(429, ""));
    CHECK(xrayd::http_failure_is_retryable(400, "ThrottlingException"));
    CHECK(
        xrayd::http_failure_is_retryable(400, "com.amazon.coral.availability#ThrottlingException"));
    CHECK(xrayd::http_failure_is_retryable(400, "ThrottlingException:http://internal.amazon.com/"));
    CHECK_FALSE(xrayd::http_failure_is_retryable(400, "InvalidRequestException"));
    CHECK_FALSE(xrayd::http_failure_is_retryable(403, "AccessDeniedException"));
    CHECK_FALSE(xrayd::http_failure_is_retryable(413, ""));
    CHECK(xrayd::transport_failure_is_retryable(CURLE_COULDNT_CONNECT));

    const xrayd::TimePoint t0{};
    CHECK(xrayd::decide_retry(t0, t0 + 9s, 10s) == xrayd::RetryDecision::retry);
    CHECK(xrayd::decide_retry(t0, t0 + 10s, 10s) == xrayd::RetryDecision::give_up);
    CHECK(xrayd::decide_retry(t0, t0, 0s) == xrayd::RetryDecision::give_up);
}

TEST_CASE("backoff grows exponentially with full jitter between base and cap") {
    const xrayd::Duration base = 200ms;
    const xrayd::Duration cap = 30s;
    CHECK(xrayd::backoff_delay(0, base, cap, 0.0, 0s) == base);
    CHECK(xrayd::backoff_delay(0, base, cap, 0.999, 0s) <= base);
    CHECK(xrayd::backoff_delay(3, base, cap, 0.0, 0s) == base);
    CHECK(xrayd::backoff_delay(3, base, cap, 0.5, 0s) == base + (1600ms - base) / 2);
    CHECK(xrayd::backoff_delay(3, base, cap, 0.9999999, 0s) <= 1600ms);
    CHECK(xrayd::backoff_delay(3, base, cap, 0.9999999, 0s) > 1590ms);
    // Capped, and no overflow for huge retry counts.
    CHECK(xrayd::backoff_delay(20, base, cap, 0.9999999, 0s) <= cap);
    CHECK(xrayd::backoff_delay(4000, base, cap, 0.9999999, 0s) <= cap);
    CHECK(xrayd::backoff_delay(4000, base, cap, 0.9999999, 0s) > 29s);
    // Retry-After raises the delay, up to the cap.
    CHECK(xrayd::backoff_delay(0, base, cap, 0.0, 5s) == 5s);
    CHECK(xrayd::backoff_delay(0, base, cap, 0.0, 600s) == cap);
    CHECK(xrayd::backoff_delay(5, base, cap, 0.99, 1s) > 1s);

    xrayd::JitterSource jitter(42);
    double low = 1.0;
    double high = 0.0;
    for (int i = 0; i < 1000; ++i) {
        const double u = jitter.next_unit();
        REQUIRE(u >= 0.0);
        REQUIRE(u < 1.0);
        low = std::min(low, u);
        high = std::max(high, u);
    }
    CHECK(low < 0.1);
    CHECK(high > 0.9);
}

TEST_CASE("unprocessed error codes: throttling and internal errors are transient, bad segments "
          "are final") {
    using xrayd::unprocessed_is_retryable;
    CHECK(unprocessed_is_retryable("ThrottlingException"));
    CHECK(unprocessed_is_retryable("ThrottledException"));
    CHECK(unprocessed_is_retryable("429"));
    CHECK(unprocessed_is_retryable("InternalFailure"));
    CHECK(unprocessed_is_retryable("InternalError"));
    CHECK(unprocessed_is_retryable("ServiceUnavailable"));
    CHECK(unprocessed_is_retryable("com.amazon.coral.availability#ThrottlingException"));
    CHECK(unprocessed_is_retryable("500"));
    CHECK(unprocessed_is_retryable("503"));
    CHECK_FALSE(unprocessed_is_retryable("InvalidSegment"));
    CHECK_FALSE(unprocessed_is_retryable("MissingId"));
    CHECK_FALSE(unprocessed_is_retryable("ParseError"));
    CHECK_FALSE(unprocessed_is_retryable("400"));
    CHECK_FALSE(unprocessed_is_retryable("5000"));
    CHECK_FALSE(unprocessed_is_retryable(""));
    CHECK(xrayd::unprocessed_is_throttled("429"));
    CHECK_FALSE(xrayd::unprocessed_is_throttled("InternalFailure"));
}
