// JobQueues: fresh batches, due retries and those waiting out their back-off.
#include "job_queues.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace xrayd {

JobQueues::JobQueues(Counters& counters, Duration retry_base, Duration retry_cap,
                     std::uint64_t seed) noexcept
    : counters_(counters), retry_base_(retry_base), retry_cap_(retry_cap), jitter_(seed) {}

bool JobQueues::push_fresh(Batch&& batch) noexcept {
    const std::size_t count = batch.segment_count();
    try {
        fresh_.emplace_back(std::move(batch));
    } catch (...) {
        counters_.add(Counter::dropped_gave_up, count);
        return false;
    }
    held_ += count;
    return true;
}

void JobQueues::promote_due(TimePoint now) noexcept {
    const bool any_due = std::any_of(waiting_.begin(), waiting_.end(),
                                     [&](const UploadJob& job) { return job.due <= now; });
    if (!any_due) {
        return;
    }
    // Oldest due first, so retries keep their relative order.
    std::stable_sort(waiting_.begin(), waiting_.end(),
                     [](const UploadJob& a, const UploadJob& b) { return a.due < b.due; });
    std::size_t moved = 0;
    try {
        while (moved < waiting_.size() && waiting_[moved].due <= now) {
            retry_ready_.push_back(std::move(waiting_[moved]));
            ++moved;
        }
    } catch (...) {
        // Out of memory: the rest stay waiting and are promoted on a later pass.
    }
    waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(moved));
}

UploadJob JobQueues::take_ready() noexcept {
    std::deque<UploadJob>& from = retry_ready_.empty() ? fresh_ : retry_ready_;
    UploadJob job = std::move(from.front());
    from.pop_front();
    return job;
}

RetryQueued JobQueues::schedule_retry(UploadJob&& job, Duration retry_after, Duration budget,
                                      TimePoint now, Duration* delay) noexcept {
    const std::size_t count = job.batch.segment_count();
    if (job.failures == 0) {
        job.first_failure = now;
    }
    if (decide_retry(job.first_failure, now, budget) == RetryDecision::give_up) {
        counters_.add(Counter::dropped_gave_up, count);
        release(count);
        return RetryQueued::gave_up;
    }
    const Duration wait =
        backoff_delay(job.failures, retry_base_, retry_cap_, jitter_.next_unit(), retry_after);
    ++job.failures;
    job.due = now + wait;
    try {
        waiting_.push_back(std::move(job));
    } catch (...) {
        counters_.add(Counter::dropped_gave_up, count);
        release(count);
        return RetryQueued::out_of_memory;
    }
    *delay = wait;
    return RetryQueued::queued;
}

std::size_t JobQueues::evict_oldest() noexcept {
    // The job holding the oldest segment; on a tie the first found, waiting before ready
    // before fresh.
    const UploadJob* oldest = nullptr;
    auto consider = [&](const auto& jobs) {
        for (const UploadJob& job : jobs) {
            if (oldest == nullptr ||
                job.batch.oldest_received() < oldest->batch.oldest_received()) {
                oldest = &job;
            }
        }
    };
    consider(waiting_);
    consider(retry_ready_);
    consider(fresh_);
    if (oldest == nullptr) {
        return 0;
    }
    const std::size_t count = oldest->batch.segment_count();
    auto erase_from = [&](auto& jobs) {
        const auto it = std::find_if(jobs.begin(), jobs.end(),
                                     [&](const UploadJob& job) { return &job == oldest; });
        if (it == jobs.end()) {
            return false;
        }
        jobs.erase(it);
        return true;
    };
    if (!erase_from(waiting_) && !erase_from(retry_ready_)) {
        (void)erase_from(fresh_);
    }
    counters_.add(Counter::dropped_oldest, count);
    release(count);
    return count;
}

Duration JobQueues::until_next_due(Duration max_wait, TimePoint now) const noexcept {
    Duration wait = max_wait;
    for (const UploadJob& job : waiting_) {
        wait = std::min(wait, job.due - now);
    }
    return std::max(wait, Duration::zero());
}

std::size_t JobQueues::clear() noexcept {
    fresh_.clear();
    retry_ready_.clear();
    waiting_.clear();
    return std::exchange(held_, 0);
}

}  // namespace xrayd
