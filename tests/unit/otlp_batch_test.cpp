// OtlpBatch: merged requests read back to the sum of their spans, within the limits.
#include <xrayd/otlp/otlp_batch.h>

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/support/otlp_builder.h"

using namespace xrayd::otlp;
using namespace xrayd::test;

namespace {

struct Read {
    std::string body;
    OtlpExportRequest request;
};

Read read(std::string body, OtlpEncoding encoding, const OtlpLimits& limits = OtlpLimits{}) {
    auto result = read_export_request(body, encoding, limits);
    REQUIRE_MESSAGE(result.ok(), to_string(result.error()));
    return Read{std::move(body), std::move(result).value()};
}

Read protobuf_request(int first, int spans, std::size_t pad_of_first = 0) {
    return read(export_request({resource_spans({scope_spans(first, spans, pad_of_first)})}).str(),
                OtlpEncoding::protobuf);
}

std::string json_body(int spans) {
    std::string body = R"({"resourceSpans":[{"resource":{},"scopeSpans":[{"spans":[)";
    for (int i = 0; i < spans; ++i) {
        body += (i == 0 ? "" : ",") + std::string(R"({"name":"s)") + std::to_string(i) + "\"}";
    }
    return body + "]}]}]}";
}

}  // namespace

TEST_CASE("protobuf: a merged request reads back to the sum of the spans, parts in order") {
    OtlpBatch batch(OtlpEncoding::protobuf, OtlpLimits{});
    CHECK(batch.empty());
    const std::vector<Read> requests = {protobuf_request(0, 3), protobuf_request(10, 1),
                                        protobuf_request(20, 7)};
    std::string expected;
    for (const Read& r : requests) {
        REQUIRE(batch.try_add(r.body, r.request));
        expected += r.body;
    }
    CHECK(batch.spans() == 11);
    CHECK(batch.requests() == 3);
    CHECK(batch.resource_spans() == 3);
    CHECK(batch.size() == expected.size());
    const std::string merged = batch.take();
    CHECK(merged == expected);
    CHECK(batch.empty());
    CHECK(batch.spans() == 0);
    const Read back = read(merged, OtlpEncoding::protobuf);
    CHECK(back.request.spans == 11);
    CHECK(back.request.resource_spans == 3);
}

TEST_CASE("protobuf: refused spans are not merged; the rebuilt part is") {
    const Read with_big = protobuf_request(0, 3, 250'000);
    CHECK(with_big.request.refused_spans == 1);
    OtlpBatch batch(OtlpEncoding::protobuf, OtlpLimits{});
    REQUIRE(batch.try_add(with_big.body, with_big.request));
    const Read small = protobuf_request(10, 2);
    REQUIRE(batch.try_add(small.body, small.request));
    CHECK(batch.spans() == 4);
    CHECK(batch.size() < 100'000);
    const Read back = read(batch.take(), OtlpEncoding::protobuf);
    CHECK(back.request.spans == 4);
    CHECK(back.request.refused_spans == 0);
}

TEST_CASE("protobuf: the span limit seals a batch exactly at max_spans") {
    OtlpLimits limits;
    limits.max_spans = 10;
    OtlpBatch batch(OtlpEncoding::protobuf, limits);
    const Read four = protobuf_request(0, 4);
    REQUIRE(batch.try_add(four.body, four.request));
    REQUIRE(batch.try_add(four.body, four.request));
    CHECK_FALSE(batch.try_add(four.body, four.request));  // 12 > 10
    CHECK(batch.spans() == 8);
    const Read two = protobuf_request(0, 2);
    REQUIRE(batch.try_add(two.body, two.request));  // exactly 10
    CHECK(batch.spans() == 10);
    CHECK_FALSE(batch.oversize());
}

TEST_CASE("protobuf: the byte limit seals a batch; the batch is unchanged by a refusal") {
    const Read one = protobuf_request(0, 2);
    OtlpLimits limits;
    limits.max_request_bytes = one.body.size() * 2;
    OtlpBatch batch(OtlpEncoding::protobuf, limits);
    REQUIRE(batch.try_add(one.body, one.request));
    REQUIRE(batch.try_add(one.body, one.request));
    const std::size_t size = batch.size();
    CHECK_FALSE(batch.try_add(one.body, one.request));
    CHECK(batch.size() == size);
    CHECK(batch.spans() == 4);
    CHECK(batch.requests() == 2);
}

TEST_CASE("a request over the limits on its own goes out alone, never dropped") {
    OtlpLimits limits;
    limits.max_spans = 3;
    OtlpBatch batch(OtlpEncoding::protobuf, limits);
    const Read big = protobuf_request(0, 5);
    REQUIRE(batch.try_add(big.body, big.request));
    CHECK(batch.oversize());
    const Read small = protobuf_request(10, 1);
    CHECK_FALSE(batch.try_add(small.body, small.request));
    CHECK(batch.take() == big.body);
}

TEST_CASE("a request without accepted spans adds nothing; another encoding is never added") {
    OtlpBatch batch(OtlpEncoding::protobuf, OtlpLimits{});
    const Read empty = read("", OtlpEncoding::protobuf);
    CHECK(batch.try_add(empty.body, empty.request));
    CHECK(batch.empty());
    CHECK(batch.requests() == 0);
    const Read json = read(json_body(1), OtlpEncoding::json);
    CHECK_FALSE(batch.try_add(json.body, json.request));
    CHECK(batch.empty());
}

TEST_CASE("json: merged elements make one valid request with the sum of the spans") {
    OtlpBatch batch(OtlpEncoding::json, OtlpLimits{});
    const Read a = read(json_body(2), OtlpEncoding::json);
    const Read b = read(json_body(3), OtlpEncoding::json);
    REQUIRE(batch.try_add(a.body, a.request));
    REQUIRE(batch.try_add(b.body, b.request));
    CHECK(batch.spans() == 5);
    const std::size_t size = batch.size();
    const std::string merged = batch.take();
    CHECK(merged.size() == size);
    const Read back = read(merged, OtlpEncoding::json);
    CHECK(back.request.spans == 5);
    CHECK(back.request.resource_spans == 2);
    CHECK(merged.starts_with(R"({"resourceSpans":[{"resource":{},)"));
}

TEST_CASE("json: the byte limit counts brackets and commas exactly") {
    const Read one = read(json_body(1), OtlpEncoding::json);
    OtlpBatch probe(OtlpEncoding::json, OtlpLimits{});
    REQUIRE(probe.try_add(one.body, one.request));
    REQUIRE(probe.try_add(one.body, one.request));
    const std::size_t two_size = probe.take().size();

    OtlpLimits limits;
    limits.max_request_bytes = two_size;
    OtlpBatch batch(OtlpEncoding::json, limits);
    REQUIRE(batch.try_add(one.body, one.request));
    REQUIRE(batch.try_add(one.body, one.request));
    CHECK(batch.size() == two_size);
    CHECK_FALSE(batch.try_add(one.body, one.request));
    limits.max_request_bytes = two_size - 1;
    OtlpBatch tight(OtlpEncoding::json, limits);
    REQUIRE(tight.try_add(one.body, one.request));
    CHECK_FALSE(tight.try_add(one.body, one.request));
}

TEST_CASE("an empty batch gives an empty request") {
    OtlpBatch protobuf(OtlpEncoding::protobuf, OtlpLimits{});
    CHECK(protobuf.take().empty());
    OtlpBatch json(OtlpEncoding::json, OtlpLimits{});
    CHECK(json.take() == R"({"resourceSpans":[]})");
}
