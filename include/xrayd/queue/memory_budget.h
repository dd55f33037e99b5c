// MemoryBudget: the byte limit (-m) on everything xrayd holds for segments.
#pragma once

#include <atomic>
#include <cstddef>

#include <xrayd/queue/block_pool.h>

namespace xrayd {

// Size classes of the segment pool: 256 B to 64 KiB, then 64 KiB + room for the Segment
// header, so that the largest UDP payload takes one block just over its size.
inline constexpr BlockPoolShape segment_pool_shape{256, 64u << 10, (64u << 10) + 256};
// Size classes of the batch pool (bodies and segment refs): 4 KiB to 8 MiB.
inline constexpr BlockPoolShape batch_pool_shape{4u << 10, 8u << 20, 0};

// Counts bytes held for segments and batches against the configured limit. Lock-free; any
// thread. Holders release exactly what they reserved.
//
// It also owns the pools that segments and batch buffers are carved from, because everything
// charged here must already not outlive it. Pooled holders charge the block size (what they
// really occupy). Idle pool blocks are charged to no one but bounded: each pool keeps at most
// half the limit idle, so the memory held for segments and batches stays within twice the
// limit (plus force_reserve()d overshoot), and within the limit while nothing sits idle.
class MemoryBudget {
public:
    // Allocates nothing (pools fill on first use).
    explicit MemoryBudget(std::size_t limit_bytes) noexcept
        : limit_(limit_bytes),
          segment_blocks_(segment_pool_shape, limit_bytes / 2),
          batch_blocks_(batch_pool_shape, limit_bytes / 2) {}
    MemoryBudget(const MemoryBudget&) = delete;
    MemoryBudget& operator=(const MemoryBudget&) = delete;

    // Reserves n bytes if that keeps usage within the limit. False (and nothing reserved)
    // otherwise: the caller drops the new segment and counts it.
    [[nodiscard]] bool try_reserve(std::size_t n) noexcept {
        std::size_t used = used_.load(std::memory_order_relaxed);
        do {
            if (n > limit_ || used > limit_ - n) {
                return false;
            }
        } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
        return true;
    }
    // Reserves n bytes even past the limit: for data already held that changes form (a
    // segment escaped into a batch body), which must stay counted but must not be lost.
    void force_reserve(std::size_t n) noexcept { used_.fetch_add(n, std::memory_order_relaxed); }
    void release(std::size_t n) noexcept { used_.fetch_sub(n, std::memory_order_relaxed); }

    [[nodiscard]] std::size_t used() const noexcept {
        return used_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

    // Where Segment::make_pooled() takes segment blocks from. Any thread.
    [[nodiscard]] BlockPool& segment_blocks() noexcept { return segment_blocks_; }
    // Where Batch takes its body and segment-ref buffers from. Any thread.
    [[nodiscard]] BlockPool& batch_blocks() noexcept { return batch_blocks_; }

private:
    const std::size_t limit_;
    std::atomic<std::size_t> used_{0};
    BlockPool segment_blocks_;
    BlockPool batch_blocks_;
};

}  // namespace xrayd
