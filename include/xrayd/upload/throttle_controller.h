// ThrottleController: AIMD limit on the PutTraceSegments requests in flight while X-Ray throttles.
#pragma once

#include <cstdint>

#include <xrayd/common/time.h>

namespace xrayd {

// What a reported outcome changed, for the uploader's two log lines.
enum class ThrottleEvent {
    none,
    started,  // the first throttle after a calm period: the limit went below the ceiling
    ended,    // the limit grew back to the ceiling
};

// Counts of the current (or last) throttling episode.
struct ThrottleEpisode {
    TimePoint started{};
    std::uint64_t throttled = 0;  // throttled answers during the episode
    std::uint64_t succeeded = 0;  // successful answers during the episode
    int lowest_limit = 0;         // the smallest limit reached
};

// Additive increase, multiplicative decrease: a throttled answer halves the limit (floor 1),
// `successes_per_increase` successes in a row of throttles raise it by one (ceiling: the
// configured concurrency). Only one halving per round trip: an answer to a request that was
// already in flight when the limit was last halved does not halve it again, so a burst of
// throttled answers to the same round of requests costs one halving, not eight.
//
// Pure: no clock, no I/O; the caller passes times. Not thread-safe (the pipeline thread owns it).
class ThrottleController {
public:
    // `ceiling` below 1 is taken as 1; `successes_per_increase` 0 as 1.
    explicit ThrottleController(int ceiling, unsigned successes_per_increase = 10) noexcept;

    // Requests that may be in flight now, in [1, ceiling].
    [[nodiscard]] int limit() const noexcept { return limit_; }
    [[nodiscard]] int ceiling() const noexcept { return ceiling_; }
    // True from a `started` event until the matching `ended` one.
    [[nodiscard]] bool throttling() const noexcept { return throttling_; }
    // The current episode while throttling(); the last one after `ended`.
    [[nodiscard]] const ThrottleEpisode& episode() const noexcept { return episode_; }

    // A request started at `started` was throttled (HTTP 429, a ThrottlingException, or
    // throttled UnprocessedTraceSegments) and the answer arrived at `now`.
    ThrottleEvent on_throttled(TimePoint started, TimePoint now) noexcept;
    // A request was answered without throttling (2xx with nothing throttled).
    ThrottleEvent on_success() noexcept;
    // A new configured concurrency (a reload); below 1 is taken as 1. Outside an episode the
    // limit becomes the new ceiling at once; during one it is only capped by it, and grows
    // back to it as requests succeed.
    void set_ceiling(int ceiling) noexcept;

private:
    int ceiling_;
    int limit_;
    unsigned successes_per_increase_;
    unsigned successes_ = 0;
    bool decreased_ = false;
    TimePoint last_decrease_{};
    bool throttling_ = false;
    ThrottleEpisode episode_{};
};

}  // namespace xrayd
