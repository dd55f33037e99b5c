// JobQueues: fresh batches, due retries and those waiting out their back-off.
#include "job_queues.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace xrayd {

JobQueues::JobQueues(Counters& counters, Duration retry_base, Duration retry_cap,
                     std::uint64_t seed, BatchSpill* spill) noexcept
    : counters_(counters),
      spill_(spill),
      retry_base_(retry_base),
      retry_cap_(retry_cap),
      jitter_(seed) {}

bool JobQueues::push_fresh(Batch&& batch) noexcept {
    const std::size_t count = batch.segment_count();
    const std::uint32_t origin = batch.origin();
    try {
        (origin != 0 ? replay_ : fresh_).emplace_back(std::move(batch));
    } catch (...) {
        counters_.add(Counter::dropped_gave_up, count);
        if (origin != 0 && spill_ != nullptr) {
            spill_->settle(origin, count);
        }
        return false;
    }
    held_ += count;
    return true;
}

void JobQueues::release(std::uint32_t origin, std::size_t segments) noexcept {
    held_ -= segments < held_ ? segments : held_;
    if (origin != 0 && spill_ != nullptr) {
        spill_->settle(origin, segments);
    }
}

void JobQueues::let_go(UploadJob&& job, Counter dropped_as) noexcept {
    const std::size_t count = job.batch.segment_count();
    held_ -= count < held_ ? count : held_;
    if (spill_ != nullptr) {
        spill_->spill(std::move(job.batch));  // counts each segment, settles the origin
        return;
    }
    counters_.add(dropped_as, count);
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

UploadJob JobQueues::take_ready(bool prefer_fresh) noexcept {
    std::deque<UploadJob>* from = &fresh_;
    if (!retry_ready_.empty()) {
        from = &retry_ready_;
    } else if (!replay_.empty() && (fresh_.empty() || !prefer_fresh)) {
        from = &replay_;
    }
    std::deque<UploadJob>& queue = *from;
    UploadJob job = std::move(queue.front());
    queue.pop_front();
    return job;
}

RetryQueued JobQueues::schedule_retry(UploadJob&& job, Duration retry_after, Duration budget,
                                      TimePoint now, Duration* delay) noexcept {
    const std::size_t count = job.batch.segment_count();
    if (job.failures == 0) {
        job.first_failure = now;
    }
    if (decide_retry(job.first_failure, now, budget) == RetryDecision::give_up) {
        let_go(std::move(job), Counter::dropped_gave_up);
        return RetryQueued::gave_up;
    }
    const Duration wait =
        backoff_delay(job.failures, retry_base_, retry_cap_, jitter_.next_unit(), retry_after);
    ++job.failures;
    job.due = now + wait;
    const std::uint32_t origin = job.batch.origin();
    try {
        waiting_.push_back(std::move(job));
    } catch (...) {
        counters_.add(Counter::dropped_gave_up, count);
        release(origin, count);
        return RetryQueued::out_of_memory;
    }
    *delay = wait;
    return RetryQueued::queued;
}

std::size_t JobQueues::evict_oldest() noexcept {
    // The job holding the oldest segment; on a tie the first found, waiting before ready
    // before fresh.
    UploadJob* oldest = nullptr;
    auto consider = [&](auto& jobs) {
        for (UploadJob& job : jobs) {
            if (oldest == nullptr ||
                job.batch.oldest_received() < oldest->batch.oldest_received()) {
                oldest = &job;
            }
        }
    };
    consider(waiting_);
    consider(retry_ready_);
    consider(fresh_);
    consider(replay_);
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
    // Moved out before it is erased: let_go() may spill it.
    UploadJob job(std::move(oldest->batch));
    if (!erase_from(waiting_) && !erase_from(retry_ready_) && !erase_from(fresh_)) {
        (void)erase_from(replay_);
    }
    let_go(std::move(job), Counter::dropped_oldest);
    return count;
}

Duration JobQueues::until_next_due(Duration max_wait, TimePoint now) const noexcept {
    Duration wait = max_wait;
    for (const UploadJob& job : waiting_) {
        wait = std::min(wait, job.due - now);
    }
    return std::max(wait, Duration::zero());
}

std::size_t JobQueues::clear(std::vector<UploadJob>&& taken) noexcept {
    if (spill_ != nullptr) {
        auto put_away = [this](UploadJob& job) {
            const std::size_t count = job.batch.segment_count();
            held_ -= count < held_ ? count : held_;
            if (job.batch.origin() != 0) {
                spill_->unread(job.batch.origin(), count);  // still on disk, for the next start
            } else {
                spill_->spill(std::move(job.batch));
            }
        };
        for (auto* queue : {&fresh_, &retry_ready_, &replay_}) {
            for (UploadJob& job : *queue) {
                put_away(job);
            }
        }
        for (UploadJob& job : waiting_) {
            put_away(job);
        }
        for (UploadJob& job : taken) {
            // X-Ray may have stored what was in flight: sending it again after the restart may
            // duplicate it (harmless: X-Ray keeps the last version of a segment id).
            counters_.add(Counter::spool_maybe_duplicates, job.batch.segment_count());
            put_away(job);
        }
    }
    fresh_.clear();
    retry_ready_.clear();
    replay_.clear();
    waiting_.clear();
    return std::exchange(held_, 0);
}

}  // namespace xrayd
