// Tests of JobQueues: order of fresh and retried jobs, retry scheduling, drop-oldest eviction
// and the held count. Real batches of real segments, no I/O.
#include "src/upload/job_queues.h"

#include <doctest/doctest.h>

#include <chrono>
#include <vector>

#include <xrayd/spool/spool.h>
#include <xrayd/spool/spool_stage.h>
#include <xrayd/stats/counters.h>

#include "temp_dir.h"
#include "upload_fixture.h"

using namespace std::chrono_literals;
using xrayd::Counter;
using xrayd::Duration;
using xrayd::JobQueues;
using xrayd::RetryQueued;
using xrayd::TimePoint;
using xrayd::UploadJob;
using xrayd::test::Harness;
using xrayd::test::segment_id;

namespace {

constexpr Duration base = 10ms;
constexpr Duration cap = 80ms;

// The id of a job's first segment: tells jobs apart.
std::string first_id(const UploadJob& job) {
    return std::string(job.batch.segments()[0].id_view());
}

}  // namespace

TEST_CASE("fresh jobs leave in submission order and stay held until released") {
    Harness h;
    JobQueues q(h.counters, base, cap, 1);
    CHECK_FALSE(q.has_ready());
    REQUIRE(q.push_fresh(h.make_batch(2)));  // segments 0, 1
    REQUIRE(q.push_fresh(h.make_batch(3)));  // segments 2, 3, 4
    CHECK(q.held() == 5);
    REQUIRE(q.has_ready());
    UploadJob a = q.take_ready();
    UploadJob b = q.take_ready();
    CHECK_FALSE(q.has_ready());
    CHECK(first_id(a) == segment_id(0));
    CHECK(first_id(b) == segment_id(2));
    CHECK(q.held() == 5);  // taken, not yet released
    q.release(0, 2);
    CHECK(q.held() == 3);
    q.release(0, 7);  // more than held: clamps at zero
    CHECK(q.held() == 0);
}

TEST_CASE("a due retry leaves before fresh jobs, oldest due first; one not yet due waits") {
    Harness h;
    JobQueues q(h.counters, base, cap, 1);
    const TimePoint t0 = xrayd::Clock::now();
    REQUIRE(q.push_fresh(h.make_batch(1)));  // segment 0: fails at t0 + 5ms
    REQUIRE(q.push_fresh(h.make_batch(1)));  // segment 1: fails at t0
    REQUIRE(q.push_fresh(h.make_batch(1)));  // segment 2: fails at t0 + 1s
    REQUIRE(q.push_fresh(h.make_batch(1)));  // segment 3: stays fresh
    UploadJob j0 = q.take_ready();
    UploadJob j1 = q.take_ready();
    UploadJob j2 = q.take_ready();
    Duration delay{};
    // Retry-After equal to the cap pins each delay to exactly the cap.
    REQUIRE(q.schedule_retry(std::move(j0), cap, 60s, t0 + 5ms, &delay) == RetryQueued::queued);
    CHECK(delay == cap);
    REQUIRE(q.schedule_retry(std::move(j1), cap, 60s, t0, &delay) == RetryQueued::queued);
    REQUIRE(q.schedule_retry(std::move(j2), cap, 60s, t0 + 1s, &delay) == RetryQueued::queued);

    q.promote_due(t0 + cap - 1ms);  // none due yet: the fresh job comes next
    REQUIRE(q.has_ready());
    CHECK(first_id(q.take_ready()) == segment_id(3));
    CHECK_FALSE(q.has_ready());

    q.promote_due(t0 + 5ms + cap);           // the first two are due, the third is not
    REQUIRE(q.push_fresh(h.make_batch(1)));  // segment 4, submitted after they failed
    UploadJob first = q.take_ready();
    UploadJob second = q.take_ready();
    UploadJob third = q.take_ready();
    CHECK(first_id(first) == segment_id(1));   // due at t0 + cap
    CHECK(first_id(second) == segment_id(0));  // due at t0 + 5ms + cap
    CHECK(first_id(third) == segment_id(4));
    CHECK(first.failures == 1);
    CHECK(first.first_failure == t0);
    CHECK_FALSE(q.has_ready());
    CHECK(q.held() == 5);
}

TEST_CASE("schedule_retry backs off within [base, cap], counts failures and keeps the first "
          "failure's time") {
    Harness h;
    JobQueues q(h.counters, base, cap, 42);
    REQUIRE(q.push_fresh(h.make_batch(1)));
    UploadJob job = q.take_ready();
    const TimePoint t0 = xrayd::Clock::now();
    TimePoint now = t0;
    std::vector<Duration> delays;
    for (unsigned i = 0; i < 6; ++i) {
        Duration delay{};
        REQUIRE(q.schedule_retry(std::move(job), 0s, 60s, now, &delay) == RetryQueued::queued);
        delays.push_back(delay);
        CHECK(delay >= base);
        CHECK(delay <= std::min<Duration>(cap, base * (1 << i)));
        now += delay;
        q.promote_due(now);
        REQUIRE(q.has_ready());
        job = q.take_ready();
        CHECK(job.failures == i + 1);
        CHECK(job.first_failure == t0);
        CHECK(job.due == now);
    }
    CHECK(delays[0] == base);  // the first retry: [base, base]
    // Retry-After raises the delay, up to the cap.
    Duration delay{};
    REQUIRE(q.schedule_retry(std::move(job), 1h, 60s, now, &delay) == RetryQueued::queued);
    CHECK(delay == cap);
    CHECK(h.get(Counter::dropped_gave_up) == 0);
    CHECK(q.held() == 1);
}

TEST_CASE("schedule_retry past the retry budget gives up: dropped_gave_up, released") {
    Harness h;
    JobQueues q(h.counters, base, cap, 1);
    REQUIRE(q.push_fresh(h.make_batch(3)));
    REQUIRE(q.push_fresh(h.make_batch(2)));
    const TimePoint t0 = xrayd::Clock::now();
    Duration delay = 123ms;
    // A zero budget gives up at the first failure, and leaves `delay` alone.
    CHECK(q.schedule_retry(q.take_ready(), 0s, 0s, t0, &delay) == RetryQueued::gave_up);
    CHECK(delay == 123ms);
    CHECK(h.get(Counter::dropped_gave_up) == 3);
    CHECK(q.held() == 2);

    UploadJob job = q.take_ready();
    REQUIRE(q.schedule_retry(std::move(job), 0s, 1s, t0, &delay) == RetryQueued::queued);
    q.promote_due(t0 + 1s);
    job = q.take_ready();
    CHECK(q.schedule_retry(std::move(job), 0s, 1s, t0 + 1s, &delay) == RetryQueued::gave_up);
    CHECK(h.get(Counter::dropped_gave_up) == 5);
    CHECK(q.held() == 0);
    CHECK(h.accounted() == 5);
}

TEST_CASE("evict_oldest gives up the queued job with the oldest segment, never a taken one") {
    Harness h;
    JobQueues q(h.counters, base, cap, 1);
    const TimePoint t0 = xrayd::Clock::now();
    REQUIRE(q.push_fresh(h.make_batch(1, t0 - 4s)));  // segment 0: will be in flight
    REQUIRE(q.push_fresh(h.make_batch(2, t0 - 3s)));  // segments 1, 2: will wait for a retry
    REQUIRE(q.push_fresh(h.make_batch(3, t0 - 1s)));  // segments 3-5: fresh
    REQUIRE(q.push_fresh(h.make_batch(1, t0 - 2s)));  // segment 6: fresh, older than 3-5
    UploadJob in_flight = q.take_ready();
    Duration delay{};
    REQUIRE(q.schedule_retry(q.take_ready(), 0s, 60s, t0, &delay) == RetryQueued::queued);
    CHECK(q.held() == 7);

    CHECK(q.evict_oldest() == 2);  // the waiting retry
    CHECK(q.evict_oldest() == 1);  // segment 6
    CHECK(h.get(Counter::dropped_oldest) == 3);
    CHECK(q.held() == 4);
    REQUIRE(q.has_ready());
    CHECK(first_id(q.take_ready()) == segment_id(3));
    CHECK(q.evict_oldest() == 0);  // only taken jobs left
    CHECK(first_id(in_flight) == segment_id(0));
    CHECK(q.held() == 4);
}

TEST_CASE("until_next_due is the wait to the first due retry, bounded by max_wait and never "
          "negative") {
    Harness h;
    JobQueues q(h.counters, base, cap, 1);
    const TimePoint t0 = xrayd::Clock::now();
    CHECK(q.until_next_due(1s, t0) == 1s);  // nothing waiting
    REQUIRE(q.push_fresh(h.make_batch(1)));
    REQUIRE(q.push_fresh(h.make_batch(1)));
    Duration delay{};
    REQUIRE(q.schedule_retry(q.take_ready(), cap, 60s, t0, &delay) == RetryQueued::queued);
    REQUIRE(q.schedule_retry(q.take_ready(), cap, 60s, t0 + 20ms, &delay) == RetryQueued::queued);
    CHECK(q.until_next_due(1s, t0) == cap);
    CHECK(q.until_next_due(30ms, t0) == 30ms);
    CHECK(q.until_next_due(1s, t0 + cap + 5ms) == Duration::zero());  // overdue
}

TEST_CASE("clear forgets every held segment, the taken ones too, and counts nothing") {
    Harness h;
    JobQueues q(h.counters, base, cap, 1);
    const TimePoint t0 = xrayd::Clock::now();
    REQUIRE(q.push_fresh(h.make_batch(1)));
    REQUIRE(q.push_fresh(h.make_batch(2)));
    REQUIRE(q.push_fresh(h.make_batch(4)));
    UploadJob taken = q.take_ready();
    Duration delay{};
    REQUIRE(q.schedule_retry(q.take_ready(), 0s, 60s, t0, &delay) == RetryQueued::queued);
    CHECK(q.clear() == 7);
    CHECK(q.held() == 0);
    CHECK_FALSE(q.has_ready());
    q.promote_due(t0 + 1h);
    CHECK_FALSE(q.has_ready());
    CHECK(h.accounted() == 0);
    CHECK(taken.batch.segment_count() == 1);
}

namespace {

// A real spool in a temporary directory, for the queues to spill into.
struct SpoolFixture {
    explicit SpoolFixture(Harness& h) {
        xrayd::spool::SpoolOptions o;
        o.dir = dir.path().string();
        o.sync = xrayd::spool::SpoolSync::none;
        spool = xrayd::spool::Spool::open(o, h.counters, h.logger);
        stage = std::make_unique<xrayd::spool::SpoolStage>(
            *spool, xrayd::spool::SpoolMode::overflow, h.budget, xrayd::BatchLimits{});
    }
    xrayd::test::TempDir dir{"xrayd-queues-spool"};
    std::unique_ptr<xrayd::spool::Spool> spool;
    std::unique_ptr<xrayd::spool::SpoolStage> stage;
};

// A batch as the spool stage reads it back: origin set.
xrayd::Batch replayed_batch(Harness& h, int n, std::uint32_t origin) {
    xrayd::Batch b = h.make_batch(n);
    b.set_origin(origin);
    return b;
}

}  // namespace

TEST_CASE(
    "replayed batches wait in their own queue: they go first unless fresh ones are preferred") {
    Harness h;
    JobQueues q(h.counters, base, cap, 1);
    REQUIRE(q.push_fresh(h.make_batch(1)));          // segment 0: fresh
    REQUIRE(q.push_fresh(replayed_batch(h, 1, 7)));  // segment 1: replayed
    REQUIRE(q.push_fresh(h.make_batch(1)));          // segment 2: fresh
    REQUIRE(q.push_fresh(replayed_batch(h, 1, 7)));  // segment 3: replayed
    CHECK(q.replay_queued() == 2);
    CHECK(q.held() == 4);
    // Replay's share not yet used: it takes a turn even though fresh batches wait.
    CHECK(first_id(q.take_ready(false)) == segment_id(1));
    // Replay holds its half: fresh ones first while they wait.
    CHECK(first_id(q.take_ready(true)) == segment_id(0));
    CHECK(first_id(q.take_ready(true)) == segment_id(2));
    // No fresh batch waits: replay may use every slot.
    CHECK(first_id(q.take_ready(true)) == segment_id(3));
    CHECK_FALSE(q.has_ready());
}

TEST_CASE(
    "with a spool, a batch past its retry budget and an evicted one are spilled, not dropped") {
    Harness h;
    SpoolFixture s(h);
    JobQueues q(h.counters, base, cap, 1, s.stage.get());
    REQUIRE(q.push_fresh(h.make_batch(3)));  // segments 0-2: will give up
    REQUIRE(q.push_fresh(h.make_batch(2)));  // segments 3-4: will be evicted
    const TimePoint t0 = xrayd::Clock::now();
    Duration delay{};
    CHECK(q.schedule_retry(q.take_ready(), 0s, 0s, t0, &delay) == RetryQueued::gave_up);
    CHECK(q.evict_oldest() == 2);
    CHECK(q.held() == 0);
    CHECK(h.get(Counter::dropped_gave_up) == 0);
    CHECK(h.get(Counter::dropped_oldest) == 0);
    s.spool->flush(t0);
    CHECK(h.get(Counter::spool_written) == 5);
    // What comes back is each document as it was received, with its ids, in spill order.
    std::vector<std::string> ids;
    std::vector<std::string> docs;
    const std::uint32_t origin = s.spool->read(50, [&](const xrayd::spool::SpooledSegment& seg) {
        ids.emplace_back(seg.id);
        docs.emplace_back(seg.document);
        return xrayd::spool::Take::taken;
    });
    CHECK(origin != 0);
    REQUIRE(ids.size() == 5);
    for (int k = 0; k < 5; ++k) {
        CHECK(ids[k] == segment_id(k));
        CHECK(docs[k] == xrayd::test::document(k));
    }
}

TEST_CASE(
    "with a spool, clear() spills fresh batches and leaves replayed ones on disk, unsettled") {
    Harness h;
    SpoolFixture s(h);
    JobQueues q(h.counters, base, cap, 1, s.stage.get());
    // Spool two segments and read them back as the stage would: a replayed batch of origin o.
    const auto now_ns = static_cast<std::uint64_t>(
        std::chrono::system_clock::now().time_since_epoch() / std::chrono::nanoseconds(1));
    REQUIRE(s.spool->append("{\"a\":1}", "id1", "t1", now_ns));
    REQUIRE(s.spool->append("{\"a\":2}", "id2", "t2", now_ns));
    s.spool->flush(xrayd::Clock::now());
    std::size_t n = 0;
    const std::uint32_t o = s.spool->read(50, [&](const xrayd::spool::SpooledSegment&) {
        ++n;
        return xrayd::spool::Take::taken;
    });
    REQUIRE(n == 2);
    CHECK(s.spool->gauges().segments == 0);  // in memory now, not spooled
    REQUIRE(q.push_fresh(replayed_batch(h, 2, o)));
    REQUIRE(q.push_fresh(h.make_batch(3)));
    UploadJob taken = q.take_ready(true);  // the fresh one, as if in flight
    std::vector<UploadJob> in_flight;
    in_flight.push_back(std::move(taken));
    CHECK(q.clear(std::move(in_flight)) == 0);
    CHECK(h.get(Counter::spool_maybe_duplicates) == 3);  // the one in flight may have arrived
    s.spool->flush(xrayd::Clock::now());
    CHECK(h.get(Counter::spool_written) == 2 + 3);
    CHECK(s.spool->gauges().segments == 2 + 3);  // the replayed two are spooled again, unread
}
