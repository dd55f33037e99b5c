// Tests for Batcher: count, size and age limits, order, shutdown flush and budget accounting.
#include <xrayd/batch/batcher.h>

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <xrayd/batch/batch.h>
#include <xrayd/common/time.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/queue/segment.h>
#include <xrayd/stats/counters.h>

// The replacements below pair malloc with free inside operator new/delete, which g++ cannot
// see is consistent across the whole program.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// Allocation-failure injection: while set, any allocation of at least this many bytes fails.
// One test thread only; 0 means "never fail".
namespace {
std::size_t fail_allocations_from = 0;
}  // namespace

void* operator new(std::size_t size) {
    if (fail_allocations_from != 0 && size >= fail_allocations_from) {
        throw std::bad_alloc();
    }
    if (void* p = std::malloc(size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc();
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    if (fail_allocations_from != 0 && size >= fail_allocations_from) {
        return nullptr;
    }
    return std::malloc(size == 0 ? 1 : size);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace xrayd {
namespace {

using std::chrono::milliseconds;

// Makes big allocations fail for the lifetime of the guard.
struct FailBigAllocations {
    explicit FailBigAllocations(std::size_t from) { fail_allocations_from = from; }
    ~FailBigAllocations() { fail_allocations_from = 0; }
    FailBigAllocations(const FailBigAllocations&) = delete;
    FailBigAllocations& operator=(const FailBigAllocations&) = delete;
};

const TimePoint t0 = TimePoint{} + std::chrono::hours(1);

// Collects emitted batches, as the uploader would.
struct Collector {
    std::vector<Batch> batches;
    Batcher::Emit emit() {
        return [this](Batch&& b) { batches.push_back(std::move(b)); };
    }
};

SegmentPtr make_numbered(MemoryBudget& budget, int n, TimePoint received, std::size_t pad = 0) {
    const std::string id = std::to_string(n);
    std::string body = R"({"n":)" + id + R"(,"pad":")" + std::string(pad, 'p') + "\"}";
    return Segment::make(budget, body, id, "1-trace", received);
}

// The ids of a batch's segments, in order.
std::vector<int> ids_of(const Batch& batch) {
    std::vector<int> ids;
    for (const SegmentRef& ref : batch.segments()) {
        ids.push_back(std::stoi(std::string(ref.id_view())));
    }
    return ids;
}

TEST_CASE("Batcher seals a batch as soon as it holds max_segments, in arrival order") {
    MemoryBudget budget(64u << 20);
    Counters counters;
    Collector out;
    {
        Batcher batcher(BatchLimits{}, budget, counters);
        const auto emit = out.emit();
        int n = 0;
        for (; n < 49; ++n) {
            batcher.add(make_numbered(budget, n, t0), t0, emit);
        }
        CHECK(out.batches.empty());
        CHECK(batcher.open_segments() == 49);
        batcher.add(make_numbered(budget, n++, t0), t0, emit);
        REQUIRE(out.batches.size() == 1);  // the 50th seals at once
        CHECK(batcher.open_segments() == 0);
        CHECK_FALSE(batcher.deadline().has_value());

        for (; n < 125; ++n) {
            batcher.add(make_numbered(budget, n, t0), t0, emit);
        }
        batcher.flush(emit);
        REQUIRE(out.batches.size() == 3);
        std::vector<int> all;
        for (const Batch& b : out.batches) {
            CHECK(b.sealed());
            CHECK(b.segment_count() <= 50);
            const auto ids = ids_of(b);
            all.insert(all.end(), ids.begin(), ids.end());
        }
        CHECK(out.batches[0].segment_count() == 50);
        CHECK(out.batches[1].segment_count() == 50);
        CHECK(out.batches[2].segment_count() == 25);
        std::vector<int> expected(125);
        for (int i = 0; i < 125; ++i) {
            expected[static_cast<std::size_t>(i)] = i;
        }
        CHECK(all == expected);
    }
    out.batches.clear();
    CHECK(budget.used() == 0);
}

TEST_CASE("Batcher wake threshold: 1 with no open batch, then what completes the open batch") {
    MemoryBudget budget(64u << 20);
    Counters counters;
    Collector out;
    {
        Batcher batcher(BatchLimits{}, budget, counters);
        const auto emit = out.emit();
        CHECK(batcher.wake_threshold() == 1);  // the first segment starts the linger clock
        batcher.add(make_numbered(budget, 0, t0), t0, emit);
        CHECK(batcher.wake_threshold() == 49);
        for (int n = 1; n < 45; ++n) {
            batcher.add(make_numbered(budget, n, t0), t0, emit);
        }
        CHECK(batcher.wake_threshold() == 5);
        batcher.flush(emit);
        CHECK(batcher.wake_threshold() == 1);

        // By bytes: with room for about two more documents, two are worth a wake-up.
        BatchLimits limits;
        limits.max_body_bytes = 2000;
        Batcher by_bytes(limits, budget, counters);
        by_bytes.add(make_numbered(budget, 0, t0, 450), t0, emit);
        by_bytes.add(make_numbered(budget, 1, t0, 450), t0, emit);
        CHECK(by_bytes.wake_threshold() >= 1);
        CHECK(by_bytes.wake_threshold() <= 3);
        by_bytes.flush(emit);
    }
    out.batches.clear();
    CHECK(budget.used() == 0);
}

TEST_CASE("Batcher room: a whole batch when none is open, then what completes the open one") {
    MemoryBudget budget(64u << 20);
    Counters counters;
    Collector out;
    {
        Batcher batcher(BatchLimits{}, budget, counters);
        const auto emit = out.emit();
        CHECK(batcher.full_batch() == 50);
        CHECK(batcher.room() == 50);  // unlike wake_threshold(), not 1: receivers gather this
        for (int n = 0; n < 30; ++n) {
            batcher.add(make_numbered(budget, n, t0), t0, emit);
        }
        CHECK(batcher.room() == 20);
        CHECK(batcher.wake_threshold() == batcher.room());
        for (int n = 30; n < 50; ++n) {
            batcher.add(make_numbered(budget, n, t0), t0, emit);
        }
        REQUIRE(out.batches.size() == 1);
        CHECK(batcher.room() == 50);
    }
    out.batches.clear();
    {
        // By bytes: after a batch of ~1 KB documents, a whole batch is what fits 4 KB.
        BatchLimits limits;
        limits.max_body_bytes = 4096;
        Batcher by_bytes(limits, budget, counters);
        const auto emit = out.emit();
        for (int n = 0; n < 3; ++n) {
            by_bytes.add(make_numbered(budget, n, t0, 1000), t0, emit);
        }
        by_bytes.flush(emit);
        REQUIRE(out.batches.size() == 1);
        CHECK(by_bytes.full_batch() >= 3);
        CHECK(by_bytes.full_batch() <= 4);
        CHECK(by_bytes.room() == by_bytes.full_batch());
    }
    out.batches.clear();
    CHECK(budget.used() == 0);
}

TEST_CASE("Batcher keeps every sealed body within max_body_bytes, splitting before overflow") {
    MemoryBudget budget(64u << 20);
    Counters counters;
    Collector out;
    BatchLimits limits;
    limits.max_body_bytes = 4096;
    Batcher batcher(limits, budget, counters);
    const auto emit = out.emit();
    for (int n = 0; n < 200; ++n) {
        // Sizes vary so the limit falls at different points; quotes make escaping count.
        batcher.add(make_numbered(budget, n, t0, static_cast<std::size_t>(50 + (n * 37) % 700)), t0,
                    emit);
    }
    batcher.flush(emit);
    REQUIRE(out.batches.size() > 1);
    int next = 0;
    for (const Batch& b : out.batches) {
        CHECK(b.body().size() <= limits.max_body_bytes);
        for (const int id : ids_of(b)) {
            CHECK(id == next++);
        }
    }
    CHECK(next == 200);
    // Splitting is tight: the next segment really would not have fitted.
    for (std::size_t i = 0; i + 1 < out.batches.size(); ++i) {
        const Batch& b = out.batches[i];
        if (b.segment_count() == limits.max_segments) {
            continue;
        }
        const int next_id = ids_of(out.batches[i + 1]).front();
        SegmentPtr probe =
            make_numbered(budget, next_id, t0, static_cast<std::size_t>(50 + (next_id * 37) % 700));
        CHECK(b.body().size() + Batch::appended_size(probe->body()) > limits.max_body_bytes);
    }
}

TEST_CASE("Batcher sends a segment larger than max_body_bytes alone instead of dropping it") {
    MemoryBudget budget(64u << 20);
    Counters counters;
    Collector out;
    BatchLimits limits;
    limits.max_body_bytes = 1000;
    Batcher batcher(limits, budget, counters);
    const auto emit = out.emit();
    batcher.add(make_numbered(budget, 0, t0), t0, emit);
    batcher.add(make_numbered(budget, 1, t0), t0, emit);
    CHECK(out.batches.empty());
    // Seals the open batch first (0, 1), then goes out on its own: two batches from one add.
    batcher.add(make_numbered(budget, 2, t0, 5000), t0, emit);
    REQUIRE(out.batches.size() == 2);
    CHECK(ids_of(out.batches[0]) == std::vector<int>{0, 1});
    CHECK(ids_of(out.batches[1]) == std::vector<int>{2});
    CHECK(out.batches[1].body().size() > limits.max_body_bytes);
    CHECK(batcher.open_segments() == 0);
    // And an oversized one into an empty batcher: one batch, nothing left open.
    batcher.add(make_numbered(budget, 3, t0, 5000), t0, emit);
    REQUIRE(out.batches.size() == 3);
    CHECK(ids_of(out.batches[2]) == std::vector<int>{3});
    CHECK(counters.get(Counter::dropped_buffer_full) == 0);
}

TEST_CASE("Batcher flushes on linger measured from the oldest segment's receive time") {
    MemoryBudget budget(64u << 20);
    Counters counters;
    Collector out;
    BatchLimits limits;
    limits.linger = milliseconds(100);
    Batcher batcher(limits, budget, counters);
    const auto emit = out.emit();

    CHECK_FALSE(batcher.deadline().has_value());
    batcher.flush_due(t0 + std::chrono::hours(5), emit);  // nothing open: nothing emitted
    CHECK(out.batches.empty());

    // Received 30 ms before it reaches the batcher: the linger counts from reception.
    const TimePoint received = t0 - milliseconds(30);
    batcher.add(make_numbered(budget, 0, received), t0, emit);
    batcher.add(make_numbered(budget, 1, t0 + milliseconds(50)), t0 + milliseconds(50), emit);
    REQUIRE(batcher.deadline().has_value());
    CHECK(*batcher.deadline() == received + milliseconds(100));

    batcher.flush_due(received + milliseconds(99), emit);
    CHECK(out.batches.empty());
    batcher.flush_due(received + milliseconds(100), emit);
    REQUIRE(out.batches.size() == 1);
    CHECK(ids_of(out.batches[0]) == std::vector<int>{0, 1});
    CHECK(out.batches[0].oldest_received() == received);
    CHECK_FALSE(batcher.deadline().has_value());

    // A new batch starts its own clock.
    const TimePoint later = t0 + milliseconds(500);
    batcher.add(make_numbered(budget, 2, later), later, emit);
    CHECK(*batcher.deadline() == later + milliseconds(100));
    batcher.flush_due(later + milliseconds(60), emit);
    CHECK(out.batches.size() == 1);
    batcher.flush_due(later + milliseconds(160), emit);
    CHECK(out.batches.size() == 2);
}

TEST_CASE("set_linger moves the open batch's deadline at once (SIGHUP reload)") {
    MemoryBudget budget(64u << 20);
    Counters counters;
    Collector out;
    BatchLimits limits;
    limits.linger = std::chrono::seconds(30);
    Batcher batcher(limits, budget, counters);
    const auto emit = out.emit();
    batcher.add(make_numbered(budget, 0, t0), t0, emit);
    CHECK(*batcher.deadline() == t0 + std::chrono::seconds(30));
    batcher.flush_due(t0 + milliseconds(5), emit);
    CHECK(out.batches.empty());
    batcher.set_linger(milliseconds(1));
    CHECK(*batcher.deadline() == t0 + milliseconds(1));
    batcher.flush_due(t0 + milliseconds(5), emit);
    CHECK(out.batches.size() == 1);
}

TEST_CASE("Batcher add does not seal on age, so a backlog of old segments forms full batches") {
    MemoryBudget budget(64u << 20);
    Counters counters;
    Collector out;
    Batcher batcher(BatchLimits{}, budget, counters);
    const auto emit = out.emit();
    const TimePoint now = t0 + std::chrono::seconds(10);  // every segment is 10 s old
    for (int n = 0; n < 60; ++n) {
        batcher.add(make_numbered(budget, n, t0), now, emit);
    }
    REQUIRE(out.batches.size() == 1);
    CHECK(out.batches[0].segment_count() == 50);
    batcher.flush_due(now, emit);
    REQUIRE(out.batches.size() == 2);
    CHECK(out.batches[1].segment_count() == 10);
}

TEST_CASE("Batcher flush on shutdown emits the open batch, and nothing when none is open") {
    MemoryBudget budget(64u << 20);
    Counters counters;
    Collector out;
    Batcher batcher(BatchLimits{}, budget, counters);
    const auto emit = out.emit();
    batcher.flush(emit);
    CHECK(out.batches.empty());
    for (int n = 0; n < 7; ++n) {
        batcher.add(make_numbered(budget, n, t0), t0, emit);
    }
    batcher.flush(emit);
    REQUIRE(out.batches.size() == 1);
    CHECK(out.batches[0].sealed());
    CHECK(ids_of(out.batches[0]) == std::vector<int>{0, 1, 2, 3, 4, 5, 6});
    CHECK(batcher.open_segments() == 0);
    batcher.flush(emit);
    CHECK(out.batches.size() == 1);
}

TEST_CASE("Batcher ignores a null segment") {
    MemoryBudget budget(1 << 20);
    Counters counters;
    Collector out;
    Batcher batcher(BatchLimits{}, budget, counters);
    batcher.add(SegmentPtr{}, t0, out.emit());
    CHECK(batcher.open_segments() == 0);
    CHECK(out.batches.empty());
}

TEST_CASE("Batcher honours a smaller max_segments") {
    MemoryBudget budget(1 << 20);
    Counters counters;
    Collector out;
    BatchLimits limits;
    limits.max_segments = 3;
    Batcher batcher(limits, budget, counters);
    const auto emit = out.emit();
    for (int n = 0; n < 7; ++n) {
        batcher.add(make_numbered(budget, n, t0), t0, emit);
    }
    batcher.flush(emit);
    REQUIRE(out.batches.size() == 3);
    CHECK(ids_of(out.batches[0]) == std::vector<int>{0, 1, 2});
    CHECK(ids_of(out.batches[1]) == std::vector<int>{3, 4, 5});
    CHECK(ids_of(out.batches[2]) == std::vector<int>{6});
}

TEST_CASE("Budget returns to zero once the batcher and every emitted batch are gone") {
    MemoryBudget budget(64u << 20);
    Counters counters;
    Collector out;
    {
        Batcher batcher(BatchLimits{}, budget, counters);
        const auto emit = out.emit();
        for (int n = 0; n < 333; ++n) {
            batcher.add(make_numbered(budget, n, t0, static_cast<std::size_t>(n % 2000)), t0, emit);
        }
        // Segments are released as they are copied in: only batches hold bytes now.
        CHECK(budget.used() > 0);
        batcher.flush(emit);
    }
    CHECK(budget.used() > 0);
    out.batches.clear();
    CHECK(budget.used() == 0);
}

TEST_CASE("Batcher destroyed with an open batch releases its bytes") {
    MemoryBudget budget(1 << 20);
    Counters counters;
    {
        Batcher batcher(BatchLimits{}, budget, counters);
        Collector out;
        batcher.add(make_numbered(budget, 0, t0), t0, out.emit());
        CHECK(budget.used() > 0);
    }
    CHECK(budget.used() == 0);
}

TEST_CASE("Batch append that cannot allocate fails and leaves the batch unchanged") {
    MemoryBudget budget(64u << 20);
    Batch batch(budget);
    SegmentPtr small = make_numbered(budget, 0, t0);
    SegmentPtr big = make_numbered(budget, 1, t0, 600 * 1024);
    REQUIRE(batch.append(*small));
    const std::string before(batch.body());
    const std::size_t used_before = budget.used();
    {
        const FailBigAllocations guard(512 * 1024);
        CHECK_FALSE(batch.append(*big));
    }
    CHECK(batch.body() == before);
    CHECK(batch.segment_count() == 1);
    CHECK(budget.used() == used_before);
    batch.seal();
    CHECK(ids_of(batch) == std::vector<int>{0});
}

TEST_CASE("Batcher drops and counts a segment whose bytes cannot be allocated, keeps the rest") {
    MemoryBudget budget(64u << 20);
    Counters counters;
    Collector out;
    Batcher batcher(BatchLimits{}, budget, counters);
    const auto emit = out.emit();
    batcher.add(make_numbered(budget, 0, t0), t0, emit);
    SegmentPtr big = make_numbered(budget, 1, t0, 600 * 1024);
    {
        const FailBigAllocations guard(512 * 1024);
        batcher.add(std::move(big), t0, emit);
    }
    CHECK(counters.get(Counter::dropped_buffer_full) == 1);
    batcher.add(make_numbered(budget, 2, t0), t0, emit);
    batcher.flush(emit);
    REQUIRE(out.batches.size() == 1);
    CHECK(ids_of(out.batches[0]) == std::vector<int>{0, 2});
    out.batches.clear();
    CHECK(budget.used() == 0);  // the dropped segment's bytes went back too
}

}  // namespace
}  // namespace xrayd
