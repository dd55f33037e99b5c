// Tests of the OTLP exporter against a real HTTP server on loopback: merging, gzip, SigV4,
// partial success, retries, the split of a refused merge, the memory budget, the drain and the
// disk spool, each with the span accounting checked (accepted = sent + rejected + dropped + held,
// + spooled with a spool).
#include <xrayd/otlp/otlp_exporter.h>

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include <fmt/format.h>

#include <xrayd/aws/sigv4.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/otlp/otlp_response.h>
#include <xrayd/stats/summary.h>

#include "captured_log.h"
#include "http_test_server.h"
#include "signature_check.h"
#include "temp_dir.h"
#include "tests/support/otlp_builder.h"
#include "upload_fixture.h"

using namespace std::chrono_literals;
using namespace xrayd;
using namespace xrayd::otlp;
using namespace xrayd::test;

namespace {

// One client request of `spans` spans numbered from `first`, as the receiver would offer it.
struct ClientRequest {
    std::string body;
    OtlpExportRequest request;
};

ClientRequest protobuf_request(int first, int spans) {
    ClientRequest r{export_request({resource_spans({scope_spans(first, spans)})}).str(), {}};
    auto read = read_export_request(r.body, OtlpEncoding::protobuf, OtlpLimits{});
    REQUIRE(read);
    r.request = std::move(read.value());
    return r;
}

ClientRequest json_request(int first, int spans) {
    std::string list;
    for (int i = 0; i < spans; ++i) {
        list += fmt::format(R"({}{{"traceId":"{:032x}","spanId":"{:016x}","name":"s{}"}})",
                            i == 0 ? "" : ",", first + i + 1, first + i + 1, first + i);
    }
    ClientRequest r{
        fmt::format(R"({{"resourceSpans":[{{"scopeSpans":[{{"spans":[{}]}}]}}]}})", list), {}};
    auto read = read_export_request(r.body, OtlpEncoding::json, OtlpLimits{});
    REQUIRE(read);
    r.request = std::move(read.value());
    return r;
}

// The upload tests' harness (counters, captured log, credentials, budget) and a server.
struct Fixture : Harness {
    explicit Fixture(std::size_t budget_bytes = 64 << 20) : Harness(budget_bytes) {}

    HttpTestServer server;
    std::size_t offered_spans = 0;  // accepted by offer(): what the exporter must account for

    OtlpExporterOptions options() const {
        OtlpExporterOptions o;
        o.url = server.url() + "/v1/traces";
        o.region = "us-east-2";
        o.concurrency = 1;
        o.linger = 50ms;
        o.retry_base = 10ms;
        o.retry_cap = 50ms;
        return o;
    }

    std::unique_ptr<OtlpExporter> make(OtlpExporterOptions o) {
        return OtlpExporter::create(std::move(o), credentials, counters, logger, budget);
    }

    OfferResult offer(OtlpExporter& e, OtlpEncoding encoding, const ClientRequest& r) {
        const OfferResult result = e.offer(encoding, r.body, r.request);
        if (result == OfferResult::accepted) {
            offered_spans += r.request.accepted_spans();
        }
        return result;
    }

    // Every offered span has reached its outcome and is let go. The exporter lets the spans go
    // just before it counts their outcome: a test waits for both before it checks either.
    [[nodiscard]] bool settled(const OtlpExporter& e) const {
        const CounterSnapshot s = counters.snapshot();
        return e.held_spans() == 0 && offered_spans == s.total(CounterKind::otlp_sent) +
                                                           s.total(CounterKind::otlp_rejected) +
                                                           s.total(CounterKind::otlp_dropped);
    }

    // accepted = sent + rejected + dropped + held, with the receiver's own counters left out
    // (this test plays the receiver: it counts what it offered).
    void check_identity(const OtlpExporter& e) const {
        const CounterSnapshot s = counters.snapshot();
        CHECK(offered_spans == s.total(CounterKind::otlp_sent) +
                                   s.total(CounterKind::otlp_rejected) +
                                   s.total(CounterKind::otlp_dropped) + e.held_spans());
    }
};

bool wait_for(const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + generous_deadline;
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) {
            return false;
        }
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

std::string inflate(const std::string& body) {
    auto raw = gunzip(body, 64 << 20);
    REQUIRE(raw);
    return std::move(raw.value());
}

}  // namespace

TEST_CASE("requests queued within the linger go out as one gzip, SigV4-signed POST") {
    Fixture f;
    auto e = f.make(f.options());
    const ClientRequest a = protobuf_request(0, 3);
    const ClientRequest b = protobuf_request(10, 2);
    CHECK(f.offer(*e, OtlpEncoding::protobuf, a) == OfferResult::accepted);
    CHECK(f.offer(*e, OtlpEncoding::protobuf, b) == OfferResult::accepted);
    CHECK(e->held_spans() == 5);
    e->start();
    REQUIRE(wait_for([&] { return f.settled(*e); }));
    CHECK(f.get(Counter::otlp_spans_sent) == 5);
    CHECK(f.get(Counter::otlp_upload_requests) == 1);
    f.check_identity(*e);

    const auto requests = f.server.requests();
    REQUIRE(requests.size() == 1);
    const RecordedRequest& r = requests[0];
    CHECK(r.method == "POST");
    CHECK(r.path == "/v1/traces");
    CHECK(r.header("Content-Type") == "application/x-protobuf");
    CHECK(r.header("Content-Encoding") == "gzip");
    // One ExportTraceServiceRequest: the two requests' resource_spans one after the other.
    CHECK(inflate(r.body) == a.body + b.body);
    const std::string authorization = r.header("Authorization").value_or("");
    CHECK(authorization_field(authorization, "SignedHeaders=") ==
          "content-encoding;content-length;content-type;host;x-amz-date;x-amz-security-token");
    verify_xray_signature(r, test_credentials, "us-east-2");
    CHECK(e->drain(Clock::now() + 1s) == 0);
}

TEST_CASE("JSON and protobuf requests go out apart, each in its own encoding") {
    Fixture f;
    auto e = f.make(f.options());
    const ClientRequest p = protobuf_request(0, 2);
    const ClientRequest j1 = json_request(100, 2);
    const ClientRequest j2 = json_request(200, 1);
    CHECK(f.offer(*e, OtlpEncoding::json, j1) == OfferResult::accepted);
    CHECK(f.offer(*e, OtlpEncoding::protobuf, p) == OfferResult::accepted);
    CHECK(f.offer(*e, OtlpEncoding::json, j2) == OfferResult::accepted);
    e->start();
    REQUIRE(wait_for([&] { return f.settled(*e); }));
    CHECK(f.get(Counter::otlp_spans_sent) == 5);
    const auto requests = f.server.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].header("Content-Type") == "application/json");
    const std::string merged = inflate(requests[0].body);
    // The two JSON requests' resourceSpans elements in one list, the protobuf one apart.
    CHECK(merged.starts_with(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":)"));
    CHECK(merged.find(R"("name":"s100")") != std::string::npos);
    CHECK(merged.find(R"("name":"s200")") != std::string::npos);
    CHECK(requests[1].header("Content-Type") == "application/x-protobuf");
    CHECK(inflate(requests[1].body) == p.body);
    f.check_identity(*e);
}

TEST_CASE("a partial success counts the spans X-Ray rejected, and logs its message") {
    Fixture f;
    f.server.push_response(
        scripted(200, export_response(OtlpEncoding::protobuf, 2, "2 spans too old")));
    auto e = f.make(f.options());
    (void)f.offer(*e, OtlpEncoding::protobuf, protobuf_request(0, 5));
    e->start();
    REQUIRE(wait_for([&] { return f.settled(*e); }));
    CHECK(f.get(Counter::otlp_spans_sent) == 3);
    CHECK(f.get(Counter::otlp_spans_rejected_by_xray) == 2);
    // Counted (settled) a moment before it is logged, on the exporter's thread.
    CHECK(wait_for(
        [&] { return f.log->contains("X-Ray refused 2 of 5 OTLP spans: 2 spans too old"); }));
    f.check_identity(*e);
}

TEST_CASE("5xx and 429 answers are retried with back-off; 429 counts as throttled") {
    Fixture f;
    f.server.push_response(scripted(503, "busy"));
    f.server.push_response(scripted(429, "slow down", {{"Retry-After", "0"}}));
    auto e = f.make(f.options());
    (void)f.offer(*e, OtlpEncoding::protobuf, protobuf_request(0, 4));
    e->start();
    REQUIRE(wait_for([&] { return f.settled(*e); }));
    CHECK(f.get(Counter::otlp_spans_sent) == 4);
    CHECK(f.get(Counter::otlp_upload_requests) == 3);
    CHECK(f.get(Counter::otlp_upload_retries) == 2);
    CHECK(f.get(Counter::otlp_upload_failures) == 2);
    CHECK(f.get(Counter::otlp_upload_throttled) == 1);
    const auto requests = f.server.requests();
    REQUIRE(requests.size() == 3);
    CHECK(requests[2].body == requests[0].body);  // the same request, sent again
    f.check_identity(*e);
}

TEST_CASE("a merged request refused with 400 is split: only the bad client request is lost") {
    Fixture f;
    f.server.push_response(scripted(400, R"({"message":"bad span"})"));  // the merge
    f.server.push_response(scripted(200, ""));                           // a
    f.server.push_response(scripted(400, R"({"message":"bad span"})"));  // b alone
    f.server.push_response(scripted(200, ""));                           // c
    auto e = f.make(f.options());
    const ClientRequest a = protobuf_request(0, 2);
    const ClientRequest b = protobuf_request(10, 3);
    const ClientRequest c = protobuf_request(20, 4);
    for (const ClientRequest* r : {&a, &b, &c}) {
        (void)f.offer(*e, OtlpEncoding::protobuf, *r);
    }
    e->start();
    REQUIRE(wait_for([&] { return f.settled(*e); }));
    CHECK(f.get(Counter::otlp_requests_split) == 1);
    CHECK(f.get(Counter::otlp_spans_sent) == 6);
    CHECK(f.get(Counter::otlp_spans_rejected_request_invalid) == 3);
    const auto requests = f.server.requests();
    REQUIRE(requests.size() == 4);
    CHECK(inflate(requests[0].body) == a.body + b.body + c.body);
    CHECK(inflate(requests[1].body) == a.body);
    CHECK(inflate(requests[2].body) == b.body);
    CHECK(inflate(requests[3].body) == c.body);
    // Counted (settled) a moment before it is logged, on the exporter's thread.
    CHECK(wait_for([&] {
        return f.log->contains("X-Ray refused an OTLP request of 3 spans (protobuf): HTTP 400");
    }));
    f.check_identity(*e);
}

TEST_CASE("past the retry budget a request is given up and counted") {
    Fixture f;
    f.server.set_default_response(scripted(500, "down"));
    auto options = f.options();
    options.retry_budget = 150ms;
    auto e = f.make(options);
    (void)f.offer(*e, OtlpEncoding::protobuf, protobuf_request(0, 7));
    e->start();
    REQUIRE(wait_for([&] { return f.settled(*e); }));
    CHECK(f.get(Counter::otlp_spans_dropped_gave_up) == 7);
    CHECK(f.get(Counter::otlp_upload_requests) >= 2);
    // Counted (settled) a moment before it is logged, on the exporter's thread.
    CHECK(wait_for([&] { return f.log->contains("Gave up an OTLP request of 7 spans after"); }));
    CHECK(f.budget.used() == 0);
    f.check_identity(*e);
}

TEST_CASE("a full memory budget: drop-newest refuses the offer, drop-oldest evicts the oldest") {
    const ClientRequest r = protobuf_request(0, 20);
    // Room for two of these requests, not three.
    const std::size_t one = r.body.size() + r.request.rebuilt.size() + 1024;
    SUBCASE("drop-newest") {
        Fixture f(2 * one + one / 2);
        auto e = f.make(f.options());  // not started: everything stays queued
        CHECK(f.offer(*e, OtlpEncoding::protobuf, r) == OfferResult::accepted);
        CHECK(f.offer(*e, OtlpEncoding::protobuf, r) == OfferResult::accepted);
        CHECK(f.offer(*e, OtlpEncoding::protobuf, r) == OfferResult::full);
        CHECK(e->held_spans() == 40);
        f.check_identity(*e);
    }
    SUBCASE("drop-oldest") {
        Fixture f(2 * one + one / 2);
        auto options = f.options();
        options.backpressure = Backpressure::drop_oldest;
        auto e = f.make(options);
        CHECK(f.offer(*e, OtlpEncoding::protobuf, r) == OfferResult::accepted);
        CHECK(f.offer(*e, OtlpEncoding::protobuf, r) == OfferResult::accepted);
        CHECK(f.offer(*e, OtlpEncoding::protobuf, r) == OfferResult::accepted);
        CHECK(f.get(Counter::otlp_spans_dropped_oldest) == 20);
        CHECK(e->held_spans() == 40);
        f.check_identity(*e);
    }
}

TEST_CASE("drain sends what is queued at once, and reports what it could not send as held") {
    SUBCASE("X-Ray answers: everything is sent before the deadline, without waiting the linger") {
        Fixture f;
        auto options = f.options();
        options.linger = 10s;
        auto e = f.make(options);
        e->start();
        (void)f.offer(*e, OtlpEncoding::protobuf, protobuf_request(0, 3));
        const auto began = Clock::now();
        CHECK(e->drain(Clock::now() + 5s) == 0);
        CHECK(Clock::now() - began < 5s);
        CHECK(f.get(Counter::otlp_spans_sent) == 3);
        f.check_identity(*e);
    }
    SUBCASE("X-Ray is down: the spans are held at the deadline, not counted as dropped") {
        Fixture f;
        f.server.stop();
        auto e = f.make(f.options());
        e->start();
        (void)f.offer(*e, OtlpEncoding::protobuf, protobuf_request(0, 6));
        CHECK(e->drain(Clock::now() + 300ms) == 6);
        CHECK(f.counters.snapshot().total(CounterKind::otlp_dropped) == 0);
        CHECK(f.budget.used() == 0);  // the memory goes with them
        CHECK(f.offer(*e, OtlpEncoding::protobuf, protobuf_request(0, 1)) == OfferResult::full);
    }
}

TEST_CASE("a URL that is not http(s) is refused at start") {
    Fixture f;
    auto options = f.options();
    options.url = "ftp://127.0.0.1/v1/traces";
    CHECK_THROWS_AS((void)f.make(options), StartupError);
}

// ---- With the disk spool ------------------------------------------------------------------

namespace {

struct SpoolFixture : Fixture {
    TempDir tmp{"xrayd-otlp-exporter"};
    std::unique_ptr<OtlpSpool> spool = open_spool();

    std::unique_ptr<OtlpSpool> open_spool() {
        OtlpSpoolOptions o;
        o.dir = (tmp.path() / "otlp").string();
        return OtlpSpool::open(std::move(o), counters, logger);
    }
    OtlpExporterOptions spool_options() {
        OtlpExporterOptions o = options();
        o.spool = spool.get();
        return o;
    }
    // accepted = sent + rejected + dropped + held + spooled.
    void check_spool_identity(const OtlpExporter& e) const {
        const CounterSnapshot s = counters.snapshot();
        CHECK(offered_spans + s[Counter::otlp_spans_spool_recovered] ==
              s.total(CounterKind::otlp_sent) + s.total(CounterKind::otlp_rejected) +
                  s.total(CounterKind::otlp_dropped) + e.held_spans() +
                  spool->gauges().spans.load());
    }
};

}  // namespace

TEST_CASE("with a spool, a request past its retry budget goes to disk and is sent later") {
    SpoolFixture f;
    f.server.set_default_response(scripted(500, "down"));
    auto options = f.spool_options();
    options.retry_budget = 100ms;
    auto e = f.make(options);
    const ClientRequest r = protobuf_request(0, 5);
    (void)f.offer(*e, OtlpEncoding::protobuf, r);
    e->start();
    REQUIRE(wait_for([&] { return f.get(Counter::otlp_spans_spooled) == 5; }));
    CHECK(f.get(Counter::otlp_spans_dropped_gave_up) == 0);
    f.server.set_default_response(scripted(200, ""));
    // After failures, one request read back probes whether X-Ray is back.
    // Sent, settled with the spool (its file deleted, counted replayed) and let go.
    REQUIRE(wait_for([&] {
        return f.get(Counter::otlp_spans_replayed) == 5 && f.spool->gauges().files == 0 &&
               e->held_spans() == 0;
    }));
    CHECK(f.get(Counter::otlp_spans_sent) == 5);
    CHECK(inflate(f.server.requests().back().body) == r.body);  // unchanged by the round trip
    CHECK(e->drain(Clock::now() + 1s) == 0);
    f.check_spool_identity(*e);
}

TEST_CASE("with a spool, the drain puts what X-Ray did not take on disk; a restart sends it") {
    SpoolFixture f;
    f.server.stop();
    {
        auto e = f.make(f.spool_options());
        e->start();
        (void)f.offer(*e, OtlpEncoding::protobuf, protobuf_request(0, 4));
        (void)f.offer(*e, OtlpEncoding::json, json_request(10, 3));
        CHECK(e->drain(Clock::now() + 300ms) == 0);  // nothing held: all of it spooled
        CHECK(f.spool->gauges().spans == 7);
        CHECK(f.budget.used() == 0);
        f.check_spool_identity(*e);
    }
    f.spool.reset();
    f.spool = f.open_spool();  // the next start
    CHECK(f.get(Counter::otlp_spans_spool_recovered) == 7);
    f.server.start();
    auto e = f.make(f.spool_options());
    e->start();
    REQUIRE(wait_for([&] {
        return f.get(Counter::otlp_spans_replayed) == 7 && f.spool->gauges().files == 0 &&
               e->held_spans() == 0;
    }));
    CHECK(f.get(Counter::otlp_spans_sent) == 7);
    CHECK(f.spool->gauges().spans == 0);
    const auto requests = f.server.requests();
    REQUIRE(requests.size() == 2);
    // Each in its own encoding (the order they were spilled in follows their retry times).
    std::set<std::string> types;
    for (const RecordedRequest& request : requests) {
        types.insert(request.header("Content-Type").value_or(""));
    }
    CHECK(types == std::set<std::string>{"application/json", "application/x-protobuf"});
    // The second run's identity: what it recovered was sent.
    CHECK(e->drain(Clock::now() + 1s) == 0);
    CHECK(e->held_spans() == 0);
}

TEST_CASE(
    "with a spool, a request in flight at the drain is spooled and counted as a maybe-duplicate") {
    SpoolFixture f;
    f.server.set_default_response(scripted(200, "", {}, 5s));  // answered after the drain
    auto e = f.make(f.spool_options());
    e->start();
    (void)f.offer(*e, OtlpEncoding::protobuf, protobuf_request(0, 6));
    REQUIRE(wait_for([&] { return e->in_flight() == 1; }));
    (void)f.offer(*e, OtlpEncoding::protobuf, protobuf_request(10, 2));  // queued, not in flight
    CHECK(e->drain(Clock::now() + 100ms) == 0);
    CHECK(f.spool->gauges().spans == 8);
    // Only the 6 spans X-Ray may have stored are flagged; the queued 2 were never sent.
    CHECK(f.get(Counter::otlp_spans_spool_maybe_duplicates) == 6);
    f.check_spool_identity(*e);
}

TEST_CASE("with a spool, queued requests go to disk ahead of a full memory, and come back") {
    const ClientRequest r = protobuf_request(0, 20);
    const std::size_t one = r.body.size() + r.request.rebuilt.size() + 1024;
    SpoolFixture f;
    auto options = f.spool_options();
    // A budget four requests fill: the exporter thread moves the oldest to disk past 3/4.
    MemoryBudget small(4 * one);
    auto tight = OtlpExporter::create(options, f.credentials, f.counters, f.logger, small);
    for (int i = 0; i < 4; ++i) {
        REQUIRE(f.offer(*tight, OtlpEncoding::protobuf, r) == OfferResult::accepted);
    }
    tight->start();  // its first turn spills before anything leaves the queue
    // Spilled for room, then read back (memory below half, X-Ray answering) and sent alone.
    REQUIRE(wait_for([&] {
        return f.get(Counter::otlp_spans_sent) == 80 && tight->held_spans() == 0 &&
               f.spool->gauges().files == 0;
    }));
    CHECK(f.get(Counter::otlp_spans_spooled) > 0);
    CHECK(f.get(Counter::otlp_spans_replayed) == f.get(Counter::otlp_spans_spooled));
    CHECK(tight->drain(Clock::now() + 1s) == 0);
    CHECK(small.used() == 0);
    f.check_spool_identity(*tight);
}
