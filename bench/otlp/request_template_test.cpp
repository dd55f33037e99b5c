// RequestTemplate: its bodies are valid export requests for xrayd's own reader, in both
// encodings, with the span count and size asked for, and refresh() changes ids and times only.
#include "bench/otlp/request_template.h"

#include <doctest/doctest.h>

#include <xrayd/otlp/otlp_request.h>

#include "tests/support/otlp_builder.h"

using xrayd::bench::BodyEncoding;
using xrayd::bench::RequestTemplate;

namespace {

xrayd::otlp::OtlpExportRequest read_ok(std::string_view body, BodyEncoding encoding) {
    auto result = xrayd::otlp::read_export_request(body,
                                                   encoding == BodyEncoding::json
                                                       ? xrayd::otlp::OtlpEncoding::json
                                                       : xrayd::otlp::OtlpEncoding::protobuf,
                                                   xrayd::otlp::OtlpLimits{});
    REQUIRE_MESSAGE(result.ok(), xrayd::otlp::to_string(result.error()));
    return std::move(result).value();
}

}  // namespace

TEST_CASE("a refreshed body is read by xrayd with every span, in both encodings") {
    for (const BodyEncoding encoding : {BodyEncoding::protobuf, BodyEncoding::json}) {
        CAPTURE(static_cast<int>(encoding));
        const auto t = RequestTemplate::build(encoding, 512, 0x0123456789abcdefULL);
        CHECK(t.spans() == 512);
        std::string body = t.text();
        t.refresh(body, 7, 1'752'000'000'000'000'000ULL);
        CHECK(body.size() == t.text().size());
        const auto request = read_ok(body, encoding);
        CHECK(request.resource_spans == 1);
        CHECK(request.spans == 512);
        CHECK(request.refused_spans == 0);
        // The gzip form (what --gzip sends) inflates back to the same body.
        auto inflated = xrayd::otlp::gunzip(xrayd::test::gzip(body), 16 * 1024 * 1024);
        REQUIRE(inflated.ok());
        CHECK(inflated.value() == body);
    }
}

TEST_CASE("protobuf spans are 300-500 bytes as the SDKs' are, a partial trace is still valid") {
    const auto t = RequestTemplate::build(BodyEncoding::protobuf, 512, 1);
    const double per_span = static_cast<double>(t.text().size()) / 512.0;
    CHECK(per_span >= 300.0);
    CHECK(per_span <= 500.0);
    const auto odd = RequestTemplate::build(BodyEncoding::protobuf, 13, 1);
    std::string body = odd.text();
    odd.refresh(body, 0, 1'752'000'000'000'000'000ULL);
    CHECK(read_ok(body, BodyEncoding::protobuf).spans == 13);
}

TEST_CASE("refresh writes new ids per request and leaves everything else alone") {
    for (const BodyEncoding encoding : {BodyEncoding::protobuf, BodyEncoding::json}) {
        CAPTURE(static_cast<int>(encoding));
        const auto t = RequestTemplate::build(encoding, 16, 42);
        std::string first = t.text();
        std::string second = t.text();
        t.refresh(first, 1, 1'752'000'000'000'000'000ULL);
        t.refresh(second, 2, 1'752'000'000'000'000'000ULL);
        CHECK(first != second);  // the ids differ; the times are the same
        std::size_t differing = 0;
        for (std::size_t i = 0; i < first.size(); ++i) {
            differing += first[i] != second[i] ? 1 : 0;
        }
        // Only id bytes differ (per span: a trace id, a span id, a parent id at most).
        CHECK(differing > 0);
        CHECK(differing <= 16 * (16 + 8 + 8) * (encoding == BodyEncoding::json ? 2 : 1));
        std::string again = t.text();
        t.refresh(again, 1, 1'752'000'000'000'000'000ULL);
        CHECK(again == first);  // deterministic
    }
}
