// DeliveryHint: what the segment queue's consumer would like producers to deliver per wake-up.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <xrayd/common/time.h>

namespace xrayd {

// Written by the consumer (the pipeline) on every loop turn, read by the producers (the
// receivers, through their Ingest) when they choose how long to sleep: a receiver that hands
// over about `room` segments at once, instead of one wake-up per arrival, completes the open
// batch in one go. Every field is independent and relaxed: a stale value only costs an extra
// or a later wake-up, never a segment; the hold limit bounds the latter.
struct DeliveryHint {
    // Segments that would complete the open batch (a whole batch when none is open).
    std::atomic<std::uint32_t> room{0};
    // Segments in a whole batch, by count and by the bytes of recent documents.
    std::atomic<std::uint32_t> full{0};
    // Longest a producer may hold a segment before delivering it (half the batcher's linger,
    // in Clock ticks); 0: deliver at once.
    std::atomic<Clock::rep> hold_limit{0};

    // How many segments one of `sharers` producers should gather before delivering, given
    // `queued` segments already delivered but not yet taken; 0 when there is no hint yet.
    [[nodiscard]] std::size_t wanted(std::size_t queued, std::size_t sharers) const noexcept {
        const std::size_t r = room.load(std::memory_order_relaxed);
        const std::size_t f = full.load(std::memory_order_relaxed);
        if (r == 0 || f == 0) {
            return 0;
        }
        // What is queued goes into the open batch first; past it, into whole batches.
        std::size_t need = r > queued ? r - queued : f - (queued - r) % f;
        if (sharers > 1) {
            need = (need + sharers - 1) / sharers;
        }
        return need;
    }
    [[nodiscard]] Duration hold() const noexcept {
        return Duration(hold_limit.load(std::memory_order_relaxed));
    }
};

}  // namespace xrayd
