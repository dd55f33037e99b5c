// Tests of rebuild_batch: the transient unprocessed segments of a batch, rebuilt into a smaller
// one for a re-send.
#include <xrayd/upload/resend.h>

#include <doctest/doctest.h>
#include <simdjson.h>

#include <string>

#include <xrayd/batch/batch.h>

#include "upload_fixture.h"

using xrayd::test::document;
using xrayd::test::Harness;
using xrayd::test::segment_id;
using xrayd::test::trace_id;

TEST_CASE("rebuild_batch keeps the chosen documents byte-identical and releases the original "
          "first") {
    Harness h;
    xrayd::Batch original = h.make_batch(5);
    const std::size_t before = h.budget.used();
    simdjson::dom::parser parser;
    const std::size_t picks[] = {3, 1};
    auto rebuilt = xrayd::rebuild_batch(parser, original, picks, h.budget);
    REQUIRE(rebuilt.ok());
    CHECK(original.empty());
    auto& out = rebuilt.value();
    CHECK(out.lost == 0);
    REQUIRE(out.batch.sealed());
    REQUIRE(out.batch.segment_count() == 2);
    CHECK(out.batch.segments()[0].id_view() == segment_id(3));
    CHECK(out.batch.segments()[1].trace_id_view() == trace_id(1));
    std::string expected = R"({"TraceSegmentDocuments":[")";
    xrayd::append_json_escaped(expected, document(3));
    expected += R"(",")";
    xrayd::append_json_escaped(expected, document(1));
    expected += R"("]})";
    CHECK(out.batch.body() == expected);
    CHECK(h.budget.used() <= before);

    const std::size_t bad[] = {7};
    xrayd::Batch other = h.make_batch(2);
    const std::string body(other.body());
    auto failed = xrayd::rebuild_batch(parser, other, bad, h.budget);
    REQUIRE_FALSE(failed.ok());
    CHECK(failed.error() == xrayd::RebuildErrc::bad_index);
    CHECK(other.body() == body);  // unchanged on error
}
