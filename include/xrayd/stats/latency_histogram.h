// LatencyHistogram: a Prometheus-style histogram of upload latencies, lock-free to observe.
// In stats/ beside the counters: the uploader observes it, /metrics (admin/) exports it.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include <xrayd/common/time.h>

namespace xrayd {

// Fixed buckets (seconds) spanning a fast in-region PutTraceSegments to a request timeout.
// Any thread may observe(); any thread may take a snapshot (relaxed: buckets, count and sum can
// be off by the observations in flight, which Prometheus tolerates).
class LatencyHistogram {
public:
    static constexpr std::array<double, 12> bounds_seconds{0.005, 0.01, 0.025, 0.05, 0.1,  0.25,
                                                           0.5,   1.0,  2.5,   5.0,  10.0, 30.0};
    static constexpr std::size_t bucket_count = bounds_seconds.size() + 1;  // + the +Inf bucket

    struct Snapshot {
        std::array<std::uint64_t, bucket_count> buckets{};  // per bucket, NOT cumulative
        std::uint64_t count = 0;
        double sum_seconds = 0;
    };

    void observe(Duration latency) noexcept {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count();
        const std::uint64_t clamped = ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
        const double seconds = static_cast<double>(clamped) / 1e9;
        std::size_t i = 0;
        while (i < bounds_seconds.size() && seconds > bounds_seconds[i]) {
            ++i;
        }
        buckets_[i].fetch_add(1, std::memory_order_relaxed);
        sum_ns_.fetch_add(clamped, std::memory_order_relaxed);
        count_.fetch_add(1, std::memory_order_relaxed);
    }

    [[nodiscard]] Snapshot snapshot() const noexcept {
        Snapshot s;
        for (std::size_t i = 0; i < bucket_count; ++i) {
            s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
        }
        s.count = count_.load(std::memory_order_relaxed);
        s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
        return s;
    }

private:
    std::array<std::atomic<std::uint64_t>, bucket_count> buckets_{};
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace xrayd
