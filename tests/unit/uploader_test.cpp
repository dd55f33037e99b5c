// Tests of the Uploader end to end: batches submitted, driven by run_once(), against a real
// HTTP(S) server on loopback (requests, retries, throttling, unprocessed segments,
// backpressure and exact accounting). Its parts have their own tests: job_queues_test,
// transfer_pool_test and answer_handler_test.
#include <xrayd/upload/uploader.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <xrayd/aws/credentials.h>
#include <xrayd/aws/sigv4.h>
#include <xrayd/batch/batch.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/stats/counters.h>
#include <xrayd/stats/latency_histogram.h>
#include <xrayd/xray/retry_policy.h>

#include "captured_log.h"
#include "http_test_server.h"
#include "upload_fixture.h"

using namespace std::chrono_literals;
using xrayd::Counter;
using xrayd::test::document;
using xrayd::test::drive;
using xrayd::test::generous_deadline;
using xrayd::test::Harness;
using xrayd::test::HttpTestServer;
using xrayd::test::ScriptedResponse;
using xrayd::test::segment_id;
using xrayd::test::test_credentials;
using xrayd::test::trace_id;

namespace {

// Credentials that the test can take away and give back.
class SwitchableCredentials final : public xrayd::CredentialsProvider {
public:
    std::shared_ptr<const xrayd::Credentials> current() noexcept override {
        std::lock_guard lock(mutex_);
        return credentials_;
    }
    std::string_view source() const noexcept override { return "test"; }
    void set(std::shared_ptr<const xrayd::Credentials> c) {
        std::lock_guard lock(mutex_);
        credentials_ = std::move(c);
    }

private:
    std::mutex mutex_;
    std::shared_ptr<const xrayd::Credentials> credentials_;
};

// "20260101T101010Z" → time point.
xrayd::WallClock::time_point parse_amz_date(const std::string& text) {
    std::tm tm{};
    REQUIRE(std::sscanf(text.c_str(), "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                        &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return xrayd::WallClock::from_time_t(timegm(&tm));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Requests

TEST_CASE("uploader POSTs the batch body byte-identical to /TraceSegments with SigV4 headers") {
    Harness h;
    HttpTestServer server;
    auto uploader = h.uploader(h.options(server));
    xrayd::Batch batch = h.make_batch(3);
    const std::string body(batch.body());
    uploader->submit(std::move(batch));
    CHECK(uploader->held_segments() == 3);

    REQUIRE(drive(*uploader, [&] { return h.get(Counter::batches_sent) == 1; }));
    CHECK(h.get(Counter::segments_sent) == 3);
    CHECK(h.get(Counter::upload_requests) == 1);
    CHECK(h.get(Counter::upload_retries) == 0);
    CHECK(uploader->held_segments() == 0);
    CHECK(h.log->contains("[Info] Successfully sent batch of 3 segments ("));
    CHECK(std::regex_search(h.log->all(), std::regex(R"(segments \(\d\.\d{3} seconds\))")));

    const auto requests = server.requests();
    REQUIRE(requests.size() == 1);
    const auto& r = requests[0];
    CHECK(r.method == "POST");
    CHECK(r.path == "/TraceSegments");
    CHECK(r.body == body);
    CHECK(r.header("Content-Type") == "application/json");
    CHECK(r.header("Host") == fmt::format("127.0.0.1:{}", server.port()));
    CHECK(r.header("User-Agent") == "xrayd/test exec-env/UNKNOWN OS/linux-amd64");
    CHECK(r.header("X-Amz-Security-Token") == "session-token-example");
    CHECK_FALSE(r.header("Expect").has_value());
    REQUIRE(r.header("X-Amz-Date").has_value());
    REQUIRE(r.header("X-Amzn-Xray-Timestamp").has_value());
    CHECK(std::regex_match(*r.header("X-Amzn-Xray-Timestamp"), std::regex(R"(\d{10}\.\d{9})")));
    REQUIRE(r.header("Authorization").has_value());
    const std::string authorization = *r.header("Authorization");
    CHECK(authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
    CHECK(authorization.find("/us-east-2/xray/aws4_request") != std::string::npos);
    // The Go daemon's set: content-length signed too (curl sends it from the body size).
    CHECK(authorization.find("SignedHeaders=content-length;content-type;host;x-amz-date;"
                             "x-amz-security-token;x-amzn-xray-timestamp,") != std::string::npos);
    CHECK(r.header("Content-Length") == std::to_string(r.body.size()));

    // The signature verifies: recompute it from what the server received.
    xrayd::SigV4Signer signer("us-east-2", "xray");
    xrayd::SigningRequest request;
    request.method = r.method;
    request.path = r.path;
    request.headers = {{"host", *r.header("Host")},
                       {"content-length", *r.header("Content-Length")},
                       {"content-type", *r.header("Content-Type")},
                       {"x-amzn-xray-timestamp", *r.header("X-Amzn-Xray-Timestamp")}};
    request.payload = r.body;
    const auto expected =
        signer.sign(request, test_credentials, parse_amz_date(*r.header("X-Amz-Date")));
    CHECK(expected.amz_date == *r.header("X-Amz-Date"));
    CHECK(expected.authorization == authorization);
}

TEST_CASE("uploader reuses one kept-alive connection for sequential requests") {
    Harness h;
    HttpTestServer server;
    auto options = h.options(server);
    options.concurrency = 1;
    auto uploader = h.uploader(options);
    for (int i = 0; i < 4; ++i) {
        uploader->submit(h.make_batch(1));
        REQUIRE(drive(*uploader, [&] {
            return h.get(Counter::batches_sent) == static_cast<std::uint64_t>(i + 1);
        }));
    }
    const auto requests = server.requests();
    REQUIRE(requests.size() == 4);
    for (const auto& r : requests) {
        CHECK(r.client_port == requests[0].client_port);
    }
}

TEST_CASE("uploader over HTTPS succeeds with the server's CA bundle") {
    Harness h;
    HttpTestServer server({.tls = true});
    auto options = h.options(server);
    options.transport.ca_bundle = server.ca_file();
    auto uploader = h.uploader(options);
    xrayd::Batch batch = h.make_batch(2);
    const std::string body(batch.body());
    uploader->submit(std::move(batch));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::segments_sent) == 2; }));
    REQUIRE(server.request_count() == 1);
    CHECK(server.requests()[0].body == body);
    CHECK(h.get(Counter::backend_other) == 0);
}

TEST_CASE("uploader over HTTPS without the CA bundle counts a verification failure and retries") {
    Harness h;
    HttpTestServer server({.tls = true});
    auto uploader = h.uploader(h.options(server));
    uploader->submit(h.make_batch(2));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::upload_retries) >= 2; }));
    CHECK(h.get(Counter::backend_other) >= 2);
    CHECK(h.get(Counter::segments_sent) == 0);
    CHECK(server.request_count() == 0);
    CHECK(uploader->held_segments() == 2);
    CHECK(h.log->contains("[Error] Sending segment batch failed with: "));
    CHECK(uploader->abandon() == 2);
}

TEST_CASE("uploader with no_verify_ssl accepts an unverified HTTPS server") {
    Harness h;
    HttpTestServer server({.tls = true});
    auto options = h.options(server);
    options.transport.no_verify_ssl = true;
    auto uploader = h.uploader(options);
    uploader->submit(h.make_batch(1));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::segments_sent) == 1; }));
}

TEST_CASE("uploader never has more than `concurrency` requests in flight") {
    Harness h;
    HttpTestServer server;
    server.set_default_response({.delay = 150ms});
    auto options = h.options(server);
    options.concurrency = 2;
    auto uploader = h.uploader(options);
    for (int i = 0; i < 6; ++i) {
        uploader->submit(h.make_batch(1));
    }
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::batches_sent) == 6; }));
    CHECK(server.max_concurrent() <= 2);
    CHECK(server.max_concurrent() >= 1);
    CHECK(h.get(Counter::upload_requests) == 6);
}

TEST_CASE("set_concurrency from another thread raises and lowers the requests in flight and "
          "never cancels one") {
    Harness h;
    HttpTestServer server;
    constexpr auto first_delay = 1s;
    constexpr auto later_delay = 100ms;
    for (int i = 0; i < 3; ++i) {
        server.push_response({.delay = first_delay});
    }
    server.set_default_response({.delay = later_delay});
    auto options = h.options(server);
    options.concurrency = 1;
    auto uploader = h.uploader(options);
    CHECK(uploader->in_flight_limit() == 1);

    // Raised to 3: three requests are at the server before the first is answered.
    std::thread([&] { uploader->set_concurrency(3); }).join();
    for (int i = 0; i < 3; ++i) {
        uploader->submit(h.make_batch(1));
    }
    REQUIRE(drive(*uploader, [&] { return server.request_count() == 3; }));
    CHECK(h.get(Counter::batches_sent) == 0);
    CHECK(uploader->in_flight_limit() == 3);
    CHECK(h.log->contains("[Info] Upload concurrency changed from 1 to 3"));

    // Lowered to 1 with three in flight: they finish, then the next ones go one at a time.
    std::thread([&] { uploader->set_concurrency(1); }).join();
    for (int i = 0; i < 3; ++i) {
        uploader->submit(h.make_batch(1));
    }
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::batches_sent) == 6; }));
    CHECK(uploader->in_flight_limit() == 1);
    CHECK(h.get(Counter::upload_requests) == 6);
    CHECK(h.get(Counter::upload_retries) == 0);
    CHECK(h.get(Counter::segments_sent) == 6);
    const auto requests = server.requests();
    REQUIRE(requests.size() == 6);
    // Each later request can only start once the one before it was answered, which the server
    // does no sooner than its delay after that request arrived.
    for (int i = 0; i < 3; ++i) {
        CHECK(requests[3].arrived - requests[static_cast<std::size_t>(i)].arrived >= first_delay);
    }
    CHECK(requests[4].arrived - requests[3].arrived >= later_delay);
    CHECK(requests[5].arrived - requests[4].arrived >= later_delay);
}

TEST_CASE("the latency histogram observes every answered request, not transport failures") {
    Harness h;
    HttpTestServer server;
    constexpr auto delay = 50ms;
    server.push_response({.status = 500, .body = R"({"message":"internal"})", .delay = delay});
    server.set_default_response({.delay = delay});
    xrayd::LatencyHistogram latency;
    auto options = h.options(server);
    options.latency = &latency;
    auto uploader = h.uploader(options);
    uploader->submit(h.make_batch(1));
    uploader->submit(h.make_batch(1));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::batches_sent) == 2; }));
    const auto answered = latency.snapshot();
    CHECK(h.get(Counter::upload_requests) == 3);
    CHECK(answered.count == 3);  // the 500 and the two successes
    CHECK(answered.sum_seconds >= 3 * std::chrono::duration<double>(delay).count());
    std::uint64_t in_buckets = 0;
    for (std::size_t i = 0; i < answered.buckets.size(); ++i) {
        in_buckets += answered.buckets[i];
    }
    const auto& bounds = xrayd::LatencyHistogram::bounds_seconds;
    for (std::size_t i = 0; i < bounds.size() && bounds[i] < 0.05; ++i) {
        CHECK(answered.buckets[i] == 0);  // every request took at least the server's delay
    }
    CHECK(in_buckets == 3);

    server.stop();
    uploader->submit(h.make_batch(1));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::backend_connection_refused) >= 2; }));
    CHECK(latency.snapshot().count == 3);
    CHECK(uploader->abandon() == 1);
}

// ---------------------------------------------------------------------------------------------
// Failures and retries

TEST_CASE("a 500 then 200 delivers the batch with one retry and no loss") {
    Harness h;
    HttpTestServer server;
    server.push_response({.status = 500, .body = R"({"message":"internal"})"});
    auto uploader = h.uploader(h.options(server));
    uploader->submit(h.make_batch(5));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::segments_sent) == 5; }));
    CHECK(h.get(Counter::backend_http_5xx) == 1);
    CHECK(h.get(Counter::upload_retries) == 1);
    CHECK(h.get(Counter::upload_requests) == 2);
    CHECK(h.get(Counter::dropped_gave_up) == 0);
    CHECK(h.counters.snapshot().total(xrayd::CounterKind::rejected) == 0);
    const auto requests = server.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].body == requests[1].body);
    CHECK(h.log->contains("Sending segment batch failed with: HTTP 500: internal (retrying in"));
}

TEST_CASE("a 429 with Retry-After delays the retry by at least that long") {
    Harness h;
    HttpTestServer server;
    server.push_response({.status = 429,
                          .headers = {{"Retry-After", "1"}},
                          .body = R"({"__type":"ThrottlingException","message":"Rate exceeded"})"});
    auto options = h.options(server);
    options.retry_base = 1ms;
    options.retry_cap = 30s;
    auto uploader = h.uploader(options);
    uploader->submit(h.make_batch(1));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::segments_sent) == 1; }));
    CHECK(h.get(Counter::backend_http_4xx) == 1);
    CHECK(h.get(Counter::upload_retries) == 1);
    const auto requests = server.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[1].arrived - requests[0].arrived >= 1s);
}

TEST_CASE("a 400 ThrottlingException is retried") {
    Harness h;
    HttpTestServer server;
    server.push_response(
        {.status = 400, .body = R"({"__type":"com.amazon.coral#ThrottlingException"})"});
    auto uploader = h.uploader(h.options(server));
    uploader->submit(h.make_batch(2));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::segments_sent) == 2; }));
    CHECK(h.get(Counter::backend_http_4xx) == 1);
    CHECK(h.counters.snapshot().total(xrayd::CounterKind::rejected) == 0);
    CHECK(h.get(Counter::upload_retries) == 1);
}

TEST_CASE(
    "a 400 is final: the batch counts as rejected_request_invalid and X-Ray's message is logged") {
    Harness h;
    HttpTestServer server;
    server.push_response(
        {.status = 400,
         .body = R"({"__type":"InvalidRequestException","message":"Bad segment batch"})"});
    auto uploader = h.uploader(h.options(server));
    uploader->submit(h.make_batch(3));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::rejected_request_invalid) == 3; }));
    CHECK(h.get(Counter::backend_http_4xx) == 1);
    CHECK(h.get(Counter::upload_retries) == 0);
    CHECK(h.get(Counter::segments_sent) == 0);
    CHECK(uploader->held_segments() == 0);
    CHECK(server.request_count() == 1);
    CHECK(h.log->contains("[Error] Sending segment batch failed with: HTTP 400 "
                          "InvalidRequestException: Bad segment batch (not retryable; 3 "
                          "segments rejected)"));
}

namespace {

// True when no captured line holds a control byte other than its final newline.
bool lines_are_clean(xrayd::test::CapturedLog& log) {
    std::lock_guard lock(log.mutex);
    for (const std::string& line : log.lines) {
        for (std::size_t i = 0; i + 1 < line.size(); ++i) {
            const auto c = static_cast<unsigned char>(line[i]);
            if (c < 0x20 || c == 0x7f) {
                return false;
            }
        }
    }
    return true;
}

}  // namespace

TEST_CASE("a 400 whose type and message carry ESC and CR/LF is logged escaped, forging no line") {
    Harness h;
    HttpTestServer server;
    server.push_response(
        {.status = 400,
         .body = "{\"__type\":\"Invalid\\u001b[31mRequest\","
                 "\"message\":\"bad\\r\\n2026-01-01T00:00:00Z [Error] forged\\u001b[0m\"}"});
    auto uploader = h.uploader(h.options(server));
    uploader->submit(h.make_batch(3));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::rejected_request_invalid) == 3; }));
    CHECK(lines_are_clean(*h.log));
    CHECK(h.log->contains("[Error] Sending segment batch failed with: HTTP 400 "
                          "Invalid\\x1b[31mRequest: bad\\x0d\\x0a2026-01-01T00:00:00Z [Error] "
                          "forged\\x1b[0m (not retryable; 3 segments rejected)"));
}

TEST_CASE("an answer naming 9000 unprocessed segments for a 3-segment batch reads 3 and logs a "
          "bounded number of escaped lines") {
    Harness h;
    HttpTestServer server;
    std::string items;
    for (int i = 0; i < 9000; ++i) {
        items += fmt::format(R"({}{{"Id":"{}\u001b[2J","ErrorCode":"Bad\r\nX",)"
                             R"("Message":"m\n"}})",
                             i == 0 ? "" : ",", segment_id(i));
    }
    server.push_response({.body = R"({"UnprocessedTraceSegments":[)" + items + "]}"});
    auto uploader = h.uploader(h.options(server));
    uploader->submit(h.make_batch(3));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::batches_sent) == 1; }));
    // None of the ids match (they end in ESC[2J): three final rejections, not 9000.
    CHECK(h.get(Counter::rejected_by_xray) == 3);
    CHECK(h.accounted() == 3);
    CHECK(h.log->contains("named 8997 more unprocessed segments than the batch holds"));
    CHECK(h.log->count("Unprocessed segment: id=") == 3);
    CHECK(h.log->lines.size() < 10);
    CHECK(h.log->contains("error_code=Bad\\x0d\\x0aX message=m\\x0a"));
    CHECK(lines_are_clean(*h.log));
}

TEST_CASE("final unprocessed items are logged a few per answer, then one line says how many "
          "were not") {
    Harness h;
    HttpTestServer server;
    std::string items;
    for (int i = 0; i < 20; ++i) {
        items += fmt::format(R"({}{{"Id":"{}","ErrorCode":"InvalidSegment"}})", i == 0 ? "" : ",",
                             segment_id(i));
    }
    server.push_response({.body = R"({"UnprocessedTraceSegments":[)" + items + "]}"});
    server.push_response({.body = R"({"UnprocessedTraceSegments":[)" + items + "]}"});
    auto uploader = h.uploader(h.options(server));
    uploader->submit(h.make_batch(20));
    h.next_segment = 0;
    uploader->submit(h.make_batch(20));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::batches_sent) == 2; }));
    CHECK(h.get(Counter::rejected_by_xray) == 40);
    // The first answer: 5 items and a closing line; the second falls in the same interval.
    CHECK(h.log->count("[Error] Unprocessed segment: id=") == 5);
    CHECK(h.log->count("15 more unprocessed segments (final) of this answer not logged") == 1);
}

TEST_CASE("a Retry-After of 1e10 seconds is clamped before it can overflow: the retry waits the "
          "cap") {
    using xrayd::Duration;
    struct Row {
        std::int64_t seconds;
        Duration expected;
    };
    const std::vector<Row> rows{
        {-1, Duration::zero()},
        {0, Duration::zero()},
        {5, std::chrono::seconds(5)},
        {86400, std::chrono::seconds(86400)},
        {86401, std::chrono::seconds(86400)},
        {10'000'000'000, std::chrono::seconds(86400)},  // 1e19 ns would wrap negative
        {std::numeric_limits<std::int64_t>::max(), std::chrono::seconds(86400)},
    };
    for (const Row& row : rows) {
        CAPTURE(row.seconds);
        CHECK(xrayd::retry_after_delay(row.seconds) == row.expected);
    }
    // Honoured up to the cap, whatever the server asked for.
    CHECK(xrayd::backoff_delay(0, 5ms, 2s, 0.0, xrayd::retry_after_delay(10'000'000'000)) == 2s);
}

TEST_CASE("final failures are counted by error class") {
    using xrayd::final_rejection_counter;
    struct Row {
        long status;
        const char* type;
        Counter expected;
    };
    for (const Row& r : {Row{400, "InvalidRequestException", Counter::rejected_request_invalid},
                         Row{400, "", Counter::rejected_request_invalid},
                         Row{403, "AccessDeniedException", Counter::rejected_request_denied},
                         Row{403, "", Counter::rejected_request_denied},
                         Row{401, "", Counter::rejected_request_denied},
                         Row{400, "ExpiredTokenException", Counter::rejected_request_denied},
                         Row{400, "com.amazon.coral.service#UnrecognizedClientException",
                             Counter::rejected_request_denied},
                         Row{413, "", Counter::rejected_request_too_large},
                         Row{404, "UnknownOperationException", Counter::rejected_request_other},
                         Row{405, "", Counter::rejected_request_other}}) {
        CAPTURE(r.status);
        CAPTURE(std::string(r.type));
        CHECK(final_rejection_counter(r.status, r.type) == r.expected);
    }
}

TEST_CASE("a 403 is final and counted as rejected_request_denied") {
    Harness h;
    HttpTestServer server;
    server.push_response(
        {.status = 403, .body = R"({"__type":"AccessDeniedException","message":"no"})"});
    auto uploader = h.uploader(h.options(server));
    uploader->submit(h.make_batch(2));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::rejected_request_denied) == 2; }));
    CHECK(h.get(Counter::rejected_request_invalid) == 0);
    CHECK(h.log->contains("HTTP 403 AccessDeniedException: no"));
}

TEST_CASE("unprocessed segments count as rejected_by_xray and are logged with their trace id") {
    Harness h;
    HttpTestServer server;
    xrayd::Batch batch = h.make_batch(3);
    const std::string id1 = segment_id(1);
    const std::string trace1 = trace_id(1);
    server.push_response({.body = fmt::format(R"({{"UnprocessedTraceSegments":[)"
                                              R"({{"Id":"{}","ErrorCode":"InvalidSegment",)"
                                              R"("Message":"Trace Size Exceeded"}},)"
                                              R"({{"Id":null,"ErrorCode":"ParseError"}}]}})",
                                              id1)});
    auto uploader = h.uploader(h.options(server));
    uploader->submit(std::move(batch));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::batches_sent) == 1; }));
    CHECK(h.get(Counter::rejected_by_xray) == 2);
    CHECK(h.get(Counter::segments_sent) == 1);
    CHECK(h.log->contains("[Info] Sent batch of 3 segments but had 2 Unprocessed segments ("));
    CHECK(h.log->contains(fmt::format("[Error] Unprocessed segment: id={} trace_id={} "
                                      "error_code=InvalidSegment message=Trace Size Exceeded",
                                      id1, trace1)));
    CHECK(h.log->contains("[Error] Unprocessed segment: id=<none> trace_id= "
                          "error_code=ParseError message="));
}

TEST_CASE("a refused connection is counted and retried until the server comes up") {
    Harness h;
    HttpTestServer server;
    server.stop();
    auto uploader = h.uploader(h.options(server));
    uploader->submit(h.make_batch(2));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::backend_connection_refused) >= 2; }));
    CHECK(h.get(Counter::upload_retries) >= 2);
    CHECK(uploader->held_segments() == 2);
    server.start();
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::segments_sent) == 2; }));
    CHECK(h.get(Counter::dropped_gave_up) == 0);
    CHECK(uploader->held_segments() == 0);
}

TEST_CASE("a request past request_timeout counts backend_timeout and is retried") {
    Harness h;
    HttpTestServer server;
    server.push_response({.delay = 10s});  // cut short when the server stops
    auto options = h.options(server);
    options.request_timeout = 200ms;
    auto uploader = h.uploader(options);
    uploader->submit(h.make_batch(1));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::segments_sent) == 1; }));
    CHECK(h.get(Counter::backend_timeout) == 1);
    CHECK(h.get(Counter::upload_retries) == 1);
}

TEST_CASE("a connection closed without an answer counts backend_other and is retried") {
    Harness h;
    HttpTestServer server;
    server.push_response({.drop_connection = true});
    auto uploader = h.uploader(h.options(server));
    uploader->submit(h.make_batch(2));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::segments_sent) == 2; }));
    CHECK(h.get(Counter::backend_other) == 1);
    CHECK(h.get(Counter::upload_retries) == 1);
    CHECK(server.request_count() == 2);
}

TEST_CASE("a batch still failing past the retry budget is given up as dropped_gave_up") {
    Harness h;
    HttpTestServer server;
    server.set_default_response({.status = 503, .body = "{}"});
    auto options = h.options(server);
    options.retry_budget = 200ms;
    auto uploader = h.uploader(options);
    uploader->submit(h.make_batch(4));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::dropped_gave_up) == 4; }));
    CHECK(uploader->held_segments() == 0);
    CHECK(h.get(Counter::segments_sent) == 0);
    CHECK(h.get(Counter::backend_http_5xx) >= 2);
    CHECK(h.get(Counter::upload_retries) + 1 == h.get(Counter::upload_requests));
    CHECK(h.log->contains("segments dropped)"));
}

TEST_CASE("set_retry_settings shortens the retry budget of batches already failing") {
    Harness h;
    HttpTestServer server;
    server.set_default_response({.status = 503, .body = "{}"});
    auto options = h.options(server);
    options.retry_budget = 10min;  // would keep retrying for the whole test
    auto uploader = h.uploader(options);
    uploader->submit(h.make_batch(3));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::upload_retries) >= 1; }));
    CHECK(h.get(Counter::dropped_gave_up) == 0);
    uploader->set_retry_settings(100ms, 1s);  // SIGHUP reload, from another thread in the daemon
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::dropped_gave_up) == 3; }));
    CHECK(uploader->held_segments() == 0);
}

TEST_CASE("set_retry_settings applies a new request timeout to the next requests") {
    Harness h;
    HttpTestServer server;
    server.set_default_response(
        {.status = 200, .body = R"({"UnprocessedTraceSegments":[]})", .delay = 600ms});
    auto options = h.options(server);
    options.request_timeout = 5s;
    auto uploader = h.uploader(options);
    uploader->set_retry_settings(options.retry_budget, 200ms);
    uploader->submit(h.make_batch(1));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::backend_timeout) >= 1; }));
    uploader->set_retry_settings(options.retry_budget, 5s);
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::segments_sent) == 1; }));
}

TEST_CASE("missing credentials fail the attempt as retryable until credentials appear") {
    Harness h;
    HttpTestServer server;
    SwitchableCredentials credentials;
    auto uploader = xrayd::Uploader::create(h.options(server), credentials, h.counters, h.logger);
    uploader->submit(h.make_batch(1));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::upload_retries) >= 2; }));
    CHECK(server.request_count() == 0);
    CHECK(h.get(Counter::backend_other) >= 2);
    CHECK(h.log->contains("no AWS credentials available"));
    credentials.set(std::make_shared<const xrayd::Credentials>(test_credentials));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::segments_sent) == 1; }));
}

TEST_CASE("a due retry is sent before batches submitted after it") {
    Harness h;
    HttpTestServer server;
    server.push_response({.status = 500});   // A, first attempt
    server.push_response({.delay = 300ms});  // B keeps the only slot busy meanwhile
    auto options = h.options(server);
    options.concurrency = 1;
    options.retry_base = 1ms;
    options.retry_cap = 1ms;
    auto uploader = h.uploader(options);
    xrayd::Batch a = h.make_batch(1);
    xrayd::Batch b = h.make_batch(1);
    const std::string body_a(a.body());
    const std::string body_b(b.body());
    uploader->submit(std::move(a));
    uploader->submit(std::move(b));
    REQUIRE(drive(*uploader, [&] { return server.request_count() == 2; }));
    xrayd::Batch c = h.make_batch(1);
    const std::string body_c(c.body());
    uploader->submit(std::move(c));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::batches_sent) == 3; }));
    const auto requests = server.requests();
    REQUIRE(requests.size() == 4);
    CHECK(requests[0].body == body_a);
    CHECK(requests[1].body == body_b);
    CHECK(requests[2].body == body_a);
    CHECK(requests[3].body == body_c);
}

TEST_CASE("held_segments counts queued and in-flight batches and abandon gives them up") {
    Harness h;
    HttpTestServer server;
    server.set_default_response({.delay = 10s});
    auto options = h.options(server);
    options.concurrency = 1;
    auto uploader = h.uploader(options);
    uploader->submit(h.make_batch(3));
    uploader->submit(h.make_batch(4));
    CHECK(uploader->held_segments() == 7);
    REQUIRE(drive(*uploader, [&] { return server.request_count() == 1; }));
    CHECK(uploader->held_segments() == 7);
    CHECK(uploader->abandon() == 7);
    CHECK(uploader->held_segments() == 0);
    uploader->run_once(0ms);
    CHECK(h.get(Counter::segments_sent) == 0);
    CHECK(h.get(Counter::dropped_gave_up) == 0);
}

TEST_CASE("wakeup ends a run_once wait early") {
    Harness h;
    HttpTestServer server;
    auto uploader = h.uploader(h.options(server));
    uploader->wakeup();
    const auto start = std::chrono::steady_clock::now();
    uploader->run_once(30s);
    CHECK(std::chrono::steady_clock::now() - start < 15s);
}

TEST_CASE("answers end the wait at once when the next batch needs their slot") {
    // at_next_wake lets answers wait only while a slot is free: with the one slot busy, its
    // answer must end the wait. Were it to wait, it would sit out the whole 30 s request
    // timeout (curl's only deadline then) and the batch would time out.
    Harness h;
    HttpTestServer server;
    server.set_default_response({.delay = 200ms});
    auto options = h.options(server);
    options.concurrency = 1;
    options.request_timeout = 30s;
    auto uploader = h.uploader(options);
    uploader->submit(h.make_batch(2));
    uploader->submit(h.make_batch(3));
    uploader->run_once(0ms);  // the first goes out, the second waits for the slot
    const auto start = std::chrono::steady_clock::now();
    while (h.get(Counter::batches_sent) < 2 && std::chrono::steady_clock::now() - start < 60s) {
        uploader->run_once(60s, xrayd::EventLoop::Answers::at_next_wake);
    }
    CHECK(std::chrono::steady_clock::now() - start < 20s);
    CHECK(h.get(Counter::batches_sent) == 2);
}

TEST_CASE("Uploader::create rejects bad options") {
    Harness h;
    xrayd::UploaderOptions o;
    o.region = "us-east-1";
    o.endpoint = "xray.us-east-1.amazonaws.com";
    CHECK_THROWS_AS((void)h.uploader(o), xrayd::StartupError);
    o.endpoint = "ftp://xray.us-east-1.amazonaws.com";
    CHECK_THROWS_AS((void)h.uploader(o), xrayd::StartupError);
    o.endpoint = "https://";
    CHECK_THROWS_AS((void)h.uploader(o), xrayd::StartupError);
    o.endpoint = "https://xray.us-east-1.amazonaws.com";
    o.concurrency = 0;
    CHECK_THROWS_AS((void)h.uploader(o), xrayd::StartupError);
    o.concurrency = 1;
    CHECK_NOTHROW((void)h.uploader(o));
}

TEST_CASE("an endpoint with a base path and trailing slash posts to <path>/TraceSegments") {
    Harness h;
    HttpTestServer server;
    auto options = h.options(server);
    options.endpoint = server.url() + "/prefix/";
    auto uploader = h.uploader(options);
    uploader->submit(h.make_batch(1));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::segments_sent) == 1; }));
    CHECK(server.requests()[0].path == "/prefix/TraceSegments");
}

// ---------------------------------------------------------------------------------------------
// Throttle-aware concurrency (the controller itself: throttle_controller_test)

TEST_CASE("uploader shrinks requests in flight while X-Ray throttles, logs the start and the "
          "end once, and grows back") {
    Harness h;
    HttpTestServer server;
    const xrayd::test::ScriptedResponse throttled{
        .status = 429, .body = R"({"__type":"ThrottlingException","message":"Rate exceeded"})"};
    for (int i = 0; i < 12; ++i) {
        server.push_response(throttled);
    }
    auto options = h.options(server);
    options.concurrency = 8;
    options.throttle_successes_per_increase = 2;
    auto uploader = h.uploader(options);
    for (int i = 0; i < 8; ++i) {
        uploader->submit(h.make_batch(2));
    }
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::upload_throttled) >= 12; }));
    CHECK(uploader->in_flight_limit() < 8);
    CHECK(h.log->contains("[Info] X-Ray is throttling PutTraceSegments (HTTP 429 "
                          "ThrottlingException: Rate exceeded): requests in flight cut from 8 "
                          "to 4"));
    // Keep it busy so that successes grow the limit back to the ceiling.
    for (int i = 0; i < 30; ++i) {
        uploader->submit(h.make_batch(1));
    }
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::segments_sent) == 8 * 2 + 30; }));
    CHECK(uploader->in_flight_limit() == 8);
    CHECK(h.get(Counter::dropped_gave_up) == 0);
    CHECK(h.get(Counter::upload_throttled) == 12);
    const std::string all = h.log->all();
    const auto count = [&](std::string_view text) {
        std::size_t n = 0;
        for (auto pos = all.find(text); pos != std::string::npos; pos = all.find(text, pos + 1)) {
            ++n;
        }
        return n;
    };
    CHECK(count("X-Ray is throttling PutTraceSegments") == 1);
    CHECK(count("X-Ray throttling ended after") == 1);
    CHECK(h.log->contains("12 requests throttled"));
    CHECK(h.log->contains("are back to 8"));
}

TEST_CASE("a round of throttled answers to requests sent together halves the limit once") {
    Harness h;
    HttpTestServer server;
    for (int i = 0; i < 4; ++i) {
        server.push_response(
            {.status = 429, .body = R"({"__type":"ThrottlingException"})", .delay = 200ms});
    }
    auto options = h.options(server);
    options.concurrency = 4;
    options.retry_base = 1s;  // the retries stay waiting while the limit is checked
    options.retry_cap = 1s;
    options.throttle_successes_per_increase = 1000;
    auto uploader = h.uploader(options);
    for (int i = 0; i < 4; ++i) {
        uploader->submit(h.make_batch(1));
    }
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::upload_throttled) == 4; }));
    CHECK(server.max_concurrent() == 4);
    CHECK(uploader->in_flight_limit() == 2);
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::segments_sent) == 4; }));
    CHECK(h.get(Counter::dropped_gave_up) == 0);
}

// ---------------------------------------------------------------------------------------------
// Unprocessed segments with a transient error code

TEST_CASE("transient unprocessed segments are re-sent alone, byte-identical; final ones count "
          "as rejected_by_xray") {
    Harness h;
    HttpTestServer server;
    xrayd::Batch batch = h.make_batch(4);
    server.push_response(
        {.body = fmt::format(R"({{"UnprocessedTraceSegments":[)"
                             R"({{"Id":"{}","ErrorCode":"InternalFailure","Message":"try again"}},)"
                             R"({{"Id":"{}","ErrorCode":"InvalidSegment","Message":"bad"}},)"
                             R"({{"Id":"{}","ErrorCode":"ThrottlingException"}}]}})",
                             segment_id(2), segment_id(1), segment_id(0))});
    auto uploader = h.uploader(h.options(server));
    uploader->submit(std::move(batch));
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::batches_sent) == 2; }));
    CHECK(h.get(Counter::segments_sent) == 3);     // 1 at once, 2 on the re-send
    CHECK(h.get(Counter::rejected_by_xray) == 1);  // InvalidSegment
    CHECK(h.get(Counter::unprocessed_retried) == 2);
    CHECK(h.get(Counter::upload_throttled) == 1);  // the throttled item slows us down too
    CHECK(uploader->held_segments() == 0);
    CHECK(h.accounted() == 4);
    const auto requests = server.requests();
    REQUIRE(requests.size() == 2);
    std::string expected = R"({"TraceSegmentDocuments":[")";
    xrayd::append_json_escaped(expected, document(2));
    expected += R"(",")";
    xrayd::append_json_escaped(expected, document(0));
    expected += R"("]})";
    CHECK(requests[1].body == expected);
    CHECK(h.log->contains("Unprocessed segment will be sent again: id=" + segment_id(2)));
    CHECK(h.log->contains("[Error] Unprocessed segment: id=" + segment_id(1) +
                          " trace_id=" + trace_id(1) + " error_code=InvalidSegment message=bad"));
}

TEST_CASE("a segment X-Ray keeps returning as InternalFailure is given up after the retry "
          "budget") {
    Harness h;
    HttpTestServer server;
    server.set_default_response({.body = fmt::format(R"({{"UnprocessedTraceSegments":[{{"Id":"{}",)"
                                                     R"("ErrorCode":"InternalFailure"}}]}})",
                                                     segment_id(0))});
    auto options = h.options(server);
    options.retry_budget = 200ms;
    auto uploader = h.uploader(options);
    uploader->submit(h.make_batch(2));
    REQUIRE(drive(*uploader, [&] { return uploader->held_segments() == 0; }));
    CHECK(h.get(Counter::segments_sent) == 1);
    CHECK(h.get(Counter::dropped_gave_up) == 1);
    CHECK(h.get(Counter::unprocessed_retried) >= 1);
    CHECK(h.accounted() == 2);
}

// ---------------------------------------------------------------------------------------------
// Backpressure and exact accounting

TEST_CASE("drop-oldest gives up the oldest held batches to keep headroom, never the in-flight "
          "ones, and counts them as dropped_oldest") {
    Harness h(1 << 20);
    HttpTestServer server;
    server.stop();  // X-Ray unreachable: everything stays held
    auto options = h.options(server);
    options.concurrency = 1;
    options.backpressure = xrayd::Backpressure::drop_oldest;
    options.drop_oldest_headroom = 256 << 10;
    options.retry_base = 1ms;
    options.retry_cap = 5ms;
    auto uploader = h.uploader(options);
    std::uint64_t submitted = 0;
    for (int i = 0; i < 200; ++i) {
        uploader->submit(h.make_batch(1));
        ++submitted;
        uploader->run_once(0ms);
        REQUIRE(h.accounted() + uploader->held_segments() == submitted);
        REQUIRE(h.budget.used() <= h.budget.limit());
    }
    CHECK(h.get(Counter::dropped_oldest) > 0);
    CHECK(h.budget.used() + (256 << 10) <= h.budget.limit() + (16 << 10));
    CHECK(h.log->contains("dropped the"));
    // What is left is the newest: once X-Ray is back, the last segment submitted arrives.
    server.start();
    REQUIRE(drive(*uploader, [&] { return uploader->held_segments() == 0; }));
    CHECK(h.get(Counter::segments_sent) + h.get(Counter::dropped_oldest) == submitted);
    bool newest_arrived = false;
    for (const auto& r : server.requests()) {
        newest_arrived = newest_arrived || r.body.find(segment_id(199)) != std::string::npos;
        CHECK(r.body.find(segment_id(0)) == std::string::npos);
    }
    CHECK(newest_arrived);
}

TEST_CASE("drop-oldest sends a new batch a free slot can take instead of evicting it") {
    Harness h(1 << 20);
    HttpTestServer server;
    auto options = h.options(server);
    options.concurrency = 2;
    options.backpressure = xrayd::Backpressure::drop_oldest;
    options.drop_oldest_headroom = 1 << 20;  // any held byte is "too much": eviction wants room
    auto uploader = h.uploader(options);
    uploader->submit(h.make_batch(1));
    REQUIRE(drive(*uploader, [&] { return uploader->held_segments() == 0; }));
    CHECK(h.get(Counter::segments_sent) == 1);
    CHECK(h.get(Counter::dropped_oldest) == 0);
}

TEST_CASE("drop-oldest evicts a batch waiting for its retry but never the request in flight, "
          "which cannot be un-sent") {
    Harness h(1 << 20);
    HttpTestServer server;
    server.push_response({.status = 500});               // batch A fails: it waits for its retry
    server.push_response({.body = "{}", .delay = 30s});  // batch B hangs in flight
    auto options = h.options(server);
    options.concurrency = 1;
    options.backpressure = xrayd::Backpressure::drop_oldest;
    options.drop_oldest_headroom = 1 << 20;  // any held byte is "too much": eviction wants room
    options.retry_base = 20s;                // A's retry is not due during the test
    options.retry_cap = 20s;
    auto uploader = h.uploader(options);
    uploader->submit(h.make_batch(1));  // A, the oldest
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::upload_retries) == 1; }));
    // Not evicted while in flight; waiting for its retry it is the first to give way.
    REQUIRE(drive(*uploader, [&] { return h.get(Counter::dropped_oldest) == 1; }));
    uploader->submit(h.make_batch(2));  // B takes the free slot
    REQUIRE(drive(*uploader, [&] { return server.request_count() == 2; }));
    for (int i = 0; i < 5; ++i) {
        uploader->run_once(10ms);
    }
    // B, in flight, cannot be un-sent: it stays held however much room is wanted.
    CHECK(h.get(Counter::dropped_oldest) == 1);
    CHECK(uploader->held_segments() == 2);
    CHECK(h.accounted() + uploader->held_segments() == 3);
    CHECK(uploader->abandon() == 2);
}

TEST_CASE("drop-newest (the default) never evicts held batches") {
    Harness h(1 << 20);
    HttpTestServer server;
    server.stop();
    auto options = h.options(server);
    options.drop_oldest_headroom = 256 << 10;
    auto uploader = h.uploader(options);
    for (int i = 0; i < 120; ++i) {
        uploader->submit(h.make_batch(1));
        uploader->run_once(0ms);
    }
    CHECK(h.get(Counter::dropped_oldest) == 0);
    CHECK(uploader->held_segments() == 120);
    CHECK(uploader->abandon() == 120);
}

TEST_CASE("submitted = sent + rejected + dropped + held after every step under mixed faults") {
    Harness h(4 << 20);
    HttpTestServer server;
    // A fixed mix of every outcome: retried failures, throttling, resets, final 4xx, transient
    // and final unprocessed items, successes.
    const std::vector<xrayd::test::ScriptedResponse> mix = {
        {.status = 500, .body = R"({"message":"internal"})"},
        {.status = 429, .body = R"({"__type":"ThrottlingException"})"},
        {.drop_connection = true},
        {.status = 400, .body = R"({"__type":"InvalidRequestException"})"},
        {},
        {.status = 503},
        {.body = fmt::format(R"({{"UnprocessedTraceSegments":[{{"Id":"{}",)"
                             R"("ErrorCode":"InternalFailure"}}]}})",
                             segment_id(0))},
        {.body = fmt::format(R"({{"UnprocessedTraceSegments":[{{"Id":"{}",)"
                             R"("ErrorCode":"InvalidSegment"}}]}})",
                             segment_id(0))},
    };
    for (int round = 0; round < 6; ++round) {
        for (const auto& r : mix) {
            server.push_response(r);
        }
    }
    auto options = h.options(server);
    options.backpressure = xrayd::Backpressure::drop_oldest;
    options.retry_budget = 2s;
    auto uploader = h.uploader(options);
    std::uint64_t submitted = 0;
    int steps = 0;
    const auto until = std::chrono::steady_clock::now() + generous_deadline;
    while ((submitted < 400 || uploader->held_segments() > 0) &&
           std::chrono::steady_clock::now() < until) {
        if (submitted < 400) {
            const int n = 1 + steps % 9;
            h.next_segment = 0;  // every batch holds segment 0, which the answers name
            uploader->submit(h.make_batch(n));
            submitted += static_cast<std::uint64_t>(n);
        }
        uploader->run_once(submitted < 400 ? 0ms : 10ms);
        ++steps;
        REQUIRE(h.accounted() + uploader->held_segments() == submitted);
    }
    CHECK(uploader->held_segments() == 0);
    CHECK(h.get(Counter::rejected_request_invalid) + h.get(Counter::rejected_request_denied) +
              h.get(Counter::rejected_request_too_large) + h.get(Counter::rejected_request_other) >
          0);
    CHECK(h.get(Counter::rejected_by_xray) >= 1);
    CHECK(h.get(Counter::unprocessed_retried) >= 1);
    CHECK(h.get(Counter::segments_sent) > 0);
}
