// The OTLP/HTTP answers: ExportTraceServiceResponse and google.rpc.Status, both encodings.
#include <xrayd/otlp/otlp_response.h>

#include <doctest/doctest.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <string>

#include "tests/support/otlp_builder.h"

using namespace xrayd::otlp;
using namespace xrayd::test;

TEST_CASE("a full success is an empty response") {
    CHECK(export_response(OtlpEncoding::protobuf, 0, "").empty());
    CHECK(export_response(OtlpEncoding::json, 0, "") == "{}");
}

TEST_CASE("partial_success in protobuf is field 1 holding rejected_spans(1) and error_message(2)") {
    const std::string body = export_response(OtlpEncoding::protobuf, 300, "2 spans over 200 KB");
    const Pb partial = Pb().varint(1, 300).bytes(2, "2 spans over 200 KB");
    CHECK(body == Pb().msg(1, partial).str());
    CHECK(export_response(OtlpEncoding::protobuf, 1, "") == Pb().msg(1, Pb().varint(1, 1)).str());
    CHECK(export_response(OtlpEncoding::protobuf, 0, "warning") ==
          Pb().msg(1, Pb().bytes(2, "warning")).str());
}

TEST_CASE("partial_success in JSON: rejectedSpans is an int64, written as a string") {
    CHECK(export_response(OtlpEncoding::json, 2, "span \"x\" too large") ==
          R"({"partialSuccess":{"rejectedSpans":"2","errorMessage":"span \"x\" too large"}})");
    CHECK(export_response(OtlpEncoding::json, 9'000'000'000, "") ==
          R"({"partialSuccess":{"rejectedSpans":"9000000000"}})");
    CHECK(export_response(OtlpEncoding::json, 0, "w") ==
          R"({"partialSuccess":{"errorMessage":"w"}})");
}

TEST_CASE("google.rpc.Status for a 400, in both encodings") {
    const std::string_view message = to_string(OtlpErrc::truncated);
    CHECK(status_body(OtlpEncoding::protobuf, rpc_invalid_argument, message) ==
          Pb().varint(1, 3).bytes(2, message).str());
    CHECK(status_body(OtlpEncoding::json, rpc_invalid_argument, message) ==
          R"({"code":3,"message":"a protobuf field is truncated"})");
    // A negative int32 is sign-extended to ten bytes on the wire, as protobuf writes it.
    CHECK(status_body(OtlpEncoding::protobuf, -1, "") ==
          Pb().varint(1, static_cast<std::uint64_t>(-1)).str());
}

TEST_CASE("read_export_response reads what X-Ray answers, in both encodings") {
    for (const OtlpEncoding encoding : {OtlpEncoding::protobuf, OtlpEncoding::json}) {
        CAPTURE(static_cast<int>(encoding));
        const auto full = read_export_response(encoding, export_response(encoding, 0, ""));
        REQUIRE(full);
        CHECK(full->rejected_spans == 0);
        const auto partial =
            read_export_response(encoding, export_response(encoding, 7, "spans too old"));
        REQUIRE(partial);
        CHECK(partial->rejected_spans == 7);
        CHECK(partial->error_message == "spans too old");
        CHECK_FALSE(read_export_response(encoding, "\x0a\x05\x08").has_value());  // cut short
    }
    // The JSON mapping writes int64 as a string; a number is taken too.
    const auto number =
        read_export_response(OtlpEncoding::json, R"({"partialSuccess":{"rejectedSpans":3}})");
    REQUIRE(number);
    CHECK(number->rejected_spans == 3);
    CHECK_FALSE(read_export_response(OtlpEncoding::json, "[]").has_value());
    // Unknown fields (a newer schema) are skipped.
    const std::string newer = Pb().msg(1, Pb().varint(1, 2).varint(9, 1)).varint(5, 1).str();
    const auto skipped = read_export_response(OtlpEncoding::protobuf, newer);
    REQUIRE(skipped);
    CHECK(skipped->rejected_spans == 2);
}
