// Benchmarks: segment hand-off (MPSC ring vs one SPSC ring per producer) and batch building.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <xrayd/batch/batch.h>
#include <xrayd/batch/batcher.h>
#include <xrayd/common/time.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/queue/mpsc_queue.h>
#include <xrayd/queue/segment.h>
#include <xrayd/queue/segment_queue.h>
#include <xrayd/stats/counters.h>

namespace xrayd {
namespace {

constexpr std::size_t ring_capacity = 4096;
constexpr std::uint64_t items_per_producer = 1u << 18;

// The alternative to one MPSC ring: one single-producer ring per receiver thread, which the
// consumer polls round-robin. No CAS on the push path; each side caches the other's index.
template <typename T>
class SpscRing {
public:
    explicit SpscRing(std::size_t capacity) : mask_(capacity - 1), cells_(capacity) {}

    bool try_push(T& item) noexcept {
        const std::size_t tail = tail_.load(std::memory_order_relaxed);
        if (tail - head_cache_ > mask_) {
            head_cache_ = head_.load(std::memory_order_acquire);
            if (tail - head_cache_ > mask_) {
                return false;
            }
        }
        cells_[tail & mask_] = std::move(item);
        tail_.store(tail + 1, std::memory_order_release);
        return true;
    }

    bool try_pop(T& out) noexcept {
        const std::size_t head = head_.load(std::memory_order_relaxed);
        if (head == tail_cache_) {
            tail_cache_ = tail_.load(std::memory_order_acquire);
            if (head == tail_cache_) {
                return false;
            }
        }
        out = std::move(cells_[head & mask_]);
        head_.store(head + 1, std::memory_order_release);
        return true;
    }

private:
    alignas(cache_line_size) std::atomic<std::size_t> tail_{0};
    std::size_t head_cache_ = 0;  // producer's copy of head_
    alignas(cache_line_size) std::atomic<std::size_t> head_{0};
    std::size_t tail_cache_ = 0;  // consumer's copy of tail_
    alignas(cache_line_size) const std::size_t mask_;
    std::vector<T> cells_;
};

// One thread pushes and pops: the uncontended cost of a hand-off.
void BM_MpscPushPopSameThread(benchmark::State& state) {
    BoundedMpscQueue<std::uint64_t> q(ring_capacity);
    std::uint64_t item = 1;
    for (auto _ : state) {
        benchmark::DoNotOptimize(q.try_push(item));
        benchmark::DoNotOptimize(q.try_pop(item));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MpscPushPopSameThread);

void BM_SpscPushPopSameThread(benchmark::State& state) {
    SpscRing<std::uint64_t> q(ring_capacity);
    std::uint64_t item = 1;
    for (auto _ : state) {
        benchmark::DoNotOptimize(q.try_push(item));
        benchmark::DoNotOptimize(q.try_pop(item));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpscPushPopSameThread);

// Producers on their own threads, the benchmark thread consumes: items/s through the queue.
void BM_MpscProducersToConsumer(benchmark::State& state) {
    const auto producers = static_cast<int>(state.range(0));
    for (auto _ : state) {
        BoundedMpscQueue<std::uint64_t> q(ring_capacity);
        std::vector<std::thread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&q] {
                for (std::uint64_t i = 0; i < items_per_producer; ++i) {
                    std::uint64_t item = i;
                    while (!q.try_push(item)) {
                        std::this_thread::yield();
                    }
                }
            });
        }
        const std::uint64_t total = items_per_producer * static_cast<std::uint64_t>(producers);
        std::uint64_t got = 0;
        std::uint64_t sum = 0;
        std::uint64_t out = 0;
        while (got < total) {
            if (q.try_pop(out)) {
                sum += out;
                ++got;
            } else {
                std::this_thread::yield();  // 2-core machines: let a producer run
            }
        }
        benchmark::DoNotOptimize(sum);
        for (auto& t : threads) {
            t.join();
        }
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(items_per_producer) *
                            producers);
}
BENCHMARK(BM_MpscProducersToConsumer)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_SpscPerProducerToConsumer(benchmark::State& state) {
    const auto producers = static_cast<int>(state.range(0));
    for (auto _ : state) {
        std::vector<std::unique_ptr<SpscRing<std::uint64_t>>> rings;
        for (int p = 0; p < producers; ++p) {
            rings.push_back(std::make_unique<SpscRing<std::uint64_t>>(ring_capacity));
        }
        std::vector<std::thread> threads;
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([ring = rings[static_cast<std::size_t>(p)].get()] {
                for (std::uint64_t i = 0; i < items_per_producer; ++i) {
                    std::uint64_t item = i;
                    while (!ring->try_push(item)) {
                        std::this_thread::yield();
                    }
                }
            });
        }
        const std::uint64_t total = items_per_producer * static_cast<std::uint64_t>(producers);
        std::uint64_t got = 0;
        std::uint64_t sum = 0;
        std::uint64_t out = 0;
        while (got < total) {
            bool any = false;
            for (auto& ring : rings) {
                // Drain a bounded run from each ring so no producer starves the others.
                for (int k = 0; k < 64 && ring->try_pop(out); ++k) {
                    sum += out;
                    ++got;
                    any = true;
                }
            }
            if (!any) {
                std::this_thread::yield();  // 2-core machines: let a producer run
            }
        }
        benchmark::DoNotOptimize(sum);
        for (auto& t : threads) {
            t.join();
        }
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(items_per_producer) *
                            producers);
}
BENCHMARK(BM_SpscPerProducerToConsumer)
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The real hand-off: SegmentQueue (with the wake check on every push) carrying SegmentPtr,
// one thread. Segments are recycled so allocation is not measured.
void BM_SegmentQueuePushPopSameThread(benchmark::State& state) {
    MemoryBudget budget(1u << 20);
    SegmentQueue q(ring_capacity);
    SegmentPtr s = Segment::make(budget, "{}", "id", "trace", Clock::now());
    for (auto _ : state) {
        benchmark::DoNotOptimize(q.push(s));
        benchmark::DoNotOptimize(q.pop(s));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SegmentQueuePushPopSameThread);

std::string sample_document() {
    std::ifstream in(
        std::string(XRAYD_TEST_DATA_DIR) + "/segment-docs/otel-go-sdk/awsValidAwsFields.json",
        std::ios::binary);
    std::string doc{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (doc.empty()) {
        doc = R"({"trace_id":"1-5759e988-bd862e3fe1be46a994272793","id":"70de5b6f19ff9a0a",)"
              R"("name":"bench","start_time":1.0,"end_time":2.0,"pad":")" +
              std::string(1000, 'x') + "\"}";
    }
    return doc;
}

// Escaping alone, on a ~1 KB real segment document (many quotes to escape).
void BM_AppendJsonEscaped1KB(benchmark::State& state) {
    const std::string doc = sample_document();
    std::string out;
    out.reserve(doc.size() * 2);
    for (auto _ : state) {
        out.clear();
        append_json_escaped(out, doc);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(doc.size()));
}
BENCHMARK(BM_AppendJsonEscaped1KB);

// The pipeline's per-segment work after the queue: Segment::make (as the receiver does) plus
// Batcher::add, with full batches of 50 handed to a sink that destroys them.
void BM_BatcherAdd1KB(benchmark::State& state) {
    const std::string doc = sample_document();
    MemoryBudget budget(256u << 20);
    Counters counters;
    Batcher batcher(BatchLimits{}, budget, counters);
    std::size_t batches = 0;
    const Batcher::Emit emit = [&batches](Batch&& b) {
        ++batches;
        benchmark::DoNotOptimize(b.body().data());
    };
    const TimePoint now = Clock::now();
    for (auto _ : state) {
        batcher.add(
            Segment::make(budget, doc, "70de5b6f19ff9a0a", "1-5759e988-bd862e3fe1be46a9", now), now,
            emit);
    }
    batcher.flush(emit);
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(doc.size()));
    state.counters["batches"] = static_cast<double>(batches);
}
BENCHMARK(BM_BatcherAdd1KB);

}  // namespace
}  // namespace xrayd

BENCHMARK_MAIN();
