// Tests of the admin module: readiness, the /metrics exposition (every declared counter), the
// HTTP listener on loopback, the latency histogram and the periodic summary line.
#include <xrayd/admin/admin_server.h>

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <xrayd/admin/metrics.h>
#include <xrayd/admin/periodic_summary.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/common/unique_fd.h>

#include "raw_http_client.h"

namespace xrayd {
namespace {

using namespace std::chrono_literals;

// A log sink that keeps nothing: the server's Info line is not under test.
class NullSink final : public LogSink {
public:
    void write(std::string_view) noexcept override {}
};

struct HttpReply {
    int status = 0;
    std::string headers;
    std::string body;
};

// One HTTP/1.0-style exchange over a real TCP connection (Connection: close, read to EOF).
HttpReply http_request(std::uint16_t port, const std::string& method, const std::string& path) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    const std::string request =
        method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    REQUIRE(::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size()));
    std::string raw;
    char buf[4096];
    for (;;) {
        pollfd p{fd.get(), POLLIN, 0};
        REQUIRE(::poll(&p, 1, 10000) == 1);  // generous deadline, not a synchronisation
        const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        REQUIRE(n >= 0);
        if (n == 0) {
            break;
        }
        raw.append(buf, static_cast<std::size_t>(n));
    }
    HttpReply reply;
    const std::size_t end = raw.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    reply.headers = raw.substr(0, end);
    reply.body = raw.substr(end + 4);
    REQUIRE(raw.starts_with("HTTP/1.1 "));
    reply.status = std::atoi(raw.c_str() + 9);
    return reply;
}

// A parsed exposition: sample name with labels → value, and the TYPE of each family.
struct Exposition {
    std::map<std::string, double> samples;
    std::map<std::string, std::string> types;
    std::set<std::string> helps;
};

// Parses the Prometheus text format strictly enough to catch malformed lines.
Exposition parse_exposition(const std::string& text) {
    Exposition e;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        REQUIRE_FALSE(line.empty());
        if (line.starts_with("# HELP ")) {
            const std::string rest = line.substr(7);
            const std::size_t sp = rest.find(' ');
            REQUIRE(sp != std::string::npos);
            e.helps.insert(rest.substr(0, sp));
            continue;
        }
        if (line.starts_with("# TYPE ")) {
            std::istringstream t(line.substr(7));
            std::string name;
            std::string type;
            t >> name >> type;
            CHECK((type == "counter" || type == "gauge" || type == "histogram"));
            e.types[name] = type;
            continue;
        }
        REQUIRE(line[0] != '#');
        const std::size_t sp = line.rfind(' ');
        REQUIRE(sp != std::string::npos);
        const std::string key = line.substr(0, sp);
        const std::string value = line.substr(sp + 1);
        char* endp = nullptr;
        const double v = std::strtod(value.c_str(), &endp);
        INFO(line);
        REQUIRE(endp == value.c_str() + value.size());
        // Every sample belongs to a family declared before it.
        const std::string family = key.substr(0, key.find('{'));
        bool declared = e.types.count(family) > 0;
        for (const char* suffix : {"_bucket", "_sum", "_count"}) {
            if (!declared && family.ends_with(suffix)) {
                declared = e.types.count(family.substr(0, family.size() - std::strlen(suffix))) > 0;
            }
        }
        CHECK(declared);
        e.samples[key] = v;
    }
    return e;
}

TEST_CASE("readiness needs listening and credentials, and fails only past the threshold") {
    HealthState h;
    const TimePoint t0 = Clock::now();
    CHECK_FALSE(h.readiness(t0, 60s).ready);
    CHECK(h.readiness(t0, 60s).reason == "not listening for segments");
    h.set_listening(true);
    CHECK(h.readiness(t0, 60s).reason == "no usable AWS credentials");
    h.set_credentials_usable(true);
    CHECK(h.readiness(t0, 60s).ready);

    h.upload_failed(t0);
    h.upload_failed(t0 + 30s);  // a later failure does not restart the clock
    CHECK(h.failing_for(t0 + 30s) == 30s);
    CHECK(h.readiness(t0 + 60s, 60s).ready);  // not longer than the threshold yet
    const Readiness late = h.readiness(t0 + 61s, 60s);
    CHECK_FALSE(late.ready);
    CHECK(late.reason.find("failing for 61.0s") != std::string::npos);

    h.upload_succeeded();
    CHECK(h.failing_for(t0 + 61s) == Duration::zero());
    CHECK(h.readiness(t0 + 61s, 60s).ready);
}

TEST_CASE("upload health follows the counters: failures without sends make /readyz fail") {
    Counters counters;
    HealthState h;
    h.set_listening(true);
    h.set_credentials_usable(true);
    UploadHealthTracker tracker;
    const TimePoint t0 = Clock::now();
    tracker.update(counters.snapshot(), t0, h);  // no traffic: nothing changes
    CHECK(h.failing_for(t0 + 1h) == Duration::zero());

    counters.add(Counter::backend_http_5xx);
    tracker.update(counters.snapshot(), t0, h);
    counters.add(Counter::backend_timeout);
    tracker.update(counters.snapshot(), t0 + 30s, h);
    CHECK(h.failing_for(t0 + 90s) == 90s);
    CHECK_FALSE(h.readiness(t0 + 90s, 60s).ready);

    counters.add(Counter::backend_timeout);
    counters.add(Counter::segments_sent, 50);  // a send in the same interval wins
    tracker.update(counters.snapshot(), t0 + 95s, h);
    CHECK(h.readiness(t0 + 95s, 60s).ready);
}

TEST_CASE("/readyz covers the OTLP uploads too, and names which uploads fail") {
    Counters counters;
    HealthState h;
    h.set_listening(true);
    h.set_credentials_usable(true);
    UploadHealthTracker tracker;
    const TimePoint t0 = Clock::now();
    counters.add(Counter::segments_sent, 10);  // segments go through all along
    counters.add(Counter::otlp_upload_failures);
    tracker.update(counters.snapshot(), t0, h);
    counters.add(Counter::segments_sent, 10);
    tracker.update(counters.snapshot(), t0 + 30s, h);
    CHECK(h.failing_for(t0 + 90s, UploadPath::otlp) == 90s);
    CHECK(h.failing_for(t0 + 90s) == Duration::zero());
    const Readiness r = h.readiness(t0 + 90s, 60s);
    CHECK_FALSE(r.ready);
    CHECK(r.reason.starts_with("OTLP uploads to X-Ray have been failing for 90.0s"));

    counters.add(Counter::otlp_spans_sent, 512);
    tracker.update(counters.snapshot(), t0 + 95s, h);
    CHECK(h.readiness(t0 + 95s, 60s).ready);
}

TEST_CASE("the latency histogram puts each observation in the first bucket that holds it") {
    LatencyHistogram hist;
    hist.observe(1ms);    // <= 0.005
    hist.observe(5ms);    // <= 0.005 (bounds are inclusive, as Prometheus' le)
    hist.observe(300ms);  // <= 0.5
    hist.observe(60s);    // +Inf
    hist.observe(-1ms);   // clamped to 0
    const LatencyHistogram::Snapshot s = hist.snapshot();
    CHECK(s.count == 5);
    CHECK(s.buckets[0] == 3);
    CHECK(s.buckets[6] == 1);
    CHECK(s.buckets[LatencyHistogram::bucket_count - 1] == 1);
    CHECK(s.sum_seconds == doctest::Approx(60.306));
}

TEST_CASE("/metrics exports every declared counter and gauge with help, type and value") {
    Counters counters;
    for (std::size_t i = 0; i < counter_count; ++i) {
        counters.add(static_cast<Counter>(i), i + 1);  // distinct values, to catch mix-ups
    }
    HealthState health;
    health.set(Gauge::queue_depth, 7);
    health.set(Gauge::memory_limit_bytes, 16 << 20);
    LatencyHistogram latency;
    latency.observe(20ms);
    latency.observe(2s);
    const std::string text = format_metrics(counters.snapshot(), health, true, latency.snapshot(),
                                            {{"version", "1.2.3"}, {"backend", "a\"b"}});
    const Exposition e = parse_exposition(text);

    for (std::size_t i = 0; i < counter_count; ++i) {
        const std::string name = "xrayd_" + std::string(counter_infos[i].name) + "_total";
        INFO(name);
        CHECK(e.types.at(name) == "counter");
        CHECK(e.helps.count(name) == 1);
        CHECK(e.samples.at(name) == static_cast<double>(i + 1));
        CHECK(text.find("# HELP " + name + " " + std::string(counter_infos[i].help)) !=
              std::string::npos);
    }
    for (const GaugeInfo& g : gauge_infos) {
        const std::string name = "xrayd_" + std::string(g.name);
        INFO(name);
        CHECK(e.types.at(name) == "gauge");
        CHECK(e.samples.count(name) == 1);
    }
    CHECK(e.samples.at("xrayd_queue_depth") == 7);
    CHECK(e.samples.at("xrayd_memory_limit_bytes") == 16 << 20);
    CHECK(e.samples.at("xrayd_ready") == 1);

    const CounterSnapshot snap = counters.snapshot();
    CHECK(e.samples.at("xrayd_segments_total{outcome=\"received\"}") ==
          static_cast<double>(snap.total(CounterKind::received)));
    CHECK(e.samples.at("xrayd_segments_total{outcome=\"dropped\"}") ==
          static_cast<double>(snap.total(CounterKind::dropped)));

    // OTLP spans: one family per outcome, the reason as a label.
    CHECK(e.types.at("xrayd_otlp_spans_rejected_total") == "counter");
    CHECK(e.samples.at("xrayd_otlp_spans_rejected_total{reason=\"too_large\"}") ==
          static_cast<double>(snap[Counter::otlp_spans_rejected_too_large]));
    CHECK(e.samples.at("xrayd_otlp_spans_rejected_total{reason=\"by_xray\"}") ==
          static_cast<double>(snap[Counter::otlp_spans_rejected_by_xray]));
    CHECK(e.samples.at("xrayd_otlp_spans_dropped_total{reason=\"buffer_full\"}") ==
          static_cast<double>(snap[Counter::otlp_spans_dropped_buffer_full]));
    CHECK(e.samples.at("xrayd_otlp_spans_dropped_total{reason=\"gave_up\"}") ==
          static_cast<double>(snap[Counter::otlp_spans_dropped_gave_up]));
    double rejected = 0;
    double dropped = 0;
    for (const auto& [name, value] : e.samples) {
        rejected += name.starts_with("xrayd_otlp_spans_rejected_total{") ? value : 0;
        dropped += name.starts_with("xrayd_otlp_spans_dropped_total{") ? value : 0;
    }
    CHECK(rejected == static_cast<double>(snap.total(CounterKind::otlp_rejected)));
    CHECK(dropped == static_cast<double>(snap.total(CounterKind::otlp_dropped)));

    CHECK(e.types.at("xrayd_upload_latency_seconds") == "histogram");
    CHECK(e.samples.at("xrayd_upload_latency_seconds_bucket{le=\"0.025\"}") == 1);
    CHECK(e.samples.at("xrayd_upload_latency_seconds_bucket{le=\"2.5\"}") == 2);
    CHECK(e.samples.at("xrayd_upload_latency_seconds_bucket{le=\"+Inf\"}") == 2);
    CHECK(e.samples.at("xrayd_upload_latency_seconds_count") == 2);
    CHECK(e.samples.at("xrayd_upload_latency_seconds_sum") == doctest::Approx(2.02));
    CHECK(e.samples.at("xrayd_build_info{version=\"1.2.3\",backend=\"a\\\"b\"}") == 1);
}

TEST_CASE("the admin listener answers /healthz, /readyz and /metrics over real HTTP") {
    Logger logger(LogLevel::info, std::make_unique<NullSink>());
    Counters counters;
    counters.add(Counter::datagrams_received, 3);
    HealthState health;
    LatencyHistogram latency;
    AdminOptions options;
    options.address = "127.0.0.1:0";
    options.ready_failure_threshold = 60s;
    options.build_info = {{"version", "test"}};
    int refreshes = 0;
    options.refresh = [&refreshes](HealthState& h) {
        ++refreshes;
        h.set(Gauge::queue_depth, 42);
    };
    AdminServer server(options, counters, health, latency, logger);
    server.start();
    REQUIRE(server.port() != 0);

    HttpReply r = http_request(server.port(), "GET", "/healthz");
    CHECK(r.status == 200);
    CHECK(r.body == "ok\n");

    r = http_request(server.port(), "GET", "/readyz");
    CHECK(r.status == 503);
    CHECK(r.body == "not ready: not listening for segments\n");

    health.set_listening(true);
    health.set_credentials_usable(true);
    r = http_request(server.port(), "GET", "/readyz");
    CHECK(r.status == 200);
    CHECK(r.body == "ready\n");

    SUBCASE("readiness flips to 503 when uploads fail past the threshold, back on success") {
        health.upload_failed(Clock::now() - 2min);
        r = http_request(server.port(), "GET", "/readyz");
        CHECK(r.status == 503);
        CHECK(r.body.find("uploads to X-Ray have been failing for") != std::string::npos);
        const Exposition e = parse_exposition(http_request(server.port(), "GET", "/metrics").body);
        CHECK(e.samples.at("xrayd_ready") == 0);

        server.set_ready_failure_threshold(1h);  // a reload raising the threshold
        CHECK(http_request(server.port(), "GET", "/readyz").status == 200);
        server.set_ready_failure_threshold(60s);
        CHECK(http_request(server.port(), "GET", "/readyz").status == 503);

        health.upload_succeeded();
        CHECK(http_request(server.port(), "GET", "/readyz").status == 200);
    }
    SUBCASE("a failed receiver makes /readyz report degraded; none left makes it fail") {
        health.set_receivers(2, 1);
        r = http_request(server.port(), "GET", "/readyz");
        CHECK(r.status == 200);
        CHECK(r.body == "ready, degraded: 1 of 2 receiver threads stopped on a fatal error; the "
                        "others receive their traffic (see the Error log)\n");
        Exposition e = parse_exposition(http_request(server.port(), "GET", "/metrics").body);
        CHECK(e.samples.at("xrayd_receivers_running") == 1);
        CHECK(e.samples.at("xrayd_ready") == 1);
        health.set_receivers(2, 2);
        r = http_request(server.port(), "GET", "/readyz");
        CHECK(r.status == 503);
        CHECK(r.body.find("not ready: no receiver thread is running: all 2 stopped") == 0);
        e = parse_exposition(http_request(server.port(), "GET", "/metrics").body);
        CHECK(e.samples.at("xrayd_receivers_running") == 0);
        CHECK(e.samples.at("xrayd_ready") == 0);
    }
    SUBCASE("/metrics is the Prometheus text format with every counter and refreshed gauges") {
        r = http_request(server.port(), "GET", "/metrics");
        CHECK(r.status == 200);
        CHECK(r.headers.find("text/plain; version=0.0.4") != std::string::npos);
        const Exposition e = parse_exposition(r.body);
        for (const CounterInfo& c : counter_infos) {
            CHECK(e.samples.count("xrayd_" + std::string(c.name) + "_total") == 1);
        }
        CHECK(e.samples.at("xrayd_datagrams_received_total") == 3);
        CHECK(e.samples.at("xrayd_queue_depth") == 42);
        CHECK(refreshes >= 1);
    }
    SUBCASE("unknown paths are 404 and other methods 405") {
        CHECK(http_request(server.port(), "GET", "/nope").status == 404);
        r = http_request(server.port(), "POST", "/metrics");
        CHECK(r.status == 405);
        CHECK(r.headers.find("Allow: GET, HEAD") != std::string::npos);
        CHECK(http_request(server.port(), "HEAD", "/healthz").status == 200);
    }
    server.stop();
    server.stop();  // idempotent
}

TEST_CASE("a taken admin address is a start-up error naming the address") {
    Logger logger(LogLevel::info, std::make_unique<NullSink>());
    Counters counters;
    HealthState health;
    LatencyHistogram latency;
    AdminOptions options;
    options.address = "127.0.0.1:0";
    AdminServer first(options, counters, health, latency, logger);
    first.start();
    options.address = "127.0.0.1:" + std::to_string(first.port());
    AdminServer second(options, counters, health, latency, logger);
    try {
        second.start();
        FAIL("start() should have thrown");
    } catch (const StartupError& e) {
        const std::string what = e.what();
        CHECK(what.find("admin http server failed to listen: listen tcp " + options.address +
                        ": bind: ") == 0);
        CHECK(what.find("in use") != std::string::npos);
    }
}

TEST_CASE("the periodic summary is due once per interval and reports rates and drop reasons") {
    Counters counters;
    const TimePoint t0 = Clock::now();
    PeriodicSummary summary(60s, counters.snapshot(), t0);
    CHECK(summary.enabled());
    CHECK(summary.poll_timeout_ms(t0) == 60000);
    CHECK(summary.poll_timeout_ms(t0 + 59999ms + 500us) == 1);  // rounded up, never early
    CHECK_FALSE(summary.tick(counters.snapshot(), t0 + 59s).has_value());

    counters.add(Counter::datagrams_received, 1200);
    counters.add(Counter::segments_sent, 1185);
    counters.add(Counter::rejected_bad_json, 5);
    counters.add(Counter::dropped_buffer_full, 10);
    counters.add(Counter::upload_requests, 24);
    counters.add(Counter::backend_http_5xx, 2);
    HealthState gauges;
    gauges.set(Gauge::queue_depth, 3);
    gauges.set(Gauge::memory_in_use_bytes, 1 << 20);
    gauges.set(Gauge::memory_limit_bytes, 160 << 20);
    const auto line = summary.tick(counters.snapshot(), t0 + 60s, &gauges);
    REQUIRE(line.has_value());
    CHECK(*line ==
          "Summary of the last 60s: received 1200 (20.0/s), sent 1185 (19.8/s), rejected 5 "
          "(bad_json=5), dropped 10 (buffer_full=10), kernel drops 0, uploads 24 (retries 0, "
          "errors 2); queue 3, held 0, memory 1.0 of 160.0 MiB");
    CHECK(summary.poll_timeout_ms(t0 + 60s) == 60000);

    // The next line covers only what happened since.
    counters.add(Counter::datagrams_received, 60);
    const auto next = summary.tick(counters.snapshot(), t0 + 120s);
    REQUIRE(next.has_value());
    CHECK(next->starts_with("Summary of the last 60s: received 60 (1.0/s), sent 0 (0.0/s), "
                            "rejected 0, dropped 0,"));
}

TEST_CASE("a zero summary interval disables the summary") {
    Counters counters;
    const TimePoint t0 = Clock::now();
    PeriodicSummary summary(Duration::zero(), counters.snapshot(), t0);
    CHECK_FALSE(summary.enabled());
    CHECK(summary.poll_timeout_ms(t0) == -1);
    CHECK_FALSE(summary.tick(counters.snapshot(), t0 + 24h).has_value());
    summary.set_interval(10s, t0);
    CHECK(summary.tick(counters.snapshot(), t0 + 10s).has_value());
}

}  // namespace
}  // namespace xrayd

namespace xrayd {
namespace {

using xrayd::test::RawHttpClient;

struct AdminFixture {
    explicit AdminFixture(AdminOptions options = {}) {
        options.address = "127.0.0.1:0";
        server =
            std::make_unique<AdminServer>(std::move(options), counters, health, latency, logger);
        server->start();
    }
    Logger logger{LogLevel::info, std::make_unique<NullSink>()};
    Counters counters;
    HealthState health;
    LatencyHistogram latency;
    std::unique_ptr<AdminServer> server;
};

}  // namespace

TEST_CASE("32 idle connections and trickling clients do not hold up /healthz") {
    AdminOptions options;
    options.head_timeout = 60s;  // the idle ones are not timed out during the test
    AdminFixture f(options);
    std::vector<std::unique_ptr<RawHttpClient>> idle;
    for (int i = 0; i < 40; ++i) {
        idle.push_back(std::make_unique<RawHttpClient>(f.server->port()));
        if (i % 4 == 0) {
            idle.back()->send("GET /healthz HTTP/1.1\r\nHo");  // trickling, never finished
        }
    }
    // Answered now, not once the idle connections time out (poll's deadline is 10 s).
    const HttpReply r = http_request(f.server->port(), "GET", "/healthz");
    CHECK(r.status == 200);
    CHECK(r.body == "ok\n");
    CHECK(f.counters.get(Counter::listener_connections_shed) > 0);
}

TEST_CASE("a trickled admin request head is cut at the head deadline") {
    AdminOptions options;
    options.head_timeout = 1s;
    AdminFixture f(options);
    RawHttpClient slow(f.server->port());
    slow.send("GET /healthz HTTP/1.1\r\n");
    const auto start = std::chrono::steady_clock::now();
    bool cut = false;
    while (!cut && std::chrono::steady_clock::now() - start < 20s) {
        cut = !slow.try_send("X") || slow.closed_by_peer(100ms);
    }
    REQUIRE(cut);
    CHECK(slow.rest().starts_with("HTTP/1.1 408 "));
    CHECK(f.counters.get(Counter::listener_head_timeout) == 1);
}

TEST_CASE("a malformed admin request head gets exactly one 400") {
    AdminFixture f;
    for (const char* request :
         {"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",
          "GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization\t: x\r\n\r\n",
          "GET http://evil/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
          "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
          "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"}) {
        INFO(request);
        RawHttpClient client(f.server->port());
        (void)client.try_send(request);
        const auto response = client.read_response();
        REQUIRE(response.has_value());
        CHECK(response->status == 400);
        CHECK(client.closed_by_peer(5s));
        CHECK(client.rest().empty());
    }
    CHECK(f.counters.get(Counter::listener_bad_request_head) == 5);
}

TEST_CASE("every admin answer closes its connection") {
    AdminFixture f;
    RawHttpClient client(f.server->port());
    client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto response = client.read_response();
    REQUIRE(response.has_value());
    CHECK(response->status == 200);
    CHECK(response->header("Connection") == "close");
    CHECK(client.closed_by_peer(5s));
}

}  // namespace xrayd
