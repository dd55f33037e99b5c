// Tests of telemetry: records from counter deltas, the PutTelemetryRecords body, the queue of
// 30 sent 10 per call, re-queue on failure, and each BackendConnectionErrors class provoked
// for real against a loopback X-Ray endpoint.
#include <doctest/doctest.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <xrayd/aws/credentials.h>
#include <xrayd/aws/sigv4.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/http/curl.h>
#include <xrayd/log/logger.h>
#include <xrayd/stats/counters.h>
#include <xrayd/telemetry/telemetry.h>

#include "captured_log.h"
#include "http_test_server.h"
#include "signature_check.h"

using namespace std::chrono_literals;
using namespace xrayd;
using namespace xrayd::test;

namespace {

const CurlGlobal curl_global = CurlGlobal::init();

constexpr auto generous_deadline = 20s;

std::size_t occurrences(const std::string& text, std::string_view what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

// Sum of the integers that follow each occurrence of `key`.
std::int64_t sum_field(const std::string& text, std::string_view key) {
    std::int64_t sum = 0;
    for (std::size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) {
        sum += std::stoll(text.substr(at + key.size()));
    }
    return sum;
}

WallClock::time_point at_seconds(std::int64_t s, int ms = 0) {
    return WallClock::time_point(std::chrono::seconds(s) + std::chrono::milliseconds(ms));
}

// Telemetry signs for X-Ray in us-west-2, always the same headers.
void verify_signature(const RecordedRequest& r, const Credentials& creds) {
    const auto authorization = r.header("Authorization");
    REQUIRE(authorization.has_value());
    CHECK(authorization_field(*authorization, "SignedHeaders=") ==
          "content-length;content-type;host;x-amz-date;x-amzn-xray-timestamp");
    verify_xray_signature(r, creds, "us-west-2");
}

struct Fixture {
    std::unique_ptr<Telemetry> make(TelemetryOptions options = {}) {
        if (options.endpoint.empty()) {
            options.endpoint = server.url();
        }
        options.region = "us-west-2";
        options.resource_arn = "arn:aws:ec2:us-west-2:123456789012:instance/i-0abc";
        options.instance_id = "i-0abc";
        options.hostname = "host-\"1\"";
        options.transport.user_agent = "xrayd/test";
        return Telemetry::create(std::move(options), credentials, counters, logger);
    }

    Credentials creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
    StaticCredentialsProvider credentials{creds};
    HttpTestServer server;
    Counters counters;
    CapturedLog log;
    Logger logger{LogLevel::debug, std::make_unique<CaptureSink>(log)};
};

}  // namespace

TEST_CASE("a record holds the counter deltas, grouping dropped and rejected counters by kind") {
    Counters counters;
    const CounterSnapshot before = counters.snapshot();
    counters.add(Counter::datagrams_received, 21);
    counters.add(Counter::segments_sent, 15);
    counters.add(Counter::rejected_bad_header, 2);
    counters.add(Counter::rejected_by_xray, 1);
    counters.add(Counter::dropped_buffer_full, 1);
    counters.add(Counter::dropped_gave_up, 2);
    counters.add(Counter::backend_timeout, 1);
    counters.add(Counter::backend_connection_refused, 2);
    counters.add(Counter::backend_http_4xx, 3);
    counters.add(Counter::backend_http_5xx, 4);
    counters.add(Counter::backend_unknown_host, 5);
    counters.add(Counter::backend_other, 6);
    counters.add(Counter::upload_requests, 99);  // not part of a record
    const TelemetryRecord r = make_telemetry_record(before, counters.snapshot(), at_seconds(7));
    CHECK(r.segments_received == 21);
    CHECK(r.segments_sent == 15);
    CHECK(r.segments_rejected == 3);
    CHECK(r.segments_spillover == 3);
    CHECK(r.timeout == 1);
    CHECK(r.connection_refused == 2);
    CHECK(r.http_4xx == 3);
    CHECK(r.http_5xx == 4);
    CHECK(r.unknown_host == 5);
    CHECK(r.other == 6);
}

TEST_CASE(
    "the request body has the Go daemon's fields, escaped strings and millisecond timestamps") {
    TelemetryRecord r;
    r.timestamp = at_seconds(1795308519, 915);
    r.segments_received = 21;
    r.segments_sent = 21;
    r.http_5xx = 1;
    const std::string body = telemetry_request_body({r}, "", "h\"ost", "");
    CHECK(body ==
          R"({"EC2InstanceId":"","Hostname":"h\"ost","ResourceARN":"","TelemetryRecords":[)"
          R"({"Timestamp":1795308519.915,"SegmentsReceivedCount":21,"SegmentsSentCount":21,)"
          R"("SegmentsSpilloverCount":0,"SegmentsRejectedCount":0,"BackendConnectionErrors":)"
          R"({"TimeoutCount":0,"ConnectionRefusedCount":0,"HTTPCode4XXCount":0,)"
          R"("HTTPCode5XXCount":1,"UnknownHostCount":0,"OtherCount":0}}]})");
}

TEST_CASE("no record is made before the first datagram arrives") {
    Fixture f;
    auto telemetry = f.make();
    f.counters.add(Counter::backend_other);
    telemetry->tick(at_seconds(100));
    CHECK(telemetry->queued() == 0);
    CHECK(f.server.request_count() == 0);
    CHECK(f.log.contains("[Debug] Skipped telemetry data as no segments found"));
}

TEST_CASE("a scripted run is reported as signed PutTelemetryRecords with the period's deltas") {
    Fixture f;
    auto telemetry = f.make();
    f.counters.add(Counter::datagrams_received, 10);
    f.counters.add(Counter::segments_sent, 7);
    f.counters.add(Counter::rejected_bad_json, 2);
    f.counters.add(Counter::dropped_queue_full, 1);
    telemetry->tick(at_seconds(1000, 250));
    CHECK(telemetry->queued() == 0);
    f.counters.add(Counter::datagrams_received, 3);
    f.counters.add(Counter::segments_sent, 3);
    telemetry->tick(at_seconds(1060));

    const auto requests = f.server.requests();
    REQUIRE(requests.size() == 2);
    const RecordedRequest& first = requests[0];
    CHECK(first.method == "POST");
    CHECK(first.path == "/TelemetryRecords");
    CHECK(first.header("Host") == fmt::format("127.0.0.1:{}", f.server.port()));
    CHECK(first.header("Content-Type") == "application/json");
    CHECK(first.header("User-Agent") == "xrayd/test");
    CHECK(first.header("X-Amzn-Xray-Timestamp").has_value());
    verify_signature(first, f.creds);
    CHECK(first.body ==
          R"({"EC2InstanceId":"i-0abc","Hostname":"host-\"1\"",)"
          R"("ResourceARN":"arn:aws:ec2:us-west-2:123456789012:instance/i-0abc",)"
          R"("TelemetryRecords":[{"Timestamp":1000.250,"SegmentsReceivedCount":10,)"
          R"("SegmentsSentCount":7,"SegmentsSpilloverCount":1,"SegmentsRejectedCount":2,)"
          R"("BackendConnectionErrors":{"TimeoutCount":0,"ConnectionRefusedCount":0,)"
          R"("HTTPCode4XXCount":0,"HTTPCode5XXCount":0,"UnknownHostCount":0,"OtherCount":0}}]})");
    // The second record holds only what changed since the first.
    CHECK(requests[1].body.find(R"("Timestamp":1060.000,"SegmentsReceivedCount":3,)"
                                R"("SegmentsSentCount":3,"SegmentsSpilloverCount":0,)"
                                R"("SegmentsRejectedCount":0,)") != std::string::npos);
    CHECK(f.counters.get(Counter::telemetry_records_sent) == 2);
    CHECK(f.log.contains("[Debug] Send 1 telemetry record(s)"));
}

TEST_CASE("a failed call re-queues its records, counts the failure and sends them next period") {
    Fixture f;
    f.server.push_response(ScriptedResponse{500, {}, R"({"message":"internal"})"});
    auto telemetry = f.make();
    f.counters.add(Counter::datagrams_received);
    telemetry->tick(at_seconds(1));
    CHECK(telemetry->queued() == 1);
    CHECK(f.counters.get(Counter::backend_http_5xx) == 1);
    CHECK(f.counters.get(Counter::telemetry_send_failures) == 1);
    CHECK(
        f.log.contains("[Debug] Failed to send telemetry 1 record(s). Re-queue records. HTTP 500"));

    telemetry->tick(at_seconds(2));
    CHECK(telemetry->queued() == 0);
    const auto requests = f.server.requests();
    REQUIRE(requests.size() == 2);
    CHECK(occurrences(requests[1].body, "\"Timestamp\":") == 2);
    // The failure shows in the next record.
    CHECK(requests[1].body.find(R"("Timestamp":2.000,"SegmentsReceivedCount":0)") !=
          std::string::npos);
    CHECK(requests[1].body.find(R"("HTTPCode5XXCount":1)") != std::string::npos);
}

TEST_CASE("the queue keeps the newest 30 records and sends them 10 per call") {
    Fixture f;
    auto telemetry = f.make();
    f.server.stop();  // connection refused until restarted
    f.counters.add(Counter::datagrams_received);
    for (int i = 0; i < 35; ++i) {
        telemetry->tick(at_seconds(100 + i));
    }
    CHECK(telemetry->queued() == 30);
    CHECK(f.counters.get(Counter::telemetry_records_dropped) == 5);
    CHECK(f.counters.get(Counter::backend_connection_refused) == 35);
    CHECK(f.log.contains("[Debug] Telemetry Buffers truncated"));

    f.server.start();
    telemetry->tick(at_seconds(200));  // one more record: the oldest queued one goes
    CHECK(telemetry->queued() == 0);
    CHECK(f.counters.get(Counter::telemetry_records_dropped) == 6);
    const auto requests = f.server.requests();
    REQUIRE(requests.size() == 3);
    for (const auto& r : requests) {
        CHECK(occurrences(r.body, "\"Timestamp\":") == 10);
    }
    // Oldest first; records 100..105 were dropped.
    CHECK(requests[0].body.find(R"("Timestamp":106.000)") != std::string::npos);
    CHECK(requests[2].body.find(R"("Timestamp":200.000)") != std::string::npos);
    CHECK(f.counters.get(Counter::telemetry_records_sent) == 30);
}

TEST_CASE("each BackendConnectionErrors class is provoked for real and reported") {
    Fixture f;
    f.counters.add(Counter::datagrams_received);
    std::uint16_t closed_port;
    {
        HttpTestServer gone;
        closed_port = gone.port();
    }

    SUBCASE("connection refused") {
        TelemetryOptions options;
        options.endpoint = fmt::format("http://127.0.0.1:{}", closed_port);
        auto telemetry = f.make(options);
        telemetry->tick(at_seconds(1));
        CHECK(f.counters.get(Counter::telemetry_send_failures) == 1);
        CHECK(f.counters.get(Counter::backend_connection_refused) == 1);
    }
    SUBCASE("timeout") {
        f.server.push_response(ScriptedResponse{200, {}, "{}", 5000ms});
        TelemetryOptions options;
        options.request_timeout = 300ms;
        auto telemetry = f.make(options);
        telemetry->tick(at_seconds(1));
        CHECK(f.counters.get(Counter::telemetry_send_failures) == 1);
        CHECK(f.counters.get(Counter::backend_timeout) == 1);
        CHECK(telemetry->queued() == 1);
    }
    SUBCASE("HTTP 4xx") {
        f.server.push_response(ScriptedResponse{403, {}, R"({"message":"denied"})"});
        auto telemetry = f.make();
        telemetry->tick(at_seconds(1));
        CHECK(f.counters.get(Counter::telemetry_send_failures) == 1);
        CHECK(f.counters.get(Counter::backend_http_4xx) == 1);
    }
    SUBCASE("HTTP 5xx") {
        f.server.push_response(ScriptedResponse{503, {}, R"({"message":"busy"})"});
        auto telemetry = f.make();
        telemetry->tick(at_seconds(1));
        CHECK(f.counters.get(Counter::telemetry_send_failures) == 1);
        CHECK(f.counters.get(Counter::backend_http_5xx) == 1);
    }
    SUBCASE("unknown host") {
        TelemetryOptions options;
        options.endpoint = "http://xrayd-telemetry-test.invalid";
        auto telemetry = f.make(options);
        telemetry->tick(at_seconds(1));
        CHECK(f.counters.get(Counter::telemetry_send_failures) == 1);
        CHECK(f.counters.get(Counter::backend_unknown_host) == 1);
    }
    SUBCASE("dropped connection") {
        f.server.push_response(ScriptedResponse{200, {}, "", 0ms, true});
        auto telemetry = f.make();
        telemetry->tick(at_seconds(1));
        CHECK(f.counters.get(Counter::telemetry_send_failures) == 1);
        CHECK(f.counters.get(Counter::backend_other) == 1);
    }
}

TEST_CASE("the failures of one period appear in the next record's BackendConnectionErrors") {
    Fixture f;
    f.server.push_response(ScriptedResponse{403, {}, "{}"});
    f.server.push_response(ScriptedResponse{502, {}, "{}"});
    auto telemetry = f.make();
    f.counters.add(Counter::datagrams_received);
    telemetry->tick(at_seconds(1));  // 403
    telemetry->tick(at_seconds(2));  // 502
    telemetry->tick(at_seconds(3));  // sent: records 1, 2 and 3
    const auto requests = f.server.requests();
    REQUIRE(requests.size() == 3);
    CHECK(requests[2].body.find(
              R"("Timestamp":2.000,"SegmentsReceivedCount":0,"SegmentsSentCount":0,)"
              R"("SegmentsSpilloverCount":0,"SegmentsRejectedCount":0,"BackendConnectionErrors":)"
              R"({"TimeoutCount":0,"ConnectionRefusedCount":0,"HTTPCode4XXCount":1,)"
              R"("HTTPCode5XXCount":0,)") != std::string::npos);
    CHECK(requests[2].body.find(
              R"("Timestamp":3.000,"SegmentsReceivedCount":0,"SegmentsSentCount":0,)"
              R"("SegmentsSpilloverCount":0,"SegmentsRejectedCount":0,)"
              R"("BackendConnectionErrors":{"TimeoutCount":0,)"
              R"("ConnectionRefusedCount":0,"HTTPCode4XXCount":0,)"
              R"("HTTPCode5XXCount":1,)") != std::string::npos);
}

TEST_CASE("the worker sends a record every period and a final one at stop()") {
    Fixture f;
    TelemetryOptions options;
    options.period = 20ms;
    auto telemetry = f.make(options);
    f.counters.add(Counter::datagrams_received, 4);
    telemetry->start();
    const auto deadline = std::chrono::steady_clock::now() + generous_deadline;
    while (f.server.request_count() == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);  // polling a condition, with a deadline
    }
    REQUIRE(f.server.request_count() >= 1);
    f.counters.add(Counter::segments_sent, 9);
    const std::size_t before_stop = f.server.request_count();
    telemetry->stop();
    CHECK(f.log.contains("[Debug] telemetry: done!"));
    const auto requests = f.server.requests();
    CHECK(requests.size() >= before_stop + 1);
    // Every delta is reported exactly once, whichever record carried it.
    std::int64_t received = 0;
    std::int64_t sent = 0;
    for (const auto& r : requests) {
        received += sum_field(r.body, "\"SegmentsReceivedCount\":");
        sent += sum_field(r.body, "\"SegmentsSentCount\":");
    }
    CHECK(received == 4);
    CHECK(sent == 9);
    telemetry->stop();  // idempotent
    CHECK(f.server.request_count() == requests.size());
}

TEST_CASE("stop() without a worker still sends the final record") {
    Fixture f;
    auto telemetry = f.make();
    f.counters.add(Counter::datagrams_received, 2);
    telemetry->stop();
    REQUIRE(f.server.request_count() == 1);
    CHECK(f.server.requests()[0].body.find(R"("SegmentsReceivedCount":2)") != std::string::npos);
}

TEST_CASE("stop(deadline) with a hung endpoint returns by the deadline, not after the request "
          "timeout") {
    Fixture f;
    TelemetryOptions options;
    options.request_timeout = 20s;
    auto telemetry = f.make(options);
    f.server.push_response({.body = "{}", .delay = 30s});
    f.counters.add(Counter::datagrams_received, 2);
    const auto started = std::chrono::steady_clock::now();
    telemetry->stop(Clock::now() + 500ms);
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK(took < 500ms + 1s);  // the final call's timeout is the time left, not 20 s
    CHECK(f.counters.get(Counter::telemetry_send_failures) == 1);
    CHECK(f.counters.get(Counter::backend_timeout) == 1);
}

TEST_CASE("a periodic telemetry call hung at shutdown is aborted once the deadline passes") {
    Fixture f;
    TelemetryOptions options;
    options.period = 20ms;
    options.request_timeout = 20s;
    auto telemetry = f.make(options);
    f.server.push_response({.body = "{}", .delay = 30s});
    f.counters.add(Counter::datagrams_received, 2);
    telemetry->start();
    const auto until = std::chrono::steady_clock::now() + generous_deadline;
    while (f.server.request_count() == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(1ms);  // polling a condition, with a deadline
    }
    REQUIRE(f.server.request_count() == 1);  // the worker now waits in the hung call
    const auto started = std::chrono::steady_clock::now();
    telemetry->stop(Clock::now() + 200ms);
    const auto took = std::chrono::steady_clock::now() - started;
    // The exchange notices the deadline within 200 ms: the deadline plus well under a second.
    CHECK(took < 200ms + 1500ms);
    CHECK(f.counters.get(Counter::telemetry_send_failures) >= 1);
    CHECK(f.log.contains("[Debug] telemetry: done!"));
}

TEST_CASE("with no time left before the deadline the final record is not sent") {
    Fixture f;
    auto telemetry = f.make();
    f.counters.add(Counter::datagrams_received, 2);
    telemetry->stop(Clock::now());
    CHECK(f.server.request_count() == 0);
    CHECK(f.log.contains("Not sending the final telemetry record(s): the shutdown deadline "
                         "leaves 0 ms"));
    CHECK(telemetry->queued() == 1);
}

TEST_CASE("a bad endpoint is a StartupError") {
    Fixture f;
    TelemetryOptions options;
    options.endpoint = "xray.us-west-2.amazonaws.com";
    CHECK_THROWS_AS((void)f.make(options), StartupError);
}
