// SegmentQueue: construction and the consumer's side of the sleep/wake protocol.
#include <xrayd/queue/segment_queue.h>

#include <algorithm>

namespace xrayd {

SegmentQueue::SegmentQueue(std::size_t capacity) : queue_(capacity) {}

bool SegmentQueue::prepare_to_sleep(std::size_t threshold) noexcept {
    const std::size_t wake_at = std::clamp<std::size_t>(threshold, 1, queue_.capacity());
    // The other half of the handshake in push(): seq_cst store of the threshold, then a seq_cst
    // load of the cell whose item would reach it. Cells before it need no check: their
    // producers count fewer than `wake_at` and would not wake us anyway.
    wake_at_.store(wake_at, std::memory_order_seq_cst);
    if (queue_.ready_at(wake_at - 1)) {
        if (wake_at == 1 || queue_.ready_at(0)) {
            wake_at_.store(0, std::memory_order_relaxed);
            return false;  // there is something to pop
        }
        // A later item is published but the head's producer has claimed its cell and not yet
        // published it: pop() would fail, and not sleeping would spin until it does. Sleep
        // with threshold 1 instead: that producer's push then wakes us (same handshake).
        // A CAS, not a store: the producer of the item at `wake_at` may have claimed this
        // announcement (set 0) and be calling the waker. A store of 1 would then let a second
        // producer wake us again for the same sleep; instead that wake is the one we sleep on.
        std::size_t expected = wake_at;
        if (!wake_at_.compare_exchange_strong(expected, 1, std::memory_order_seq_cst)) {
            return true;
        }
        if (queue_.ready_at(0)) {
            wake_at_.store(0, std::memory_order_relaxed);
            return false;
        }
    }
    return true;
}

}  // namespace xrayd
