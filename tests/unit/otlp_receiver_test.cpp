// Tests of the OTLP/HTTP receiver: a real listener on loopback, raw HTTP/1.1 requests as an
// OTel SDK's exporter sends them, and the answers decoded independently (protobuf's
// CodedInputStream, simdjson).
#include <xrayd/otlp/otlp_receiver.h>

#include <doctest/doctest.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <simdjson.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/otlp/otlp_response.h>

#include "captured_log.h"
#include "raw_http_client.h"
#include "tests/support/otlp_builder.h"

using namespace xrayd;
using namespace xrayd::otlp;
using namespace xrayd::test;

namespace {

// What the sink was offered.
struct Offer {
    OtlpEncoding encoding;
    std::string body;
    std::size_t spans;
    std::size_t accepted;
    std::size_t refused;
};

// The daemon's side of the receiver, recording each offer; answers `full` when told to.
class RecordingSink final : public OtlpSink {
public:
    OfferResult offer(OtlpEncoding encoding, std::string body,
                      const OtlpExportRequest& request) noexcept override {
        std::lock_guard lock(mutex_);
        offers_.push_back(Offer{encoding, std::move(body), request.spans, request.accepted_spans(),
                                request.refused_spans});
        return full.load() ? OfferResult::full : OfferResult::accepted;
    }
    std::vector<Offer> offers() {
        std::lock_guard lock(mutex_);
        return offers_;
    }
    std::atomic<bool> full{false};

private:
    std::mutex mutex_;
    std::vector<Offer> offers_;
};

struct Fixture {
    explicit Fixture(OtlpReceiverOptions options = {}) {
        options.address = "127.0.0.1:0";
        receiver = OtlpReceiver::create(std::move(options), sink, counters, logger);
        receiver->start();
        REQUIRE(receiver->port() != 0);
    }

    // One request on a new connection, its answer read.
    RawHttpClient::Response exchange(const std::string& request) {
        RawHttpClient client(receiver->port());
        client.send(request);
        auto response = client.read_response();
        REQUIRE(response.has_value());
        return *response;
    }

    std::uint64_t count(Counter c) const { return counters.get(c); }

    RecordingSink sink;
    Counters counters;
    CapturedLog log;
    Logger logger{LogLevel::debug, std::make_unique<CaptureSink>(log)};
    std::unique_ptr<OtlpReceiver> receiver;
};

// An OTLP exporter's POST.
std::string post(std::string_view content_type, std::string_view body,
                 std::string_view extra_headers = "", std::string_view path = "/v1/traces") {
    return fmt::format("POST {} HTTP/1.1\r\nHost: 127.0.0.1:4318\r\nUser-Agent: "
                       "OTel-OTLP-Exporter-JavaScript/0.52.1\r\nContent-Type: {}\r\n"
                       "Content-Length: {}\r\n{}\r\n{}",
                       path, content_type, body.size(), extra_headers, body);
}

constexpr std::string_view protobuf = "application/x-protobuf";
constexpr std::string_view json = "application/json";

// 3 spans in 2 resource_spans.
std::string protobuf_request(std::size_t pad_of_first = 0) {
    return export_request({resource_spans({scope_spans(1, 2, pad_of_first)}),
                           resource_spans({scope_spans(3, 1)})})
        .str();
}

std::string json_span(int n, std::size_t pad = 0) {
    std::string span = fmt::format(
        R"({{"traceId":"5b8efff798038103d269b633813fc6{:02x}","spanId":"eee19b7ec3c1b1{:02x}",)"
        R"("name":"span-{}","kind":2,"startTimeUnixNano":"1544712660000000000",)"
        R"("endTimeUnixNano":"1544712661000000000","attributes":[{{"key":"i","value":)"
        R"({{"intValue":"7"}}}})",
        n, n, n);
    if (pad > 0) {
        span += fmt::format(R"(,{{"key":"pad","value":{{"stringValue":"{}"}}}})",
                            std::string(pad, 'p'));
    }
    return span + "]}";
}

// 2 spans in one resource_spans, the first `pad` bytes larger.
std::string json_request(std::size_t pad_of_first = 0) {
    return R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":)"
           R"({"stringValue":"orders"}}]},"scopeSpans":[{"scope":{"name":"lib"},"spans":[)" +
           json_span(1, pad_of_first) + "," + json_span(2) + "]}]}]}";
}

// The top-level fields of a protobuf message: varints by number, length-delimited by number.
struct Fields {
    std::map<int, std::uint64_t> varints;
    std::map<int, std::string> bytes;
};

Fields decode(std::string_view message) {
    using Wfl = google::protobuf::internal::WireFormatLite;
    google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(message.data()),
                                              static_cast<int>(message.size()));
    Fields fields;
    while (const std::uint32_t tag = in.ReadTag()) {
        const int number = static_cast<int>(Wfl::GetTagFieldNumber(tag));
        if (Wfl::GetTagWireType(tag) == Wfl::WIRETYPE_VARINT) {
            std::uint64_t value = 0;
            REQUIRE(in.ReadVarint64(&value));
            fields.varints[number] = value;
        } else {
            REQUIRE(Wfl::GetTagWireType(tag) == Wfl::WIRETYPE_LENGTH_DELIMITED);
            std::uint32_t length = 0;
            REQUIRE(in.ReadVarint32(&length));
            std::string value;
            REQUIRE(in.ReadString(&value, static_cast<int>(length)));
            fields.bytes[number] = value;
        }
    }
    REQUIRE(in.ConsumedEntireMessage());
    return fields;
}

// A google.rpc.Status answer in either encoding: {code, message}.
std::pair<std::int64_t, std::string> status_of(const RawHttpClient::Response& r) {
    if (r.header("Content-Type") == std::string(json)) {
        simdjson::dom::parser parser;
        const simdjson::dom::element root = parser.parse(simdjson::padded_string(r.body));
        return {std::int64_t(root["code"]), std::string(std::string_view(root["message"]))};
    }
    REQUIRE(r.header("Content-Type") == std::string(protobuf));
    const Fields fields = decode(r.body);
    return {static_cast<std::int64_t>(fields.varints.count(1) ? fields.varints.at(1) : 0),
            fields.bytes.count(2) ? fields.bytes.at(2) : ""};
}

// An ExportTraceServiceResponse's partial_success in either encoding: {rejected, message}.
std::pair<std::uint64_t, std::string> partial_success_of(const RawHttpClient::Response& r) {
    if (r.header("Content-Type") == std::string(json)) {
        simdjson::dom::parser parser;
        const simdjson::dom::element root = parser.parse(simdjson::padded_string(r.body));
        const simdjson::dom::element partial = root["partialSuccess"];
        // The int64 is a string in OTLP/JSON.
        const std::string rejected{std::string_view(partial["rejectedSpans"])};
        return {std::stoull(rejected), std::string(std::string_view(partial["errorMessage"]))};
    }
    const Fields response = decode(r.body);
    REQUIRE(response.bytes.count(1) == 1);
    const Fields partial = decode(response.bytes.at(1));
    return {partial.varints.count(1) ? partial.varints.at(1) : 0,
            partial.bytes.count(2) ? partial.bytes.at(2) : ""};
}

}  // namespace

TEST_CASE("a protobuf export is accepted: 200, an empty response, the body and span count to "
          "the sink") {
    Fixture f;
    const std::string body = protobuf_request();
    const auto r = f.exchange(post(protobuf, body));
    CHECK(r.status == 200);
    CHECK(r.header("Content-Type") == std::string(protobuf));
    CHECK(r.header("Connection") == std::string("close"));
    CHECK(r.body.empty());  // full success: an empty ExportTraceServiceResponse
    const auto offers = f.sink.offers();
    REQUIRE(offers.size() == 1);
    CHECK(offers[0].encoding == OtlpEncoding::protobuf);
    CHECK(offers[0].body == body);
    CHECK(offers[0].spans == 3);
    CHECK(offers[0].accepted == 3);
    CHECK(f.count(Counter::otlp_requests) == 1);
    CHECK(f.count(Counter::otlp_spans_received) == 3);
    CHECK(f.count(Counter::otlp_spans_rejected_too_large) == 0);
    CHECK(f.count(Counter::otlp_requests_invalid) == 0);
    CHECK(f.receiver->bound_address() == fmt::format("127.0.0.1:{}", f.receiver->port()));
}

TEST_CASE("clients sending at once are each answered and offered exactly once") {
    Fixture f;  // two receiver threads share the connections
    constexpr int clients = 8;
    constexpr int requests_each = 25;
    std::atomic<int> answered_ok{0};
    std::vector<std::thread> senders;
    for (int c = 0; c < clients; ++c) {
        senders.emplace_back([&, c] {
            for (int i = 0; i < requests_each; ++i) {
                const bool as_json = (c + i) % 2 == 0;
                RawHttpClient client(f.receiver->port());
                client.send(as_json ? post(json, json_request())
                                    : post(protobuf, protobuf_request()));
                const auto response = client.read_response();
                if (response && response->status == 200) {
                    answered_ok.fetch_add(1);
                }
            }
        });
    }
    for (std::thread& t : senders) {
        t.join();
    }
    CHECK(answered_ok.load() == clients * requests_each);
    const std::vector<Offer> offers = f.sink.offers();
    CHECK(offers.size() == clients * requests_each);
    std::size_t spans = 0;
    for (const Offer& offer : offers) {
        spans += offer.accepted;
    }
    // Half JSON (2 spans each), half protobuf (3 spans each).
    CHECK(spans == clients * requests_each / 2 * (2 + 3));
    CHECK(f.count(Counter::otlp_spans_received) == spans);
}

TEST_CASE("a JSON export with a charset parameter is accepted and answered in JSON") {
    Fixture f;
    const std::string body = json_request();
    const auto r = f.exchange(post("Application/JSON; charset=utf-8", body));
    CHECK(r.status == 200);
    CHECK(r.header("Content-Type") == std::string(json));
    CHECK(r.body == "{}");
    const auto offers = f.sink.offers();
    REQUIRE(offers.size() == 1);
    CHECK(offers[0].encoding == OtlpEncoding::json);
    CHECK(offers[0].body == body);
    CHECK(offers[0].spans == 2);
    CHECK(f.count(Counter::otlp_spans_received) == 2);
}

TEST_CASE("a gzip body is inflated before it is read and offered") {
    Fixture f;
    const std::string body = protobuf_request();
    const auto r = f.exchange(post(protobuf, gzip(body), "Content-Encoding: gzip\r\n"));
    CHECK(r.status == 200);
    const auto offers = f.sink.offers();
    REQUIRE(offers.size() == 1);
    CHECK(offers[0].body == body);
    CHECK(offers[0].accepted == 3);

    const std::string json_body = json_request();
    CHECK(f.exchange(post(json, gzip(json_body), "Content-Encoding: GZIP\r\n")).status == 200);
    REQUIRE(f.sink.offers().size() == 2);
    CHECK(f.sink.offers()[1].body == json_body);
}

TEST_CASE("a span over 200 KB is refused: partial_success in protobuf and JSON, the rest "
          "offered") {
    Fixture f;
    SUBCASE("protobuf") {
        const auto r = f.exchange(post(protobuf, protobuf_request(250'000)));
        CHECK(r.status == 200);
        CHECK(r.header("Content-Type") == std::string(protobuf));
        const auto [rejected, message] = partial_success_of(r);
        CHECK(rejected == 1);
        CHECK(message.find("200000") != std::string::npos);
        const auto offers = f.sink.offers();
        REQUIRE(offers.size() == 1);
        CHECK(offers[0].spans == 3);
        CHECK(offers[0].accepted == 2);
        CHECK(f.count(Counter::otlp_spans_received) == 3);
    }
    SUBCASE("JSON") {
        const auto r = f.exchange(post(json, json_request(250'000)));
        CHECK(r.status == 200);
        CHECK(r.header("Content-Type") == std::string(json));
        const auto [rejected, message] = partial_success_of(r);
        CHECK(rejected == 1);
        CHECK_FALSE(message.empty());
        const auto offers = f.sink.offers();
        REQUIRE(offers.size() == 1);
        CHECK(offers[0].accepted == 1);
        CHECK(f.count(Counter::otlp_spans_received) == 2);
    }
    CHECK(f.count(Counter::otlp_spans_rejected_too_large) == 1);
}

TEST_CASE("a request with no accepted span is answered 200 and not offered") {
    Fixture f;
    SUBCASE("every span refused") {
        const std::string body =
            export_request({resource_spans({scope_spans(1, 1, 250'000)})}).str();
        const auto r = f.exchange(post(protobuf, body));
        CHECK(r.status == 200);
        CHECK(partial_success_of(r).first == 1);
        CHECK(f.count(Counter::otlp_spans_rejected_too_large) == 1);
    }
    SUBCASE("empty") {
        const auto r = f.exchange(post(json, R"({"resourceSpans":[]})"));
        CHECK(r.status == 200);
        CHECK(r.body == "{}");
    }
    CHECK(f.sink.offers().empty());
    CHECK(f.count(Counter::otlp_requests) == 1);
}

TEST_CASE("a malformed body is answered 400 with a google.rpc.Status in its encoding") {
    Fixture f;
    SUBCASE("protobuf") {
        // Field 1, length-delimited, 100 bytes announced, 3 present.
        const auto r = f.exchange(post(protobuf, std::string("\x0a\x64xyz", 5)));
        CHECK(r.status == 400);
        const auto [code, message] = status_of(r);
        CHECK(code == rpc_invalid_argument);
        CHECK(message == to_string(OtlpErrc::truncated));
    }
    SUBCASE("JSON") {
        const auto r = f.exchange(post(json, R"({"resourceSpans":[)"));
        CHECK(r.status == 400);
        CHECK(r.header("Content-Type") == std::string(json));
        const auto [code, message] = status_of(r);
        CHECK(code == rpc_invalid_argument);
        CHECK(message == to_string(OtlpErrc::json_invalid));
    }
    SUBCASE("gzip that is not") {
        const auto r = f.exchange(post(protobuf, "not gzip", "Content-Encoding: gzip\r\n"));
        CHECK(r.status == 400);
        CHECK(status_of(r).second == to_string(OtlpErrc::gzip_invalid));
    }
    CHECK(f.count(Counter::otlp_requests_invalid) == 1);
    CHECK(f.sink.offers().empty());
    CHECK(f.log.contains("otlp: request refused"));
}

TEST_CASE("bodies over the limits are answered 413: Content-Length, and a gzip bomb") {
    OtlpReceiverOptions options;
    options.max_body_bytes = 64 * 1024;
    options.max_inflated_bytes = 1024 * 1024;
    Fixture f(options);
    SUBCASE("declared length over the limit: answered before the body is sent") {
        RawHttpClient client(f.receiver->port());
        client.send(fmt::format("POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {}\r\n"
                                "Content-Length: {}\r\n\r\n",
                                protobuf, 64 * 1024 + 1));
        const auto r = client.read_response();
        REQUIRE(r.has_value());
        CHECK(r->status == 413);
        CHECK(status_of(*r).first == rpc_resource_exhausted);
    }
    SUBCASE("gzip bomb") {
        const std::string bomb = gzip_zeros(32 * 1024 * 1024);
        REQUIRE(bomb.size() < 64 * 1024);
        const auto r = f.exchange(post(json, bomb, "Content-Encoding: gzip\r\n"));
        CHECK(r.status == 413);
        CHECK(r.header("Content-Type") == std::string(json));
        CHECK(status_of(r).first == rpc_resource_exhausted);
    }
    CHECK(f.count(Counter::otlp_requests_too_large) == 1);
    CHECK(f.sink.offers().empty());
}

TEST_CASE("a chunked body over the limit closes the connection") {
    OtlpReceiverOptions options;
    options.max_body_bytes = 1024;
    Fixture f(options);
    RawHttpClient client(f.receiver->port());
    client.send(fmt::format("POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {}\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n800\r\n{}\r\n",
                            protobuf, std::string(0x800, 'a')));
    CHECK(client.closed_by_peer(std::chrono::seconds(10)));
    CHECK(f.count(Counter::otlp_requests_too_large) == 1);
    CHECK(f.sink.offers().empty());
}

TEST_CASE("another content type or encoding is answered 415") {
    Fixture f;
    SUBCASE("text/plain") {
        const auto r = f.exchange(post("text/plain", protobuf_request()));
        CHECK(r.status == 415);
        CHECK(r.header("Content-Type") == std::string(protobuf));  // the default encoding
        CHECK(status_of(r).second.find("Content-Type") != std::string::npos);
    }
    SUBCASE("brotli") {
        const auto r = f.exchange(post(json, json_request(), "Content-Encoding: br\r\n"));
        CHECK(r.status == 415);
        CHECK(r.header("Content-Type") == std::string(json));
        CHECK(status_of(r).second.find("Content-Encoding") != std::string::npos);
    }
    CHECK(f.count(Counter::otlp_requests) == 1);
    CHECK(f.sink.offers().empty());
}

TEST_CASE("another path is 404, another method 405 with Allow: POST") {
    Fixture f;
    const auto not_found = f.exchange(post(protobuf, protobuf_request(), "", "/v1/metrics"));
    CHECK(not_found.status == 404);
    CHECK(status_of(not_found).first == rpc_not_found);
    CHECK(f.count(Counter::otlp_requests) == 0);

    const auto get = f.exchange("GET /v1/traces HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(get.status == 405);
    CHECK(get.header("Allow") == std::string("POST"));
    CHECK(f.count(Counter::otlp_requests) == 1);
    CHECK(f.sink.offers().empty());
}

TEST_CASE("a full sink is answered 503 with Retry-After and a Status, its spans counted") {
    OtlpReceiverOptions options;
    options.retry_after = std::chrono::seconds(7);
    Fixture f(options);
    f.sink.full = true;
    const auto r = f.exchange(post(json, json_request()));
    CHECK(r.status == 503);
    CHECK(r.header("Retry-After") == std::string("7"));
    CHECK(status_of(r).first == rpc_unavailable);
    CHECK(f.count(Counter::otlp_spans_dropped_buffer_full) == 2);
    CHECK(f.count(Counter::otlp_spans_received) == 2);

    f.sink.full = false;  // the client's retry goes through
    CHECK(f.exchange(post(json, json_request())).status == 200);
    CHECK(f.count(Counter::otlp_spans_dropped_buffer_full) == 2);
}

TEST_CASE("bad requests are logged at most once per interval") {
    Fixture f;
    for (int i = 0; i < 3; ++i) {
        CHECK(f.exchange(post(protobuf, "\xff")).status == 400);
    }
    CHECK(f.log.count("otlp: request refused") == 1);
    CHECK(f.count(Counter::otlp_requests_invalid) == 3);
}

TEST_CASE("create refuses a bad address; start refuses a taken port") {
    RecordingSink sink;
    Counters counters;
    CapturedLog log;
    Logger logger{LogLevel::error, std::make_unique<CaptureSink>(log)};
    OtlpReceiverOptions bad;
    bad.address = "127.0.0.1";  // no port
    CHECK_THROWS_AS((void)OtlpReceiver::create(bad, sink, counters, logger), StartupError);

    Fixture f;
    OtlpReceiverOptions taken;
    taken.address = f.receiver->bound_address();
    auto second = OtlpReceiver::create(taken, sink, counters, logger);
    CHECK_THROWS_AS(second->start(), StartupError);
    second->stop();
    f.receiver->stop();
    CHECK(f.receiver->port() == 0);
    f.receiver->stop();  // idempotent
}
