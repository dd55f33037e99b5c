// Tests of AnswerHandler: each kind of finished attempt (2xx with or without unprocessed
// segments, 4xx, 5xx, 429, transport failures) counted, logged, retried or final, and the
// throttle feedback. Real batches, real JobQueues and ThrottleController; the answers are
// built by hand as the TransferPool hands them over.
#include "src/upload/answer_handler.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include <xrayd/stats/latency_histogram.h>

#include "upload_fixture.h"

using namespace std::chrono_literals;
using xrayd::AnswerHandler;
using xrayd::Counter;
using xrayd::FinishedTransfer;
using xrayd::TimePoint;
using xrayd::UploadJob;
using xrayd::test::Harness;
using xrayd::test::segment_id;

namespace {

struct HandlerFixture {
    explicit HandlerFixture(bool with_budget = true, int ceiling = 4)
        : throttle(ceiling, 1),
          handler({.queues = queues,
                   .throttle = throttle,
                   .settings = settings,
                   .counters = h.counters,
                   .logger = h.logger,
                   .internal_errors = internal,
                   .budget = with_budget ? &h.budget : nullptr,
                   .latency = &latency}) {}

    // A job of `n` segments, taken from the queues as the uploader takes it to send it.
    UploadJob job(int n) {
        REQUIRE(queues.push_fresh(h.make_batch(n)));
        return queues.take_ready();
    }

    // An answer to `job` with `status` and `body`, 30 ms after it was sent.
    FinishedTransfer answer(UploadJob&& j, long status, std::string_view body,
                            std::string_view error_type = {}) {
        FinishedTransfer done{std::move(j)};
        done.started = t0;
        done.finished = t0 + 30ms;
        done.status = status;
        done.body = body;
        done.error_type_header = error_type;
        return done;
    }

    // The jobs waiting for a retry, once due (each promoted and taken).
    std::size_t due_retries() {
        queues.promote_due(t0 + 1h);
        std::size_t n = 0;
        while (queues.has_ready()) {
            retried.emplace(queues.take_ready());
            ++n;
        }
        return n;
    }

    Harness h;
    xrayd::JobQueues queues{h.counters, 5ms, 50ms, 7};
    xrayd::ThrottleController throttle;
    xrayd::LiveSettings settings{4, 60s, 5000ms};
    xrayd::RateLimiter internal{10s};
    xrayd::LatencyHistogram latency;
    AnswerHandler handler;
    TimePoint t0 = xrayd::Clock::now();
    std::optional<UploadJob> retried;  // the last job due_retries() took
};

}  // namespace

TEST_CASE("a 2xx without unprocessed segments counts them sent, releases them and logs it") {
    HandlerFixture f;
    f.handler.on_finished(f.answer(f.job(3), 200, R"({"UnprocessedTraceSegments":[]})"));
    CHECK(f.h.get(Counter::batches_sent) == 1);
    CHECK(f.h.get(Counter::segments_sent) == 3);
    CHECK(f.queues.held() == 0);
    CHECK(f.h.log->contains("[Info] Successfully sent batch of 3 segments (0.030 seconds)"));
    CHECK(f.latency.snapshot().count == 1);
}

TEST_CASE("an unreadable 2xx answer still counts the batch sent and warns once") {
    HandlerFixture f;
    f.handler.on_finished(f.answer(f.job(2), 200, "<html>"));
    CHECK(f.h.get(Counter::segments_sent) == 2);
    CHECK(f.queues.held() == 0);
    CHECK(f.h.log->contains("[Warn] Could not read the PutTraceSegments response"));
}

TEST_CASE("a 5xx is counted and scheduled for a retry: the job stays held") {
    HandlerFixture f;
    f.handler.on_finished(f.answer(f.job(2), 503, R"({"message":"busy"})"));
    CHECK(f.h.get(Counter::backend_http_5xx) == 1);
    CHECK(f.h.get(Counter::upload_retries) == 1);
    CHECK(f.h.get(Counter::segments_sent) == 0);
    CHECK(f.queues.held() == 2);
    CHECK(f.h.log->contains("[Error] Sending segment batch failed with: HTTP 503: busy "
                            "(retrying in "));
    REQUIRE(f.due_retries() == 1);
    CHECK(f.retried->failures == 1);
    CHECK(f.retried->first_failure == f.t0 + 30ms);
    CHECK(f.latency.snapshot().count == 1);
}

TEST_CASE("a 400 is final: counted by its error class, released, X-Ray's message logged") {
    HandlerFixture f;
    f.handler.on_finished(f.answer(
        f.job(4), 400,
        R"({"__type":"com.amazon.coral.service#InvalidRequestException","message":"bad"})"));
    CHECK(f.h.get(Counter::backend_http_4xx) == 1);
    CHECK(f.h.get(Counter::rejected_request_invalid) == 4);
    CHECK(f.h.get(Counter::upload_retries) == 0);
    CHECK(f.queues.held() == 0);
    CHECK(f.due_retries() == 0);
    CHECK(f.h.log->contains("HTTP 400 InvalidRequestException: bad (not retryable; 4 segments "
                            "rejected)"));
}

TEST_CASE("a 429 throttles: the limit halves, then grows back with successes, one line each") {
    HandlerFixture f(true, 4);
    f.handler.on_finished(f.answer(f.job(1), 429, "{}"));
    CHECK(f.h.get(Counter::upload_throttled) == 1);
    CHECK(f.h.get(Counter::backend_http_4xx) == 1);
    CHECK(f.h.get(Counter::upload_retries) == 1);
    CHECK(f.throttle.limit() == 2);
    CHECK(f.h.log->count("[Info] X-Ray is throttling PutTraceSegments (HTTP 429): requests in "
                         "flight cut from 4 to 2") == 1);
    // A ThrottlingException in the x-amzn-ErrorType header of a 400 is throttling too.
    FinishedTransfer later = f.answer(f.job(1), 400, "{}", "ThrottlingException");
    later.started = f.t0 + 1s;  // sent after the halving: halves again
    f.handler.on_finished(std::move(later));
    CHECK(f.throttle.limit() == 1);
    CHECK(f.h.get(Counter::upload_throttled) == 2);
    CHECK(f.h.get(Counter::upload_retries) == 2);
    for (int i = 0; i < 3; ++i) {
        f.handler.on_finished(f.answer(f.job(1), 200, "{}"));
    }
    CHECK(f.throttle.limit() == 4);
    CHECK(f.h.log->count("[Info] X-Ray throttling ended after ") == 1);
    CHECK(f.queues.held() == 2);  // the two throttled jobs, waiting for their retry
}

TEST_CASE("a transport failure is classified, retried, and not observed as an answer") {
    HandlerFixture f;
    FinishedTransfer done{f.job(2)};
    done.started = f.t0;
    done.finished = f.t0 + 1ms;
    done.result = CURLE_COULDNT_CONNECT;
    done.os_errno = ECONNREFUSED;
    done.failure = "Couldn't connect to server";
    f.handler.on_finished(std::move(done));
    CHECK(f.h.get(Counter::backend_connection_refused) == 1);
    CHECK(f.h.get(Counter::upload_retries) == 1);
    CHECK(f.queues.held() == 2);
    CHECK(f.latency.snapshot().count == 0);
    CHECK(f.h.log->contains("failed with: Couldn't connect to server (retrying in "));
    CHECK(f.due_retries() == 1);
}

TEST_CASE("a failure past the retry budget is given up as dropped_gave_up") {
    HandlerFixture f;
    f.settings.set_retry_budget(1s);
    UploadJob j = f.job(3);
    j.failures = 4;
    j.first_failure = f.t0 - 2s;
    f.handler.on_failure(std::move(j), xrayd::FailureClass::timeout, true, "timed out",
                         xrayd::Duration::zero(), f.t0);
    CHECK(f.h.get(Counter::backend_timeout) == 1);
    CHECK(f.h.get(Counter::dropped_gave_up) == 3);
    CHECK(f.h.get(Counter::upload_retries) == 0);
    CHECK(f.queues.held() == 0);
    CHECK(f.h.log->contains("timed out (gave up after 5 attempts; 3 segments dropped)"));
}

TEST_CASE("unprocessed segments: transient ones are re-sent as a smaller batch, final ones "
          "count as rejected_by_xray") {
    HandlerFixture f;
    const std::string body =
        fmt::format(R"({{"UnprocessedTraceSegments":[{{"Id":"{}","ErrorCode":"InternalFailure"}},)"
                    R"({{"Id":"{}","ErrorCode":"InvalidSegment","Message":"no"}}]}})",
                    segment_id(2), segment_id(0));
    UploadJob j = f.job(4);  // segments 0..3
    j.failures = 1;
    j.first_failure = f.t0 - 1s;
    f.handler.on_finished(f.answer(std::move(j), 200, body));
    CHECK(f.h.get(Counter::batches_sent) == 1);
    CHECK(f.h.get(Counter::segments_sent) == 2);
    CHECK(f.h.get(Counter::rejected_by_xray) == 1);
    CHECK(f.h.get(Counter::unprocessed_retried) == 1);
    CHECK(f.queues.held() == 1);
    CHECK(f.h.log->contains(fmt::format("[Error] Unprocessed segment: id={}", segment_id(0))));
    CHECK(f.h.log->contains(
        fmt::format("[Warn] Unprocessed segment will be sent again: id={}", segment_id(2))));
    REQUIRE(f.due_retries() == 1);
    REQUIRE(f.retried->batch.segment_count() == 1);
    CHECK(f.retried->batch.segments()[0].id_view() == segment_id(2));
    CHECK(f.retried->failures == 2);  // the original's bookkeeping carries over
    CHECK(f.retried->first_failure == f.t0 - 1s);
    CHECK(f.h.accounted() + f.queues.held() == 4);
}

TEST_CASE("without a memory budget every unprocessed segment is final") {
    HandlerFixture f(false);
    const std::string body = fmt::format(
        R"({{"UnprocessedTraceSegments":[{{"Id":"{}","ErrorCode":"InternalFailure"}}]}})",
        segment_id(1));
    f.handler.on_finished(f.answer(f.job(2), 200, body));
    CHECK(f.h.get(Counter::segments_sent) == 1);
    CHECK(f.h.get(Counter::rejected_by_xray) == 1);
    CHECK(f.h.get(Counter::unprocessed_retried) == 0);
    CHECK(f.queues.held() == 0);
    CHECK(f.due_retries() == 0);
}

TEST_CASE("throttled unprocessed segments slow the uploader down like a 429") {
    HandlerFixture f(true, 4);
    const std::string body = fmt::format(
        R"({{"UnprocessedTraceSegments":[{{"Id":"{}","ErrorCode":"ThrottlingException"}}]}})",
        segment_id(0));
    f.handler.on_finished(f.answer(f.job(2), 200, body));
    CHECK(f.h.get(Counter::upload_throttled) == 1);
    CHECK(f.throttle.limit() == 2);
    CHECK(f.h.get(Counter::unprocessed_retried) == 1);
    CHECK(f.h.log->contains("(UnprocessedTraceSegments throttled)"));
}
