// Pipeline: queue → batcher → sink, and the drain at shutdown.
#include <xrayd/daemon/pipeline.h>

#include <algorithm>

namespace xrayd {

namespace {

// Segments moved per loop turn before the sink gets a turn: keeps uploads flowing under load.
constexpr std::size_t segments_per_turn = 4096;
// Longest wait with nothing scheduled: only bounds how stale a lost wake-up could make us.
constexpr Duration idle_wait = std::chrono::seconds(1);

}  // namespace

std::size_t Pipeline::take_from_queue(TimePoint now, std::size_t max) noexcept {
    auto emit = [this](Batch&& batch) { sink_.submit(std::move(batch)); };
    std::size_t n = 0;
    SegmentPtr segment;
    if (spool_ != nullptr && spool_->mode() == spool::SpoolMode::write_ahead) {
        while (n < max && queue_.pop(segment)) {
            spool_->accept(*segment, now);
            segment.reset();  // on disk now (or counted as refused): its memory goes back
            ++n;
        }
    } else {
        while (n < max && queue_.pop(segment)) {
            batcher_.add(std::move(segment), now, emit);
            ++n;
        }
        batcher_.flush_due(now, emit);
    }
    if (spool_ != nullptr) {
        spool_->on_turn(sink_, now, draining_.load(std::memory_order_acquire));
    }
    return n;
}

void Pipeline::publish_hint() noexcept {
    hint_.room.store(static_cast<std::uint32_t>(batcher_.room()), std::memory_order_relaxed);
    hint_.full.store(static_cast<std::uint32_t>(batcher_.full_batch()), std::memory_order_relaxed);
    // Half the linger: a receiver stamps what it held with the start of its sleep, so a held
    // segment arrives here at most half a linger old, never already due. (Held for a whole
    // linger, every delivery would be due on arrival and the pipeline, woken by its first
    // segment, would seal batches of one or two while the receiver is still handing over.)
    hint_.hold_limit.store((batcher_.limits().linger / 2).count(), std::memory_order_relaxed);
}

void Pipeline::run() noexcept {
    auto emit = [this](Batch&& batch) { sink_.submit(std::move(batch)); };
    for (;;) {
        if (const Clock::rep linger =
                new_linger_.exchange(no_new_linger, std::memory_order_acq_rel);
            linger != no_new_linger) {
            batcher_.set_linger(Duration(linger));
            if (spool_ != nullptr) {
                spool_->set_linger(Duration(linger));
            }
        }
        const TimePoint now = Clock::now();
        const std::size_t moved = take_from_queue(now, segments_per_turn);

        if (draining_.load(std::memory_order_acquire) && queue_.size_approx() == 0) {
            batcher_.flush(emit);
            loop_.run_once(Duration::zero());
            if (drained()) {
                return;
            }
            const TimePoint deadline{Duration(drain_deadline_.load(std::memory_order_acquire))};
            if (Clock::now() >= deadline) {
                // With a spool, abandon() spills what is held to it (and returns 0).
                held_at_exit_.store(sink_.abandon(), std::memory_order_release);
                if (spool_ != nullptr) {
                    spool_->flush(Clock::now());
                }
                return;
            }
        }

        if (moved == segments_per_turn) {
            loop_.run_once(Duration::zero());  // more is queued: do not sleep
            continue;
        }

        // Answers to the requests in flight wait for the next wake-up the receivers or the
        // batcher cause rather than take one of their own: at steady rates one wake-up per
        // batch instead of two. The wait then ends within the linger: by the open batch's
        // deadline, or, with none open while the sink holds batches, by the linger itself.
        Duration wait = idle_wait;
        if (auto due = batcher_.deadline()) {
            wait = std::min(wait, std::max(Duration::zero(), *due - now));
        } else if (sink_.held_segments() != 0) {
            wait = std::min(wait, batcher_.limits().linger);
        }
        EventLoop::Answers answers = EventLoop::Answers::at_next_wake;
        if (spool_ != nullptr) {
            if (auto due = spool_->deadline()) {
                wait = std::min(wait, std::max(Duration::zero(), *due - now));
            }
        }
        if (draining_.load(std::memory_order_acquire)) {
            wait = std::min<Duration>(wait, std::chrono::milliseconds(10));
            answers = EventLoop::Answers::at_once;
        }
        publish_hint();
        if (!queue_.prepare_to_sleep(batcher_.wake_threshold())) {
            wait = Duration::zero();  // enough segments arrived meanwhile to act on
        }
        loop_.run_once(wait, answers);
        queue_.woke_up();
    }
}

bool Pipeline::drained() const noexcept {
    if (sink_.held_segments() != 0 || queue_.size_approx() != 0) {
        return false;
    }
    // Spooled segments are sent before the exit while X-Ray takes them; they are safe on disk
    // otherwise, so a failing X-Ray does not hold up the exit.
    return spool_ == nullptr || spool_->unread() == 0 || !sink_.wants_replay();
}

void Pipeline::set_linger(Duration linger) noexcept {
    new_linger_.store(std::max(Duration::zero(), linger).count(), std::memory_order_release);
    loop_.wakeup();
}

void Pipeline::drain(TimePoint deadline) noexcept {
    drain_deadline_.store(deadline.time_since_epoch().count(), std::memory_order_release);
    draining_.store(true, std::memory_order_release);
    loop_.wakeup();
}

}  // namespace xrayd
