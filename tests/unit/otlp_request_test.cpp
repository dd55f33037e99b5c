// read_export_request and gunzip: exact counts, parts, refused spans, bad input, gzip limits.
#include <xrayd/otlp/otlp_request.h>

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <simdjson.h>

#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "src/otlp/gzip_writer.h"
#include "tests/support/otlp_builder.h"

using namespace xrayd::otlp;
using namespace xrayd::test;

namespace {

const OtlpLimits limits{};

OtlpExportRequest read_ok(std::string_view body, OtlpEncoding encoding = OtlpEncoding::protobuf,
                          const OtlpLimits& with = limits) {
    auto result = read_export_request(body, encoding, with);
    REQUIRE_MESSAGE(result.ok(), to_string(result.error()));
    return std::move(result).value();
}

OtlpErrc read_error(std::string_view body, OtlpEncoding encoding = OtlpEncoding::protobuf) {
    auto result = read_export_request(body, encoding, limits);
    REQUIRE_FALSE(result.ok());
    return result.error();
}

// The request bytes of tests/data/otlp-udp/adot-t1s.udp (header line, "T1S", base64).
std::string adot_fixture_request() {
    std::ifstream file(std::string(XRAYD_TEST_DATA_DIR) + "/otlp-udp/adot-t1s.udp",
                       std::ios::binary);
    REQUIRE(file);
    std::stringstream text;
    text << file.rdbuf();
    std::string datagram = text.str();
    const std::string base64 = datagram.substr(datagram.find('\n') + 1 + 3);
    std::string decoded(base64.size() / 4 * 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                  reinterpret_cast<const unsigned char*>(base64.data()),
                                  static_cast<int>(base64.size()));
    REQUIRE(n > 0);
    std::size_t padding = 0;
    for (auto it = base64.rbegin(); it != base64.rend() && *it == '='; ++it) {
        ++padding;
    }
    decoded.resize(static_cast<std::size_t>(n) - padding);
    return decoded;
}

}  // namespace

TEST_CASE("protobuf: spans and resource_spans are counted exactly, parts are the wire fields") {
    const Pb rs1 = resource_spans({scope_spans(0, 3), scope_spans(10, 2)});
    const Pb rs2 = resource_spans({scope_spans(20, 1)});
    const Pb rs3 = resource_spans({});  // no scope: carries nothing
    const std::string body = export_request({rs1, rs2, rs3}).str();
    const auto request = read_ok(body);
    CHECK(request.encoding == OtlpEncoding::protobuf);
    CHECK(request.resource_spans == 3);
    CHECK(request.spans == 6);
    CHECK(request.refused_spans == 0);
    CHECK(request.accepted_spans() == 6);
    REQUIRE(request.parts.size() == 2);  // the empty resource_spans delivers nothing
    CHECK(request.rebuilt.empty());
    CHECK_FALSE(request.parts[0].rebuilt);
    CHECK(request.parts[0].spans == 5);
    CHECK(request.parts[1].spans == 1);
    // Each part is the whole field: its bytes alone are a request with its resource_spans.
    CHECK(request.bytes_of(body, request.parts[0]) == export_request({rs1}).str());
    CHECK(request.bytes_of(body, request.parts[1]) == export_request({rs2}).str());
    CHECK(request.parts[0].offset == 0);
    CHECK(request.parts[1].offset == request.parts[0].length);
}

TEST_CASE("protobuf: an empty body is an empty, valid request") {
    const auto request = read_ok("");
    CHECK(request.spans == 0);
    CHECK(request.resource_spans == 0);
    CHECK(request.parts.empty());
}

TEST_CASE("protobuf: unknown fields are skipped at every level, of every wire type") {
    Pb unknown;
    unknown.varint(90, 1).fixed64(91, 2).fixed32(92, 3).bytes(93, "newer");
    // A group (wire type 3 ... 4) of field 94 with a varint inside.
    unknown.raw(std::string("\xf3\x05\x08\x01\xf4\x05", 6));
    Pb span = full_span(1);
    span.raw(unknown.str());
    Pb scope;
    scope.msg(2, span).raw(unknown.str());
    Pb rs;
    rs.msg(2, scope).raw(unknown.str());
    Pb request;
    request.msg(1, rs).raw(unknown.str());
    const auto read = read_ok(request.str());
    CHECK(read.spans == 1);
    CHECK(read.resource_spans == 1);
}

TEST_CASE("protobuf: a known field with another wire type is refused") {
    // ExportTraceServiceRequest.resource_spans as a varint.
    CHECK(read_error(Pb().varint(1, 5).str()) == OtlpErrc::wrong_wire_type);
    // Span.start_time_unix_nano (fixed64) as a varint, deep inside.
    const Pb span = Pb().bytes(1, std::string(16, 'a')).varint(7, 1);
    const Pb bad = export_request({resource_spans({Pb().msg(2, span)})});
    CHECK(read_error(bad.str()) == OtlpErrc::wrong_wire_type);
    // AnyValue.double_value as fixed32, inside an attribute of an event.
    const Pb event = Pb().msg(3, key_value("k", Pb().fixed32(4, 1)));
    const Pb bad_event = export_request({resource_spans({Pb().msg(2, Pb().msg(11, event))})});
    CHECK(read_error(bad_event.str()) == OtlpErrc::wrong_wire_type);
}

TEST_CASE("protobuf: every cut of a request is refused as truncated") {
    const std::string body = export_request({resource_spans({scope_spans(0, 2)})}).str();
    for (std::size_t cut = 1; cut < body.size(); ++cut) {
        CAPTURE(cut);
        CHECK(read_error(body.substr(0, cut)) == OtlpErrc::truncated);
    }
}

TEST_CASE("protobuf: bad tags are malformed") {
    CHECK(read_error(std::string("\x00\x01", 2)) == OtlpErrc::malformed);  // field number 0
    CHECK(read_error("\x0f\x01") == OtlpErrc::malformed);                  // wire type 7
    CHECK(read_error("\x0e\x01") == OtlpErrc::malformed);                  // wire type 6
    CHECK(read_error("\x0c") == OtlpErrc::malformed);                      // a stray end-group
    // A varint tag of 11 bytes.
    CHECK(read_error(std::string(11, '\xff')) != OtlpErrc::wrong_wire_type);
    // A length prefix past the end.
    CHECK(read_error("\x0a\x05\x12\x00") == OtlpErrc::truncated);
}

TEST_CASE("protobuf: AnyValue nested past max_nesting is refused, not recursed into") {
    Pb value = any_int(1);
    for (int i = 0; i < max_nesting + 10; ++i) {
        value = any_array({value});
    }
    const Pb span = Pb().msg(9, key_value("deep", value));
    const Pb body = export_request({resource_spans({Pb().msg(2, span)})});
    CHECK(read_error(body.str()) == OtlpErrc::too_deep);

    Pb shallow = any_int(1);
    for (int i = 0; i < 10; ++i) {
        shallow = any_array({shallow});
    }
    const Pb ok_span = Pb().msg(9, key_value("deep", shallow));
    CHECK(read_ok(export_request({resource_spans({Pb().msg(2, ok_span)})}).str()).spans == 1);
}

TEST_CASE("protobuf: a span over max_span_bytes is refused and its resource_spans re-encoded") {
    // Scope A: a large span between two small ones; scope B untouched; a second resource_spans
    // untouched.
    Pb scope_a;
    scope_a.msg(1, Pb().bytes(1, "lib"));
    scope_a.msg(2, full_span(1)).msg(2, full_span(2, 250'000)).msg(2, full_span(3));
    const Pb scope_b = scope_spans(10, 2);
    const Pb rs1 = resource_spans({scope_a, scope_b});
    const Pb rs2 = resource_spans({scope_spans(20, 1)});
    const std::string body = export_request({rs1, rs2}).str();

    const auto request = read_ok(body);
    CHECK(request.spans == 6);
    CHECK(request.refused_spans == 1);
    CHECK(request.accepted_spans() == 5);
    REQUIRE(request.parts.size() == 2);
    CHECK(request.parts[0].rebuilt);
    CHECK(request.parts[0].spans == 4);
    CHECK_FALSE(request.parts[1].rebuilt);
    CHECK(request.parts[1].spans == 1);

    // The re-encoded resource_spans is exactly the one built without the large span.
    Pb scope_a_kept;
    scope_a_kept.msg(1, Pb().bytes(1, "lib"));
    scope_a_kept.msg(2, full_span(1)).msg(2, full_span(3));
    const Pb rs1_kept = resource_spans({scope_a_kept, scope_b});
    CHECK(request.bytes_of(body, request.parts[0]) == export_request({rs1_kept}).str());
    CHECK(request.bytes_of(body, request.parts[1]) == export_request({rs2}).str());

    // Read back, the kept bytes hold the accepted spans and nothing over the limit.
    const std::string kept = std::string(request.bytes_of(body, request.parts[0])) +
                             std::string(request.bytes_of(body, request.parts[1]));
    const auto again = read_ok(kept);
    CHECK(again.spans == 5);
    CHECK(again.refused_spans == 0);
}

TEST_CASE("protobuf: the span limit is on the span's message bytes, inclusive") {
    const std::string span = full_span(1).str();
    OtlpLimits tight;
    tight.max_span_bytes = span.size();
    const std::string body = export_request({resource_spans({Pb().msg(2, full_span(1))})}).str();
    CHECK(read_ok(body, OtlpEncoding::protobuf, tight).refused_spans == 0);
    tight.max_span_bytes = span.size() - 1;
    CHECK(read_ok(body, OtlpEncoding::protobuf, tight).refused_spans == 1);
}

TEST_CASE("protobuf: a resource_spans whose every span is refused is left out") {
    const Pb rs1 = resource_spans({scope_spans(0, 1, 300'000)});
    const Pb rs2 = resource_spans({scope_spans(5, 2)});
    const std::string body = export_request({rs1, rs2}).str();
    const auto request = read_ok(body);
    CHECK(request.spans == 3);
    CHECK(request.refused_spans == 1);
    REQUIRE(request.parts.size() == 1);
    CHECK_FALSE(request.parts[0].rebuilt);
    CHECK(request.bytes_of(body, request.parts[0]) == export_request({rs2}).str());
    CHECK(request.rebuilt.empty());
}

TEST_CASE("protobuf: the request of ADOT's OTLP-over-UDP sample reads as two spans") {
    // tests/data/otlp-udp/adot-t1s.udp: a Flask server span and its database client span.
    const std::string body = adot_fixture_request();
    const auto request = read_ok(body);
    CHECK(request.resource_spans == 1);
    CHECK(request.spans == 2);
    REQUIRE(request.parts.size() == 1);
    CHECK(request.bytes_of(body, request.parts[0]) == body);
}

// ---- JSON ----

namespace {

constexpr std::string_view json_request = R"({
  "resourceSpans": [
    {
      "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "orders"}}]},
      "scopeSpans": [
        {"scope": {"name": "lib"}, "spans": [
          {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
           "name": "a", "kind": 2, "startTimeUnixNano": "1544712660000000000",
           "endTimeUnixNano": "1544712661000000000",
           "attributes": [{"key": "i", "value": {"intValue": "3"}},
                          {"key": "d", "value": {"doubleValue": 2.5}},
                          {"key": "b", "value": {"boolValue": true}},
                          {"key": "a", "value": {"arrayValue": {"values": [{"stringValue": "x"}]}}}],
           "events": [{"timeUnixNano": "1544712660500000000", "name": "e"}],
           "links": [{"traceId": "5b8efff798038103d269b633813fc60d", "spanId": "eee19b7ec3c1b175"}],
           "status": {"code": 2, "message": "boom"}},
          {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b176", "name": "b"}
        ]},
        {"scope": {"name": "other"}, "spans": []}
      ]
    },
    {"resource": {}, "scopeSpans": [{"spans": [{"name": "c"}]}]},
    {"resource": {}}
  ]
})";

}  // namespace

TEST_CASE("json: spans counted exactly; each part is its element as written in the body") {
    const auto request = read_ok(json_request, OtlpEncoding::json);
    CHECK(request.encoding == OtlpEncoding::json);
    CHECK(request.resource_spans == 3);
    CHECK(request.spans == 3);
    CHECK(request.refused_spans == 0);
    CHECK(request.rebuilt.empty());
    REQUIRE(request.parts.size() == 2);
    CHECK(request.parts[0].spans == 2);
    CHECK(request.parts[1].spans == 1);

    simdjson::dom::parser parser;
    const simdjson::padded_string padded(json_request);
    const simdjson::dom::element root = parser.parse(padded);
    const simdjson::dom::array list = root["resourceSpans"];
    simdjson::dom::parser part_parser;  // another one: a parse invalidates `list`
    auto it = list.begin();
    for (const OtlpPart& part : request.parts) {
        CHECK_FALSE(part.rebuilt);
        const std::string_view text = request.bytes_of(json_request, part);
        // The whole element from its '{' to its '}', nothing around it.
        CHECK(text.front() == '{');
        CHECK(text.back() == '}');
        CHECK(simdjson::minify(part_parser.parse(simdjson::padded_string(text)).value()) ==
              simdjson::minify(*it));
        ++it;
    }
}

TEST_CASE("json: a span long only by its whitespace is measured minified and kept") {
    const std::string padding(250'000, ' ');
    const std::string body = R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a",)" +
                             padding + R"("kind":1},{"name":"b"}]}]}]})";
    const auto request = read_ok(body, OtlpEncoding::json);
    CHECK(request.spans == 2);
    CHECK(request.refused_spans == 0);
    REQUIRE(request.parts.size() == 1);
    CHECK(request.parts[0].spans == 2);
    CHECK(request.bytes_of(body, request.parts[0]) ==
          R"({"scopeSpans":[{"spans":[{"name":"a","kind":1},{"name":"b"}]}]})");
}

TEST_CASE("json: a body past what the parsers keep is read, and so are the ones after it") {
    // 3 MB of spans: the per-thread parsers grow for it and shrink back after it.
    std::string spans;
    for (int i = 0; i < 20'000; ++i) {
        spans += fmt::format(R"({}{{"name":"span-{}","attributes":[{{"key":"k","value":{{)"
                             R"("stringValue":"{}"}}}}]}})",
                             i == 0 ? "" : ",", i, std::string(100, 'v'));
    }
    const std::string large = R"({"resourceSpans":[{"scopeSpans":[{"spans":[)" + spans + "]}]}]}";
    REQUIRE(large.size() > 2'000'000);
    for (int round = 0; round < 2; ++round) {
        CAPTURE(round);
        const auto big = read_ok(large, OtlpEncoding::json);
        CHECK(big.spans == 20'000);
        REQUIRE(big.parts.size() == 1);
        CHECK(big.bytes_of(large, big.parts[0]).size() == large.size() - 20);
        const auto small = read_ok(json_request, OtlpEncoding::json);
        CHECK(small.spans == 3);
    }
}

TEST_CASE("json: list keys written with escapes are the same keys") {
    const std::string body =
        R"({"resource\u0053pans":[{"scope\u0053pans":[{"\u0073pans":[{"name":"x"}]}]}]})";
    const auto request = read_ok(body, OtlpEncoding::json);
    CHECK(request.spans == 1);
    REQUIRE(request.parts.size() == 1);
    CHECK(request.bytes_of(body, request.parts[0]) ==
          R"({"scope\u0053pans":[{"\u0073pans":[{"name":"x"}]}]})");
}

TEST_CASE("json: absent or null lists are empty") {
    CHECK(read_ok("{}", OtlpEncoding::json).spans == 0);
    CHECK(read_ok(R"({"resourceSpans":null})", OtlpEncoding::json).spans == 0);
    const auto request =
        read_ok(R"({"resourceSpans":[{"scopeSpans":[{"spans":null}]}]})", OtlpEncoding::json);
    CHECK(request.resource_spans == 1);
    CHECK(request.spans == 0);
    CHECK(request.parts.empty());
}

TEST_CASE("json: bad documents are refused with what is wrong") {
    CHECK(read_error("", OtlpEncoding::json) == OtlpErrc::json_invalid);
    CHECK(read_error(R"({"resourceSpans":[)", OtlpEncoding::json) == OtlpErrc::json_invalid);
    CHECK(read_error("{\"a\":\"\xff\"}", OtlpEncoding::json) == OtlpErrc::json_invalid);
    CHECK(read_error("[]", OtlpEncoding::json) == OtlpErrc::json_not_object);
    CHECK(read_error(R"({"resourceSpans":{}})", OtlpEncoding::json) == OtlpErrc::json_wrong_type);
    CHECK(read_error(R"({"resourceSpans":[1]})", OtlpEncoding::json) == OtlpErrc::json_wrong_type);
    CHECK(read_error(R"({"resourceSpans":[{"scopeSpans":"x"}]})", OtlpEncoding::json) ==
          OtlpErrc::json_wrong_type);
    CHECK(read_error(R"({"resourceSpans":[{"scopeSpans":[{"spans":[[]]}]}]})",
                     OtlpEncoding::json) == OtlpErrc::json_wrong_type);
    CHECK(read_error(R"({"resourceSpans":[],"resourceSpans":[]})", OtlpEncoding::json) ==
          OtlpErrc::json_duplicate_key);
    CHECK(read_error(R"({"resourceSpans":[{"scopeSpans":[{"spans":[],"spans":[]}]}]})",
                     OtlpEncoding::json) == OtlpErrc::json_duplicate_key);
}

TEST_CASE("json: a span over max_span_bytes (minified) is refused, the rest kept") {
    const std::string big(250'000, 'p');
    const std::string body = R"({"resourceSpans":[{"resource":{},"scopeSpans":[{"spans":[)"
                             R"({"name":"a"},{"name":")" +
                             big +
                             R"("},{"name":"c"}]}]},)"
                             R"({"scopeSpans":[{"spans":[{"name":")" +
                             big + R"("}]}]}]})";
    const auto request = read_ok(body, OtlpEncoding::json);
    CHECK(request.spans == 4);
    CHECK(request.refused_spans == 2);
    REQUIRE(request.parts.size() == 1);
    CHECK(request.parts[0].spans == 2);
    CHECK(request.bytes_of(body, request.parts[0]) ==
          R"({"resource":{},"scopeSpans":[{"spans":[{"name":"a"},{"name":"c"}]}]})");
}

TEST_CASE("json: keys that need escaping survive as written and rebuilt") {
    const std::string big(250'000, 'p');
    for (const bool refuse_one : {false, true}) {
        CAPTURE(refuse_one);
        const std::string extra = refuse_one ? R"(,{"name":")" + big + R"("})" : "";
        const std::string body = R"({"resourceSpans":[{"we\"ird\u0001":1,"scopeSpans":[{"spans":[)"
                                 R"({"n\\":"\u00e9"})" +
                                 extra + "]}]}]}";
        const auto request = read_ok(body, OtlpEncoding::json);
        CHECK(request.refused_spans == (refuse_one ? 1 : 0));
        REQUIRE(request.parts.size() == 1);
        CHECK(request.parts[0].rebuilt == refuse_one);
        const std::string wrapped =
            R"({"resourceSpans":[)" + std::string(request.bytes_of(body, request.parts[0])) + "]}";
        CHECK(read_ok(wrapped, OtlpEncoding::json).spans == 1);
    }
}

// ---- gzip ----

TEST_CASE("gunzip: round trip, and several members one after another") {
    const std::string body = export_request({resource_spans({scope_spans(0, 50)})}).str();
    auto plain = gunzip(gzip(body), body.size());
    REQUIRE(plain.ok());
    CHECK(plain.value() == body);
    auto two = gunzip(gzip("abc") + gzip("def"), 100);
    REQUIRE(two.ok());
    CHECK(two.value() == "abcdef");
    auto empty = gunzip(gzip(""), 0);
    REQUIRE(empty.ok());
    CHECK(empty.value().empty());
}

TEST_CASE("GzipWriter: one writer compresses body after body, large and small, each whole") {
    GzipWriter writer(1);
    std::string large;
    for (int i = 0; large.size() < 3'000'000; ++i) {
        large += "span-" + std::to_string(i * 7919) + ";";  // past the buffer the writer keeps
    }
    const std::string small = export_request({resource_spans({scope_spans(0, 50)})}).str();
    for (const std::string* body :
         std::initializer_list<const std::string*>{&small, &small, &large, &small, &large}) {
        auto compressed = writer.compress(*body);
        REQUIRE(compressed.ok());
        CHECK(compressed.value().size() < body->size());
        auto back = gunzip(compressed.value(), body->size());
        REQUIRE(back.ok());
        CHECK(back.value() == *body);
    }
}

TEST_CASE("gunzip: the limit is exact") {
    const std::string data(100'000, 'x');
    CHECK(gunzip(gzip(data), data.size()).ok());
    auto over = gunzip(gzip(data), data.size() - 1);
    REQUIRE_FALSE(over.ok());
    CHECK(over.error() == OtlpErrc::gzip_too_large);
}

TEST_CASE("gunzip: a gzip bomb stops at the limit") {
    const std::string bomb = gzip_zeros(std::size_t{64} << 20);  // 64 MiB of zeros
    CHECK(bomb.size() < 200'000);
    auto result = gunzip(bomb, 5'000'000);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error() == OtlpErrc::gzip_too_large);
}

TEST_CASE("gunzip: not gzip, cut short, damaged, or followed by garbage") {
    CHECK(gunzip("", 100).error() == OtlpErrc::gzip_invalid);
    CHECK(gunzip("not gzip at all", 100).error() == OtlpErrc::gzip_invalid);
    const std::string good = gzip(std::string(1000, 'a') + "tail");
    CHECK(gunzip(good.substr(0, good.size() - 3), 10'000).error() == OtlpErrc::gzip_invalid);
    std::string bad_crc = good;
    bad_crc[bad_crc.size() - 6] ^= 0x01;  // the CRC-32 in the trailer
    CHECK(gunzip(bad_crc, 10'000).error() == OtlpErrc::gzip_invalid);
    CHECK(gunzip(good + "junk", 10'000).error() == OtlpErrc::gzip_invalid);
}

TEST_CASE("gzip writes one member that gunzip (and zlib) read back") {
    std::string body;
    for (int i = 0; i < 2000; ++i) {
        body += "span-" + std::to_string(i) + ";";
    }
    for (const int level : {1, 6, 9}) {
        auto compressed = gzip(body, level);
        REQUIRE(compressed);
        CHECK(compressed.value().size() < body.size() / 3);
        CHECK(static_cast<unsigned char>(compressed.value()[0]) == 0x1f);  // gzip magic
        auto back = gunzip(compressed.value(), body.size());
        REQUIRE(back);
        CHECK(back.value() == body);
    }
    auto empty = gzip("", 1);
    REQUIRE(empty);
    CHECK(gunzip(empty.value(), 0).value().empty());
}
