// WakePacer: how long a receiver sleeps before collecting what has arrived (both backends).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>

#include <xrayd/common/time.h>
#include <xrayd/net/receiver.h>

namespace xrayd {

// Every wake-up costs about as much as receiving tens of small datagrams (a context switch,
// the ring or epoll bookkeeping, the hand-over to the pipeline), so at moderate rates a
// receiver that wakes per arrival spends most of its time waking. The pacer estimates the
// arrival rate and, while datagrams keep coming, sleeps for the time `wanted` of them take to
// arrive, so one wake-up hands over about what the consumer needs (a batch's worth). Bounds:
// - at most `hold_limit` (half the batcher's linger, see DeliveryHint): with the sleep counted
//   in received_at, pacing never makes a segment wait longer than the batcher would have;
// - at most the time `capacity` datagrams take: a wake-up must not collect more than the
//   receive slots take in one round;
// - a sleep shorter than `min_sleep` is not worth a timer: wake on arrival instead, as at high
//   rates, where every wake-up finds plenty anyway;
// - a sleep that collected nothing means the traffic stopped: the next wait is for the first
//   arrival, so a lone datagram is never delayed.
// One thread uses it; `now` comes from the caller, so tests drive time.
class WakePacer {
public:
    static constexpr Duration min_sleep = std::chrono::milliseconds(1);

    explicit WakePacer(std::size_t capacity) noexcept : capacity_(std::max<std::size_t>(capacity, 1)) {}

    // After a wake-up at `now` that collected `datagrams`: how long to sleep before collecting
    // again; zero means wait for the first arrival.
    [[nodiscard]] Duration next_sleep(std::size_t datagrams, TimePoint now,
                                      DeliveryPace pace) noexcept {
        const bool first = last_wake_ == TimePoint{};
        const Duration since = now - last_wake_;
        last_wake_ = now;
        if (!first && since > Duration::zero()) {
            const double sample =
                static_cast<double>(datagrams) / std::chrono::duration<double>(since).count();
            // An average over the last few wake-ups: steady under a paced sender's bursts.
            rate_ = rate_ == 0.0 ? sample : rate_ + (sample - rate_) * smoothing;
        }
        if (datagrams == 0 || pace.wanted == 0 || pace.hold_limit <= Duration::zero() ||
            rate_ <= 0.0) {
            return Duration::zero();
        }
        // An eighth more than wanted: the rate is an estimate and a paced sender delivers in
        // ticks, so a sleep for exactly `wanted` often comes back a few short, and the few
        // missing would cost a wake-up of their own (or the batch's oldest segments a whole
        // extra round). The surplus simply starts the next batch.
        const std::size_t target = pace.wanted + pace.wanted / 8 + 1;
        const double wanted = static_cast<double>(std::min(target, capacity_));
        const auto sleep =
            std::chrono::duration_cast<Duration>(std::chrono::duration<double>(wanted / rate_));
        const Duration bounded = std::min(sleep, pace.hold_limit);
        return bounded < min_sleep ? Duration::zero() : bounded;
    }

    // The arrival rate the pacer works with, datagrams per second (for tests and logs).
    [[nodiscard]] double rate() const noexcept { return rate_; }

private:
    static constexpr double smoothing = 0.25;
    std::size_t capacity_;
    double rate_ = 0.0;
    TimePoint last_wake_{};
};

}  // namespace xrayd
