// Tests of X-Ray's answers: PutTraceSegments' UnprocessedTraceSegments and error responses.
#include <xrayd/xray/xray_response.h>

#include <doctest/doctest.h>
#include <simdjson.h>

#include <vector>

TEST_CASE("UnprocessedTraceSegments parsing tolerates missing and null fields") {
    simdjson::dom::parser parser;
    std::vector<xrayd::UnprocessedSegment> out;
    CHECK(xrayd::parse_unprocessed_segments(parser, R"({"UnprocessedTraceSegments":[]})", out));
    CHECK(out.empty());
    CHECK(xrayd::parse_unprocessed_segments(parser, "{}", out));
    CHECK(out.empty());
    CHECK(xrayd::parse_unprocessed_segments(parser, R"({"UnprocessedTraceSegments":null})", out));
    CHECK(out.empty());
    REQUIRE(xrayd::parse_unprocessed_segments(
        parser,
        R"({"UnprocessedTraceSegments":[{"Id":"a1","ErrorCode":"E","Message":"m"},)"
        R"({"Id":null,"ErrorCode":null},{},7]})",
        out));
    REQUIRE(out.size() == 3);
    CHECK(out[0].has_id);
    CHECK(out[0].id == "a1");
    CHECK(out[0].error_code == "E");
    CHECK(out[0].message == "m");
    CHECK_FALSE(out[1].has_id);
    CHECK(out[1].error_code.empty());
    CHECK_FALSE(out[2].has_id);

    const auto not_json = xrayd::parse_unprocessed_segments(parser, "<html>", out);
    REQUIRE_FALSE(not_json);
    CHECK(not_json.error() == xrayd::ResponseErrc::not_json);
    const auto not_object = xrayd::parse_unprocessed_segments(parser, "[1]", out);
    REQUIRE_FALSE(not_object);
    CHECK(not_object.error() == xrayd::ResponseErrc::not_object);
    const auto bad =
        xrayd::parse_unprocessed_segments(parser, R"({"UnprocessedTraceSegments":3})", out);
    REQUIRE_FALSE(bad);
    CHECK(bad.error() == xrayd::ResponseErrc::bad_unprocessed);
}

TEST_CASE("error responses yield the bare error type and the message") {
    simdjson::dom::parser parser;
    auto e = xrayd::parse_error_response(
        parser, R"({"__type":"com.amazon.coral.service#InvalidRequestException","message":"no"})",
        "");
    CHECK(e.type == "InvalidRequestException");
    CHECK(e.message == "no");
    e = xrayd::parse_error_response(parser, R"({"code":"ThrottlingException","Message":"slow"})",
                                    "");
    CHECK(e.type == "ThrottlingException");
    CHECK(e.message == "slow");
    e = xrayd::parse_error_response(parser, R"({"message":"Rate exceeded"})",
                                    "ThrottlingException:http://internal.amazon.com/coral/");
    CHECK(e.type == "ThrottlingException");
    CHECK(e.message == "Rate exceeded");
    e = xrayd::parse_error_response(parser, "Service Unavailable", "");
    CHECK(e.type.empty());
    CHECK(e.message.empty());
}
