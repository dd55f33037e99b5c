// Uploader queues: fresh batches, due retries and those waiting out their back-off; retry
// scheduling and drop-oldest eviction.
#include "uploader_state.h"

#include <string>
#include <utility>

#include <fmt/format.h>

namespace xrayd {

void Uploader::State::log_failure(RateLimiter& limiter, std::string_view reason,
                                  std::string_view outcome) noexcept {
    std::uint64_t suppressed = 0;
    if (!limiter.allow(Clock::now(), &suppressed)) {
        return;
    }
    if (suppressed > 0) {
        logger.error("Sending segment batch failed with: {} ({}; {} similar failures not logged)",
                     reason, outcome, suppressed);
    } else {
        logger.error("Sending segment batch failed with: {} ({})", reason, outcome);
    }
}

void Uploader::State::promote_due(TimePoint now) noexcept {
    const bool any_due = std::any_of(waiting.begin(), waiting.end(),
                                     [&](const Job& job) { return job.due <= now; });
    if (!any_due) {
        return;
    }
    // Oldest due first, so retries keep their relative order.
    std::stable_sort(waiting.begin(), waiting.end(),
                     [](const Job& a, const Job& b) { return a.due < b.due; });
    std::size_t moved = 0;
    try {
        while (moved < waiting.size() && waiting[moved].due <= now) {
            retry_ready.push_back(std::move(waiting[moved]));
            ++moved;
        }
    } catch (...) {
        // Out of memory: the rest stay waiting and are promoted on a later pass.
    }
    waiting.erase(waiting.begin(), waiting.begin() + static_cast<std::ptrdiff_t>(moved));
}

bool Uploader::State::can_start() const noexcept {
    // After set_concurrency() lowered the limit, slots above it may still be busy: in_flight()
    // can exceed the limit until they finish.
    return !idle.empty() && in_flight() < static_cast<std::size_t>(throttle.limit()) &&
           (!retry_ready.empty() || !fresh.empty());
}

void Uploader::State::start_ready(TimePoint now) noexcept {
    while (can_start()) {
        std::deque<Job>& from = retry_ready.empty() ? fresh : retry_ready;
        Job job = std::move(from.front());
        from.pop_front();
        Slot* slot = idle.back();
        idle.pop_back();
        start(*slot, std::move(job), now);
    }
}

void Uploader::State::make_room() noexcept {
    if (options.backpressure != Backpressure::drop_oldest || budget == nullptr) {
        return;
    }
    const std::size_t limit = budget->limit();
    const std::size_t headroom = std::min(
        limit, options.drop_oldest_headroom > 0 ? options.drop_oldest_headroom : limit / 8);
    std::size_t evicted = 0;
    while (budget->used() + headroom > limit) {
        // The batch holding the oldest segment among those not in flight.
        const Job* oldest = nullptr;
        auto consider = [&](const auto& jobs) {
            for (const Job& job : jobs) {
                if (oldest == nullptr ||
                    job.batch.oldest_received() < oldest->batch.oldest_received()) {
                    oldest = &job;
                }
            }
        };
        consider(waiting);
        consider(retry_ready);
        consider(fresh);
        if (oldest == nullptr) {
            break;  // everything held is in flight: new segments are refused at ingest
        }
        const std::size_t count = oldest->batch.segment_count();
        auto erase_from = [&](auto& jobs) {
            for (auto it = jobs.begin(); it != jobs.end(); ++it) {
                if (&*it == oldest) {
                    jobs.erase(it);
                    return true;
                }
            }
            return false;
        };
        if (!erase_from(waiting) && !erase_from(retry_ready)) {
            (void)erase_from(fresh);
        }
        counters.add(Counter::dropped_oldest, count);
        release(count);
        evicted += count;
    }
    if (evicted == 0) {
        return;
    }
    evicted_since_log += evicted;
    std::uint64_t suppressed = 0;
    if (evict_limiter.allow(Clock::now(), &suppressed)) {
        logger.warn("Memory limit reached (using {} of {} bytes): dropped the {} oldest segments "
                    "held to make room (drop-oldest; consider increasing -m)",
                    budget->used(), limit, std::exchange(evicted_since_log, 0));
    }
}

void Uploader::State::on_failure(Job&& job, FailureClass failure, bool retryable,
                                 std::string_view reason, Duration retry_after,
                                 TimePoint now, Counter rejected_as) noexcept {
    counters.add(failure_counter(failure));
    const std::size_t count = job.batch.segment_count();
    if (!retryable) {
        counters.add(rejected_as, count);
        release(count);
        try {
            log_failure(final_limiter, reason,
                        fmt::format("not retryable; {} segments rejected", count));
        } catch (...) {
        }
        return;
    }
    const unsigned attempts = job.failures + 1;
    Duration delay{};
    switch (queue_retry(std::move(job), retry_after, now, &delay)) {
    case RetryQueued::queued:
        break;
    case RetryQueued::gave_up:
        try {
            log_failure(final_limiter, reason,
                        fmt::format("gave up after {} attempts; {} segments dropped", attempts,
                                    count));
        } catch (...) {
        }
        return;
    case RetryQueued::out_of_memory:
        logger.error("Out of memory queueing a batch for retry: {} segments dropped", count);
        return;
    }
    counters.add(Counter::upload_retries);
    try {
        log_failure(retry_limiter, reason,
                    fmt::format("retrying in {:.3f} s",
                                std::chrono::duration<double>(delay).count()));
    } catch (...) {
    }
}

RetryQueued Uploader::State::queue_retry(Job&& job, Duration retry_after, TimePoint now,
                                         Duration* delay) noexcept {
    const std::size_t count = job.batch.segment_count();
    if (job.failures == 0) {
        job.first_failure = now;
    }
    const Duration give_up_after(retry_budget.load(std::memory_order_relaxed));
    if (decide_retry(job.first_failure, now, give_up_after) == RetryDecision::give_up) {
        counters.add(Counter::dropped_gave_up, count);
        release(count);
        return RetryQueued::gave_up;
    }
    *delay = backoff_delay(job.failures, options.retry_base, options.retry_cap,
                           jitter.next_unit(), retry_after);
    ++job.failures;
    job.due = now + *delay;
    try {
        waiting.push_back(std::move(job));
    } catch (...) {
        counters.add(Counter::dropped_gave_up, count);
        release(count);
        return RetryQueued::out_of_memory;
    }
    return RetryQueued::queued;
}

Duration Uploader::State::next_wait(Duration max_wait, TimePoint now) const noexcept {
    if (can_start()) {
        return Duration::zero();
    }
    Duration wait = max_wait;
    for (const Job& job : waiting) {
        wait = std::min(wait, job.due - now);
    }
    return std::max(wait, Duration::zero());
}

}  // namespace xrayd
