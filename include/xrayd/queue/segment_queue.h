// SegmentQueue: the hand-off of segments from the receiver threads to the pipeline thread.
#pragma once

#include <atomic>
#include <cstddef>

#include <xrayd/flow/flow_control.h>
#include <xrayd/queue/mpsc_queue.h>
#include <xrayd/queue/segment.h>

namespace xrayd {

// A BoundedMpscQueue<SegmentPtr> plus a sleep/wake protocol with a threshold: the consumer
// announces, before it sleeps, how many queued segments are worth waking it for (1 when it must
// react to the first one, e.g. to start a linger timer; the free room of its open batch when it
// sleeps until the batch's deadline anyway), and the producer whose push brings the queue to
// that count wakes it. A busy pipeline costs no syscall per segment, and a steady trickle costs
// one wake-up per batch rather than one per burst. A full queue is the producer's counted drop,
// never a block.
//
// Consumer loop (the pipeline thread):
//     while (queue.pop(s)) { ... }
//     if (queue.prepare_to_sleep(n)) { wait_for_wake_or_timeout(); queue.woke_up(); }
//
// Threads: push() from any number of producer threads; pop(), prepare_to_sleep() and woke_up()
// from the one consumer thread; size_approx() from any thread. set_waker() before any of them.
class SegmentQueue {
public:
    // Capacity rounded up to a power of two (at least 2). Allocates: start-up only.
    explicit SegmentQueue(std::size_t capacity);
    SegmentQueue(const SegmentQueue&) = delete;
    SegmentQueue& operator=(const SegmentQueue&) = delete;

    // Sets what producers call to end the consumer's wait (borrowed: it must outlive the
    // queue's producers). Call before any thread uses the queue; until then nobody is woken.
    // IMPORTANT: the wake must be sticky (see Waker, flow_control.h): it can arrive after
    // prepare_to_sleep() but before the consumer starts waiting, and must then end that wait at
    // once. It runs on producer threads and is called at most once per prepare_to_sleep() call.
    void set_waker(Waker& waker) noexcept { waker_ = &waker; }

    // Producers. On success takes the segment (leaves `segment` null) and, if the consumer is
    // asleep or about to be, wakes it. False when full: `segment` is untouched, the caller
    // counts a dropped_queue_full and lets it go.
    [[nodiscard]] bool push(SegmentPtr& segment) noexcept {
        std::size_t position = 0;
        if (!queue_.try_push(segment, position)) {
            return false;
        }
        // Dekker-style handshake with prepare_to_sleep(), all in the seq_cst total order: the
        // push published its cell with a seq_cst store, then this seq_cst load reads the
        // threshold; the consumer stores the threshold, then checks the cell that completes it
        // with a seq_cst load. Whichever comes second sees the other: either the consumer sees
        // that cell published and stays awake, or the producer of that cell sees the threshold,
        // counts itself at or past it and wakes the consumer. Relaxed would allow both to miss.
        const std::size_t wake_at = wake_at_.load(std::memory_order_seq_cst);
        if (wake_at == 0) [[likely]] {
            return true;  // the consumer is awake
        }
        // The acquire above synchronises with the consumer's store of the threshold, so the
        // consumer's position read here is the one it slept at (or a later one).
        std::size_t expected = wake_at;
        if (queue_.items_through(position) >= wake_at &&
            wake_at_.compare_exchange_strong(expected, 0, std::memory_order_seq_cst)) {
            // Only the producer that clears the threshold wakes: one call per sleep.
            if (waker_ != nullptr) {
                waker_->wakeup();
            }
        }
        return true;
    }

    // Consumer only. Moves the oldest segment into `out`; false when none is ready.
    [[nodiscard]] bool pop(SegmentPtr& out) noexcept { return queue_.try_pop(out); }

    // Consumer only, right before it blocks. `threshold`: how many queued segments justify a
    // wake-up (clamped to 1..capacity()). True: the consumer may sleep; the push that brings the
    // queue to `threshold` segments calls the waker. False: the queue holds `threshold` segments
    // already (or they just arrived), so the consumer must pop instead of sleeping; the
    // announcement is withdrawn.
    // IMPORTANT: with a threshold above 1 the consumer is NOT woken for fewer segments; it must
    // bound its wait by its own deadline (e.g. the open batch's linger).
    [[nodiscard]] bool prepare_to_sleep(std::size_t threshold = 1) noexcept;

    // Consumer only, after its wait returned (woken, timed out, or for any other reason).
    void woke_up() noexcept { wake_at_.store(0, std::memory_order_relaxed); }

    [[nodiscard]] std::size_t size_approx() const noexcept { return queue_.size_approx(); }
    [[nodiscard]] std::size_t capacity() const noexcept { return queue_.capacity(); }

private:
    BoundedMpscQueue<SegmentPtr> queue_;
    Waker* waker_ = nullptr;  // set_waker(); null: nobody to wake
    // The consumer's wake-up threshold while it sleeps, 0 while it is awake. Written by the
    // consumer and by the producer that wakes it; on its own line so the producers' load after
    // every push does not share a line with the queue's tail.
    alignas(cache_line_size) std::atomic<std::size_t> wake_at_{0};
};

}  // namespace xrayd
