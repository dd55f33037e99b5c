// Benchmarks: the disk spool's cost per segment on one core (issue #15 item 7), on a real file
// system (a directory under /var/tmp, the disk, not a tmpfs):
// - WriteAheadRoundTrip: the whole write-ahead path of one pipeline turn — append every
//   segment taken from the queue, write them out (one write(2)), read them back into batches
//   and settle them as delivered — with --spool-sync interval (fdatasync once a second).
// - ReplayRead: reading spooled segments back into batches (the replay's drain rate).
// - IdleTurn: what the stage costs per pipeline turn in overflow mode while X-Ray is healthy
//   (nothing to write, nothing to read).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <xrayd/batch/batch_sink.h>
#include <xrayd/batch/batcher.h>
#include <xrayd/log/logger.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/queue/segment.h>
#include <xrayd/spool/spool.h>
#include <xrayd/spool/spool_stage.h>
#include <xrayd/stats/counters.h>

namespace xrayd {
namespace {

constexpr std::size_t per_turn = 64;  // segments the pipeline takes per turn at high rates

// A ~300 B segment document, the shape of the TPS matrix's default size.
std::string document(std::size_t k) {
    return fmt::format(
        R"({{"name":"checkout-service","id":"{:016x}","trace_id":"1-6750f1a0-{:024x}",)"
        R"("start_time":1733357984.123,"end_time":1733357984.187,"http":{{"request":)"
        R"({{"method":"GET","url":"https://example.com/api/orders/12345"}},"response":)"
        R"({{"status":200,"content_length":512}}}},"aws":{{"xray":{{"sdk":"X-Ray for Go",)"
        R"("sdk_version":"1.8.4"}}}}}})",
        k, k);
}

// A directory of its own under /var/tmp, removed afterwards.
struct BenchDir {
    BenchDir() {
        std::string templ = "/var/tmp/xrayd-bench-spool-XXXXXX";
        if (::mkdtemp(templ.data()) == nullptr) {
            std::abort();
        }
        path = templ;
    }
    ~BenchDir() { std::filesystem::remove_all(path); }
    std::string path;
};

// Stands in for X-Ray answering at once: every batch it takes is delivered and settled.
class DeliveringSink final : public BatchSink {
public:
    explicit DeliveringSink(spool::SpoolStage& stage) : stage_(stage) {}
    void submit(Batch&& batch) noexcept override {
        delivered += batch.segment_count();
        stage_.settle(batch.origin(), batch.segment_count());
        batch = Batch(*batch_budget_);
    }
    [[nodiscard]] std::size_t held_segments() const noexcept override { return 0; }
    [[nodiscard]] std::size_t abandon() noexcept override { return 0; }
    [[nodiscard]] bool wants_replay() const noexcept override { return true; }
    void use_budget(MemoryBudget& budget) { batch_budget_ = &budget; }
    std::size_t delivered = 0;

private:
    spool::SpoolStage& stage_;
    MemoryBudget* batch_budget_ = nullptr;
};

struct Rig {
    explicit Rig(spool::SpoolMode mode) {
        spool::SpoolOptions o;
        o.dir = dir.path;
        o.max_bytes = std::uint64_t{8} << 30;
        o.sync = spool::SpoolSync::interval;
        store = spool::Spool::open(o, counters, logger);
        BatchLimits limits;
        limits.linger = std::chrono::milliseconds(0);  // read back at once: the cost, not a wait
        stage = std::make_unique<spool::SpoolStage>(*store, mode, budget, limits);
        sink = std::make_unique<DeliveringSink>(*stage);
        sink->use_budget(budget);
        for (std::size_t k = 0; k < per_turn; ++k) {
            const std::string doc = document(k);
            segments.push_back(Segment::make(budget, doc, fmt::format("{:016x}", k),
                                             fmt::format("1-6750f1a0-{:024x}", k), Clock::now()));
        }
    }

    BenchDir dir;
    Logger logger{LogLevel::critical};
    Counters counters;
    MemoryBudget budget{64u << 20};
    std::unique_ptr<spool::Spool> store;
    std::unique_ptr<spool::SpoolStage> stage;
    std::unique_ptr<DeliveringSink> sink;
    std::vector<SegmentPtr> segments;
};

void BM_WriteAheadRoundTrip(benchmark::State& state) {
    Rig r(spool::SpoolMode::write_ahead);
    for (auto _ : state) {
        const TimePoint now = Clock::now();
        for (const SegmentPtr& s : r.segments) {
            r.stage->accept(*s, now);
        }
        r.stage->on_turn(*r.sink, now, false);
    }
    if (r.sink->delivered + r.store->unread_segments() != state.iterations() * per_turn) {
        state.SkipWithError("segments went missing");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * per_turn));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * per_turn) *
                            static_cast<std::int64_t>(r.segments[0]->body().size()));
}
BENCHMARK(BM_WriteAheadRoundTrip)->MinTime(2.0);

void BM_ReplayRead(benchmark::State& state) {
    Rig r(spool::SpoolMode::overflow);
    for (auto _ : state) {
        state.PauseTiming();
        for (int i = 0; i < 16; ++i) {  // 1024 spooled segments
            for (const SegmentPtr& s : r.segments) {
                (void)r.store->append(s->body(), s->id(), s->trace_id(),
                                      1'800'000'000'000'000'000u);
            }
        }
        r.store->flush(Clock::now());
        state.ResumeTiming();
        r.stage->on_turn(*r.sink, Clock::now(), false);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(r.sink->delivered));
}
BENCHMARK(BM_ReplayRead)->MinTime(1.0);

void BM_IdleTurn(benchmark::State& state) {
    Rig r(spool::SpoolMode::overflow);
    for (auto _ : state) {
        r.stage->on_turn(*r.sink, Clock::now(), false);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_IdleTurn);

}  // namespace
}  // namespace xrayd

BENCHMARK_MAIN();
