// JobQueues: the batches the uploader holds and is not sending — fresh, due retries, retries
// waiting out their back-off — with retry scheduling, drop-oldest eviction and the held count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include <xrayd/batch/batch.h>
#include <xrayd/batch/batch_spill.h>
#include <xrayd/common/time.h>
#include <xrayd/stats/counters.h>
#include <xrayd/xray/retry_policy.h>

#include "upload_job.h"

namespace xrayd {

// What schedule_retry() did with a failed job.
enum class RetryQueued {
    queued,         // waiting for its due time
    gave_up,        // past the retry budget: spilled to the spool, or counted as
                    // dropped_gave_up; released
    out_of_memory,  // could not be queued: counted as dropped_gave_up, released
};

// The queues count what they drop themselves (dropped_gave_up, dropped_oldest), so that a job
// that leaves them without being sent is accounted for in one place; the other outcomes (sent,
// rejected) are counted by whoever learns them, who then calls release(). With a spill (the
// disk spool), what would be dropped for lack of time or room is spilled to it instead.
//
// Batches read back from the spool (origin != 0) wait in their own queue: take_ready() gives
// them a turn beside the fresh ones (see take_ready), and release() settles them with the
// spill.
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
    JobQueues(Counters& counters, Duration retry_base, Duration retry_cap, std::uint64_t seed,
              BatchSpill* spill = nullptr) noexcept;

    // Queues a batch never tried, behind the other fresh ones. False when out of memory: its
    // segments are then counted as dropped_gave_up, and are not held.
    [[nodiscard]] bool push_fresh(Batch&& batch) noexcept;

    // Moves the waiting retries due by `now` to the ready ones, oldest due first.
    void promote_due(TimePoint now) noexcept;
    // True when take_ready() has a job to give.
    [[nodiscard]] bool has_ready() const noexcept {
        return !retry_ready_.empty() || !fresh_.empty() || !replay_.empty();
    }
    // The next job to send: a due retry before anything else; then a batch read back from the
    // spool unless `prefer_fresh` and a fresh batch waits; then a fresh batch. Each in order.
    // The uploader sets `prefer_fresh` once replayed batches hold half the requests in
    // flight, so replay gets half the concurrency when fresh batches wait and all of it when
    // none do. IMPORTANT: only when has_ready(). Its segments stay held until release().
    [[nodiscard]] UploadJob take_ready(bool prefer_fresh = true) noexcept;
    // Batches read back from the spool that wait for a slot.
    [[nodiscard]] std::size_t replay_queued() const noexcept { return replay_.size(); }

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
    // `segments` held, of a batch from `origin` (Batch::origin()), have reached a counted
    // outcome; those read back from the spool are settled with it.
    void release(std::uint32_t origin, std::size_t segments) noexcept;
    // Shutdown: every queued job and every taken one (`taken`, which the caller abandoned) is
    // spilled to the spool, or, read back from it, left there (BatchSpill::unread). Without a
    // spill nothing is counted. Returns how many segments are held after that (not spilled).
    [[nodiscard]] std::size_t clear(std::vector<UploadJob>&& taken = {}) noexcept;

private:
    // A queued job leaves without being sent: spilled, or counted under `dropped_as`.
    void let_go(UploadJob&& job, Counter dropped_as) noexcept;

    Counters& counters_;
    BatchSpill* spill_;  // nullable
    Duration retry_base_;
    Duration retry_cap_;
    JitterSource jitter_;
    std::deque<UploadJob> fresh_;        // submitted, never tried
    std::deque<UploadJob> retry_ready_;  // due retries: they go before fresh batches
    std::deque<UploadJob> replay_;       // read back from the spool, never tried in this run
    std::vector<UploadJob> waiting_;     // failed, waiting for their due time
    std::size_t held_ = 0;
};

}  // namespace xrayd
