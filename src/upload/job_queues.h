// JobQueues: the batches the uploader holds and is not sending — fresh, due retries, retries
// waiting out their back-off — with retry scheduling, drop-oldest eviction and the held count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include <xrayd/batch/batch.h>
#include <xrayd/common/time.h>
#include <xrayd/stats/counters.h>
#include <xrayd/xray/retry_policy.h>

#include "upload_job.h"

namespace xrayd {

// What schedule_retry() did with a failed job.
enum class RetryQueued {
    queued,         // waiting for its due time
    gave_up,        // past the retry budget: counted as dropped_gave_up, released
    out_of_memory,  // could not be queued: counted as dropped_gave_up, released
};

// The queues count what they drop themselves (dropped_gave_up, dropped_oldest), so that a job
// that leaves them without being sent is accounted for in one place; the other outcomes (sent,
// rejected) are counted by whoever learns them, who then calls release().
//
// held() is every segment the uploader holds: the queued ones and those taken by take_ready()
// (in flight or being answered) until release(). Hence at every moment between calls
// submitted = counted outcomes + held().
//
// Threads: the pipeline thread only. Lifetime: `counters` outlives the queues.
class JobQueues {
public:
    // Back-off of retry number n: jittered in [retry_base, min(retry_cap, retry_base * 2^n)]
    // (backoff_delay); `seed` seeds the jitter.
    JobQueues(Counters& counters, Duration retry_base, Duration retry_cap,
              std::uint64_t seed) noexcept;

    // Queues a batch never tried, behind the other fresh ones. False when out of memory: its
    // segments are then counted as dropped_gave_up, and are not held.
    [[nodiscard]] bool push_fresh(Batch&& batch) noexcept;

    // Moves the waiting retries due by `now` to the ready ones, oldest due first.
    void promote_due(TimePoint now) noexcept;
    // True when take_ready() has a job to give.
    [[nodiscard]] bool has_ready() const noexcept {
        return !retry_ready_.empty() || !fresh_.empty();
    }
    // The next job to send: a due retry before any fresh batch, each in order.
    // IMPORTANT: only when has_ready(). Its segments stay held until release().
    [[nodiscard]] UploadJob take_ready() noexcept;

    // Schedules `job`, which failed at `now`, for another attempt: gives up once `budget` has
    // passed since its first failure, else waits `*delay` (the back-off, raised to at least
    // `retry_after`, capped) and counts it in job.failures. `*delay` is set only when queued.
    [[nodiscard]] RetryQueued schedule_retry(UploadJob&& job, Duration retry_after, Duration budget,
                                             TimePoint now, Duration* delay) noexcept;

    // Drop-oldest: gives up the queued job (waiting, ready or fresh) holding the oldest
    // segment, counts its segments as dropped_oldest and releases them. Returns how many; 0
    // when nothing is queued (jobs taken by take_ready() are never evicted).
    [[nodiscard]] std::size_t evict_oldest() noexcept;

    // How long until the first waiting retry is due: at most `max_wait`, never negative.
    [[nodiscard]] Duration until_next_due(Duration max_wait, TimePoint now) const noexcept;

    [[nodiscard]] std::size_t held() const noexcept { return held_; }
    // `segments` held have reached a counted outcome.
    void release(std::size_t segments) noexcept { held_ -= segments < held_ ? segments : held_; }
    // Drops every queued job and forgets every held segment, the taken ones too (the caller
    // abandons those); returns how many were held. Nothing is counted.
    [[nodiscard]] std::size_t clear() noexcept;

private:
    Counters& counters_;
    Duration retry_base_;
    Duration retry_cap_;
    JitterSource jitter_;
    std::deque<UploadJob> fresh_;        // submitted, never tried
    std::deque<UploadJob> retry_ready_;  // due retries: they go before fresh batches
    std::vector<UploadJob> waiting_;     // failed, waiting for their due time
    std::size_t held_ = 0;
};

}  // namespace xrayd
