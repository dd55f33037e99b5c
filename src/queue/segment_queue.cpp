// SegmentQueue: construction and the consumer's side of the sleep/wake protocol.
#include <xrayd/queue/segment_queue.h>

#include <utility>

namespace xrayd {

SegmentQueue::SegmentQueue(std::size_t capacity) : queue_(capacity) {}

void SegmentQueue::set_waker(std::function<void()> wake) {
    if (wake) {
        wake_ = std::move(wake);
    }
}

bool SegmentQueue::prepare_to_sleep() noexcept {
    // The other half of the handshake in push(): seq_cst store of the flag, then ready()'s
    // seq_cst load of the next cell.
    sleeping_.store(true, std::memory_order_seq_cst);
    if (queue_.ready()) {
        sleeping_.store(false, std::memory_order_relaxed);
        return false;
    }
    return true;
}

}  // namespace xrayd
