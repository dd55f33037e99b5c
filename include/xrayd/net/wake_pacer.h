// WakePacer: how long a receiver sleeps before collecting what has arrived (both backends).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>

#include <xrayd/common/time.h>
#include <xrayd/flow/flow_control.h>

namespace xrayd {

// Every wake-up costs about as much as receiving tens of small datagrams (a context switch,
// the ring or epoll bookkeeping, the hand-over to the pipeline), so at moderate rates a
// receiver that wakes per arrival spends most of its time waking. The pacer estimates the
// arrival rate and, while datagrams keep coming, sleeps for the time `wanted` of them take to
// arrive, so one wake-up hands over about what the consumer needs (a batch's worth). Bounds:
// - at most `hold_limit` (half the batcher's linger, see DeliveryHint in flow_control.h): with the
// sleep counted
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

    explicit WakePacer(std::size_t capacity) noexcept
        : capacity_(std::max<std::size_t>(capacity, 1)) {}

    // After a wake-up at `now` that collected `datagrams`: how long to sleep before collecting
    // again; zero means wait for the first arrival.
    [[nodiscard]] Duration next_sleep(std::size_t datagrams, TimePoint now,
                                      DeliveryPace pace) noexcept {
        if (window_start_ == TimePoint{}) {
            window_start_ = now;
        } else {
            // The rate over windows of at least rate_window, not per wake-up: a wake-up that
            // came a moment after a burst would otherwise read as a huge rate. A sleep that
            // collected nothing closes the window at once, so the estimate falls with traffic.
            window_count_ += datagrams;
            const Duration span = now - window_start_;
            if (span > Duration::zero() && (span >= rate_window || datagrams == 0)) {
                const double sample = static_cast<double>(window_count_) /
                                      std::chrono::duration<double>(span).count();
                rate_ = rate_ == 0.0 ? sample : rate_ + (sample - rate_) * smoothing;
                window_start_ = now;
                window_count_ = 0;
            }
        }
        if (datagrams == 0 || pace.wanted == 0 || pace.hold_limit <= Duration::zero() ||
            rate_ <= 0.0) {
            return Duration::zero();
        }
        // An eighth less than wanted: the rate is an estimate and senders come in bursts, so a
        // sleep for exactly `wanted` would as often overshoot, holding the open batch's oldest
        // segments past the moment it could have gone out. Short of it, the next wait is for
        // the few still missing (usually on their arrival), and the batch goes out on the
        // arrival that completes it, as without pacing.
        const std::size_t target = std::max<std::size_t>(pace.wanted - pace.wanted / 8, 1);
        const double wanted = static_cast<double>(std::min(target, capacity_));
        const auto sleep =
            std::chrono::duration_cast<Duration>(std::chrono::duration<double>(wanted / rate_));
        const Duration bounded = std::min(sleep, pace.hold_limit);
        return bounded < min_sleep ? Duration::zero() : bounded;
    }

    // The arrival rate the pacer works with, datagrams per second (tests check it).
    [[nodiscard]] double rate() const noexcept { return rate_; }

private:
    static constexpr double smoothing = 0.25;
    static constexpr Duration rate_window = std::chrono::milliseconds(10);
    std::size_t capacity_;
    double rate_ = 0.0;
    TimePoint window_start_{};
    std::size_t window_count_ = 0;
};

}  // namespace xrayd
