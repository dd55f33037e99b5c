// Benchmark: the whole per-segment hot path on one thread — validate, queue, batch, body, sign.
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <xrayd/aws/credentials.h>
#include <xrayd/aws/sigv4.h>
#include <xrayd/batch/batch.h>
#include <xrayd/batch/batcher.h>
#include <xrayd/common/time.h>
#include <xrayd/http/curl.h>
#include <xrayd/ingest/ingest.h>
#include <xrayd/ingest/validator.h>
#include <xrayd/log/logger.h>
#include <xrayd/net/receiver.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/queue/segment_queue.h>
#include <xrayd/stats/counters.h>
#include <xrayd/xray/xray_request.h>

namespace xrayd {
namespace {

constexpr std::size_t ingest_burst = 64;  // datagrams per receive batch before the pipeline runs
constexpr std::size_t in_flight = 8;      // batches "being uploaded" at once

// The sample datagrams (header + document) in padded slots, as a receiver delivers them.
std::vector<std::string> load_slots(std::size_t max_bytes) {
    std::vector<std::string> slots;
    const auto root = std::filesystem::path(XRAYD_TEST_DATA_DIR) / "segment-docs";
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
        if (!entry.is_regular_file() || entry.path().extension() != ".udp") {
            continue;
        }
        std::ifstream in(entry.path(), std::ios::binary);
        std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (data.size() <= max_bytes) {
            slots.push_back(std::move(data));
        }
    }
    return slots;
}

// Receiver side and pipeline side of the daemon, without the threads and the network.
struct HotPath {
    Logger logger{LogLevel::critical};
    Counters counters;
    MemoryBudget budget{64u << 20};
    SegmentQueue queue{16384};
    IngestLogLimits limits;
    Ingest ingest{queue, budget, counters, logger, limits, 65536};
    Batcher batcher{BatchLimits{}, budget, counters};
    SigV4Signer signer{"us-east-1", "xray"};
    XRayTarget target = make_xray_target("https://xray.us-east-1.amazonaws.com", "/TraceSegments");
    Credentials credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                            "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKENvalue0123456789abcdef"};
    std::array<CurlSlist, in_flight> headers;
    std::array<std::optional<Batch>, in_flight> uploading;
    std::size_t next_slot = 0;
    std::size_t signed_batches = 0;
    bool sign_failed = false;
    Batcher::Emit emit = [this](Batch&& batch) {
        // An upload slot: the previous batch in it is done (destroyed), this one is signed.
        const std::size_t slot = next_slot++ % in_flight;
        uploading[slot].reset();
        const auto result = build_signed_headers(signer, target, batch.body(), credentials,
                                                 WallClock::now(), headers[slot]);
        sign_failed = sign_failed || !result;
        ++signed_batches;
        uploading[slot].emplace(std::move(batch));
    };
    std::vector<std::string> slots;
    std::vector<Datagram> datagrams;

    explicit HotPath(std::size_t max_datagram) : slots(load_slots(max_datagram)) {
        for (std::string& s : slots) {
            const std::size_t len = s.size();
            s.append(datagram_padding, '\0');
            datagrams.push_back(Datagram{s.data(), len, false, TimePoint{}});
        }
    }

    // Receives `n` datagrams (round-robin over the samples) and runs the pipeline over them.
    void run(std::size_t n, std::size_t& next) noexcept {
        for (std::size_t done = 0; done < n;) {
            const TimePoint now = Clock::now();
            const std::size_t burst = std::min(ingest_burst, n - done);
            for (std::size_t i = 0; i < burst; ++i) {
                Datagram d = datagrams[next++ % datagrams.size()];
                d.received_at = now;
                ingest.on_datagram(d);
            }
            SegmentPtr segment;
            while (queue.pop(segment)) {
                batcher.add(std::move(segment), now, emit);
            }
            done += burst;
        }
    }
};

void run_bench(benchmark::State& state, std::size_t max_datagram) {
    HotPath path(max_datagram);
    std::size_t next = 0;
    std::size_t bytes = 0;
    path.run(100'000, next);  // warm-up: pools, scratch buffers, signing key
    for (auto _ : state) {
        const std::size_t before = next;
        path.run(ingest_burst, next);
        for (std::size_t i = before; i < next; ++i) {
            bytes += path.datagrams[i % path.datagrams.size()].len;
        }
    }
    path.batcher.flush(path.emit);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * ingest_burst));
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
    state.counters["segments/s"] = benchmark::Counter(
        static_cast<double>(state.iterations() * ingest_burst), benchmark::Counter::kIsRate);
    state.counters["dropped"] =
        static_cast<double>(path.counters.get(Counter::dropped_buffer_full) +
                            path.counters.get(Counter::dropped_queue_full));
    if (path.sign_failed) {
        state.SkipWithError("signing failed");
    }
}

// Every sample, 249 B to 60 KB, round-robin.
void BM_HotPathMixedSamples(benchmark::State& state) {
    run_bench(state, 1u << 20);
}
BENCHMARK(BM_HotPathMixedSamples);

// Only the samples up to 1 KB (the typical SDK segment is ~300 B to 1 KB).
void BM_HotPathSmallSamples(benchmark::State& state) {
    run_bench(state, 1024);
}
BENCHMARK(BM_HotPathSmallSamples);

}  // namespace
}  // namespace xrayd

BENCHMARK_MAIN();
