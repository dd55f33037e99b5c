// SegmentQueue: the hand-off of segments from the receiver threads to the pipeline thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>

#include <xrayd/queue/mpsc_queue.h>
#include <xrayd/queue/segment.h>

namespace xrayd {

// A BoundedMpscQueue<SegmentPtr> plus a sleep/wake protocol: producers call the waker only when
// the consumer has announced it is about to sleep, so a busy pipeline costs no syscall per
// segment. A full queue is the producer's counted drop, never a block.
//
// Consumer loop (the pipeline thread):
//     while (queue.pop(s)) { ... }
//     if (queue.prepare_to_sleep()) { wait_for_wake_or_timeout(); queue.woke_up(); }
//
// Threads: push() from any number of producer threads; pop(), prepare_to_sleep() and woke_up()
// from the one consumer thread; size_approx() from any thread. set_waker() before any of them.
class SegmentQueue {
public:
    // Capacity rounded up to a power of two (at least 2). Allocates: start-up only.
    explicit SegmentQueue(std::size_t capacity);
    SegmentQueue(const SegmentQueue&) = delete;
    SegmentQueue& operator=(const SegmentQueue&) = delete;

    // Sets what producers call to end the consumer's wait. Call before any thread uses the queue.
    // IMPORTANT: the wake must be sticky (an eventfd, a pipe, or a flag set under the condition
    // variable's mutex): it can arrive after prepare_to_sleep() but before the consumer starts
    // waiting, and must then end that wait at once. It runs on producer threads, must not throw,
    // and is called at most once per prepare_to_sleep() call.
    void set_waker(std::function<void()> wake);

    // Producers. On success takes the segment (leaves `segment` null) and, if the consumer is
    // asleep or about to be, wakes it. False when full: `segment` is untouched, the caller
    // counts a dropped_queue_full and lets it go.
    [[nodiscard]] bool push(SegmentPtr& segment) noexcept {
        if (!queue_.try_push(segment)) {
            return false;
        }
        // Dekker-style handshake with prepare_to_sleep(), all in the seq_cst total order: the
        // push published its cell with a seq_cst store, then this seq_cst load reads the flag;
        // the consumer stores the flag, then re-checks the cell with a seq_cst load. Whichever
        // comes second sees the other: either the consumer's re-check sees the cell, or this
        // load sees sleeping_ == true and wakes it. Relaxed would allow both to miss.
        if (sleeping_.load(std::memory_order_seq_cst) &&
            sleeping_.exchange(false, std::memory_order_seq_cst)) {
            wake_();  // only the producer that flips the flag wakes: one call per sleep
        }
        return true;
    }

    // Consumer only. Moves the oldest segment into `out`; false when none is ready.
    [[nodiscard]] bool pop(SegmentPtr& out) noexcept { return queue_.try_pop(out); }

    // Consumer only, right before it blocks. True: the consumer may sleep; a producer that
    // pushes from now on calls the waker. False: segments are (or just became) ready, so the
    // consumer must pop instead of sleeping; the announcement is withdrawn.
    [[nodiscard]] bool prepare_to_sleep() noexcept;

    // Consumer only, after its wait returned (woken, timed out, or for any other reason).
    void woke_up() noexcept { sleeping_.store(false, std::memory_order_relaxed); }

    [[nodiscard]] std::size_t size_approx() const noexcept { return queue_.size_approx(); }
    [[nodiscard]] std::size_t capacity() const noexcept { return queue_.capacity(); }

private:
    BoundedMpscQueue<SegmentPtr> queue_;
    std::function<void()> wake_ = [] {};
    // Written by the consumer and by the producer that wakes it; on its own line so the
    // producers' relaxed load after every push does not share a line with the queue's tail.
    alignas(cache_line_size) std::atomic<bool> sleeping_{false};
};

}  // namespace xrayd
