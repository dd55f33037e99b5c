// Tests for Segment (owned, budget-charged segment documents) and MemoryBudget.
#include <xrayd/queue/segment.h>

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include <xrayd/common/time.h>
#include <xrayd/queue/memory_budget.h>

namespace xrayd {
namespace {

constexpr std::string_view sample_body =
    R"({"trace_id":"1-5759e988-bd862e3fe1be46a994272793","id":"70de5b6f19ff9a0a","name":"x"})";
constexpr std::string_view sample_id = "70de5b6f19ff9a0a";
constexpr std::string_view sample_trace_id = "1-5759e988-bd862e3fe1be46a994272793";

TEST_CASE("MemoryBudget reserves up to the limit exactly and refuses beyond it") {
    MemoryBudget budget(100);
    CHECK(budget.limit() == 100);
    CHECK(budget.try_reserve(60));
    CHECK(budget.try_reserve(40));
    CHECK(budget.used() == 100);
    CHECK_FALSE(budget.try_reserve(1));
    CHECK(budget.used() == 100);  // a refusal reserves nothing
    budget.release(40);
    CHECK(budget.used() == 60);
    CHECK_FALSE(budget.try_reserve(41));
    CHECK(budget.try_reserve(40));
}

TEST_CASE("MemoryBudget refuses a request larger than the limit without overflowing") {
    MemoryBudget budget(100);
    CHECK_FALSE(budget.try_reserve(101));
    CHECK_FALSE(budget.try_reserve(static_cast<std::size_t>(-1)));
    CHECK(budget.used() == 0);
}

TEST_CASE("MemoryBudget force_reserve goes past the limit and blocks try_reserve until released") {
    MemoryBudget budget(100);
    budget.force_reserve(150);
    CHECK(budget.used() == 150);
    CHECK_FALSE(budget.try_reserve(1));
    budget.release(150);
    CHECK(budget.used() == 0);
    CHECK(budget.try_reserve(100));
}

TEST_CASE("Segment::make copies the body, ids and receive time and charges the budget") {
    MemoryBudget budget(1 << 20);
    const TimePoint received = TimePoint{} + std::chrono::seconds(42);
    std::string body(sample_body);
    SegmentPtr s = Segment::make(budget, body, sample_id, sample_trace_id, received);
    REQUIRE(s != nullptr);
    body.assign(body.size(), 'z');  // the segment holds its own copy
    CHECK(s->body() == sample_body);
    CHECK(s->id() == sample_id);
    CHECK(s->trace_id() == sample_trace_id);
    CHECK(s->received_at() == received);
    CHECK(s->charged_bytes() == sizeof(Segment) + sample_body.size());
    CHECK(budget.used() == s->charged_bytes());
}

TEST_CASE("Destroying a segment returns exactly its bytes to the budget") {
    MemoryBudget budget(1 << 20);
    SegmentPtr a = Segment::make(budget, sample_body, sample_id, sample_trace_id, TimePoint{});
    SegmentPtr b = Segment::make(budget, "{}", "", "", TimePoint{});
    REQUIRE(a != nullptr);
    REQUIRE(b != nullptr);
    const std::size_t a_bytes = a->charged_bytes();
    CHECK(budget.used() == a_bytes + b->charged_bytes());
    b.reset();
    CHECK(budget.used() == a_bytes);
    SegmentPtr moved = std::move(a);  // moving the owner does not touch the charge
    CHECK(budget.used() == a_bytes);
    moved.reset();
    CHECK(budget.used() == 0);
}

TEST_CASE("Segment::make returns null and reserves nothing when the budget has no room") {
    MemoryBudget budget(sizeof(Segment) + sample_body.size() - 1);
    SegmentPtr s = Segment::make(budget, sample_body, sample_id, sample_trace_id, TimePoint{});
    CHECK(s == nullptr);
    CHECK(budget.used() == 0);
}

TEST_CASE("Segment::make fits a segment that needs exactly the remaining budget") {
    MemoryBudget budget(sizeof(Segment) + sample_body.size());
    SegmentPtr s = Segment::make(budget, sample_body, sample_id, sample_trace_id, TimePoint{});
    REQUIRE(s != nullptr);
    CHECK(budget.used() == budget.limit());
    SegmentPtr t = Segment::make(budget, "{}", "", "", TimePoint{});
    CHECK(t == nullptr);
}

TEST_CASE("Segment::make cuts over-long id and trace id to their maximum lengths") {
    MemoryBudget budget(1 << 20);
    const std::string long_id(40, 'a');
    const std::string long_trace(80, 'b');
    SegmentPtr s = Segment::make(budget, "{}", long_id, long_trace, TimePoint{});
    REQUIRE(s != nullptr);
    CHECK(s->id() == std::string(segment_id_max, 'a'));
    CHECK(s->trace_id() == std::string(segment_trace_id_max, 'b'));
}

TEST_CASE("Segment::make accepts an empty body and default (null) views for the ids") {
    MemoryBudget budget(1 << 20);
    SegmentPtr s = Segment::make(budget, std::string_view{}, std::string_view{}, std::string_view{},
                                 TimePoint{});
    REQUIRE(s != nullptr);
    CHECK(s->body().empty());
    CHECK(s->id().empty());
    CHECK(s->trace_id().empty());
    CHECK(s->charged_bytes() == sizeof(Segment));
}

TEST_CASE("Segment bodies keep arbitrary bytes, embedded NULs and UTF-8 included") {
    MemoryBudget budget(1 << 20);
    constexpr char raw[] = "{\"a\":\"\xC3\xA9\xE2\x82\xAC\"}\0tail";
    const std::string body(raw, sizeof raw - 1);
    SegmentPtr s = Segment::make(budget, body, sample_id, sample_trace_id, TimePoint{});
    REQUIRE(s != nullptr);
    CHECK(s->body() == body);
    CHECK(s->body().size() == 18);
}

TEST_CASE("A 64 KiB segment body round-trips and is charged in full") {
    MemoryBudget budget(1 << 20);
    std::string body(65507, 'x');
    body.front() = '{';
    body.back() = '}';
    SegmentPtr s = Segment::make(budget, body, sample_id, sample_trace_id, TimePoint{});
    REQUIRE(s != nullptr);
    CHECK(s->body() == body);
    CHECK(budget.used() == sizeof(Segment) + body.size());
}

}  // namespace
}  // namespace xrayd
