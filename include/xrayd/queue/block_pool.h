// BlockPool: size-classed memory blocks recycled across threads, so the hot path stops allocating.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include <xrayd/queue/mpsc_queue.h>

namespace xrayd {

// The size classes of a pool: powers of two from min_block to max_block (both rounded up to a
// power of two), then, when top_block > max_block, one last class of exactly top_block bytes
// (e.g. "64 KiB + room for a header", so a maximal datagram does not take a 128 KiB block).
// Requests beyond the last class are served from the heap at their exact size, never kept.
struct BlockPoolShape {
    std::size_t min_block = 256;
    std::size_t max_block = 64u << 10;
    std::size_t top_block = 0;
};

// A block handed out by BlockPool::acquire(). `size` (>= what was asked for) is what the block
// really occupies: what its owner charges to the MemoryBudget.
struct PoolBlock {
    void* data = nullptr;
    std::size_t size = 0;
    std::uint8_t size_class = 0;  // what recycle() needs back; BlockPool::unpooled for heap blocks
};

// Blocks come from the heap the first time their class has none idle (warm-up) and go back to
// an idle list when released, for the next acquire() of the same class, from any thread. Each
// class's idle list is a bounded lock-free MPMC ring (Vyukov) of block pointers, created on the
// class's first recycle, so classes never used cost nothing. Idle blocks are not charged to any
// budget; instead the pool keeps at most max_idle_bytes of them (and at most ring capacity per
// class) and frees the rest, so idle memory is bounded by the configuration, not by history.
//
// Threads: acquire() and recycle() from any thread, concurrently; lock-free, never block, never
// throw. trim() from any thread. Construction and destruction on one thread with no other user.
// IMPORTANT: a block goes back exactly once, to the pool that made it, with the size_class it
// came with; blocks still out when the pool is destroyed are the owners' to free (recycle()
// must not be called after destruction). Data in a recycled block is not cleared.
class BlockPool {
public:
    static constexpr std::uint8_t unpooled = 0xff;  // a heap block of exact size, never kept
    static constexpr std::size_t max_classes = 24;
    static constexpr std::size_t max_ring_capacity = 8192;  // idle blocks per class, at most

    // Allocates nothing: rings are created on first use.
    BlockPool(BlockPoolShape shape, std::size_t max_idle_bytes) noexcept;
    ~BlockPool();
    BlockPool(const BlockPool&) = delete;
    BlockPool& operator=(const BlockPool&) = delete;

    // The size of the block acquire(n) returns (what its owner will be charged).
    [[nodiscard]] std::size_t block_size(std::size_t n) const noexcept;

    // A block of block_size(n) bytes, aligned for any scalar type: an idle one of its class,
    // else a new one from the heap. data == nullptr only when the heap allocation failed.
    [[nodiscard]] PoolBlock acquire(std::size_t n) noexcept;

    // Gives back a block from acquire(): kept idle while the pool's idle bytes stay within
    // max_idle_bytes and its class's ring has room, freed otherwise. nullptr is ignored.
    void recycle(void* data, std::uint8_t size_class) noexcept;
    void recycle(const PoolBlock& block) noexcept { recycle(block.data, block.size_class); }

    // Frees every idle block (e.g. when the daemon goes idle). Safe with concurrent users.
    void trim() noexcept;

    // Bytes of idle blocks held (exact when no other thread is using the pool).
    [[nodiscard]] std::size_t idle_bytes() const noexcept {
        return idle_bytes_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::size_t max_idle_bytes() const noexcept { return max_idle_bytes_; }

private:
    struct FreeRing;
    struct SizeClass {
        std::size_t block_size = 0;
        std::size_t ring_capacity = 0;  // 0: blocks of this class are never kept
        std::atomic<FreeRing*> ring{nullptr};
    };

    [[nodiscard]] std::size_t class_of(std::size_t n) const noexcept;  // class_count_: none
    [[nodiscard]] FreeRing* ring_of(SizeClass& c) noexcept;            // creates it if needed

    std::array<SizeClass, max_classes> classes_;
    std::size_t class_count_ = 0;
    std::size_t pow2_count_ = 0;  // classes that are powers of two (the top class follows)
    unsigned min_shift_ = 0;      // log2(min_block)
    std::size_t max_idle_bytes_;
    // Shared by every thread that acquires or recycles: on its own cache line.
    alignas(cache_line_size) std::atomic<std::size_t> idle_bytes_{0};
};

}  // namespace xrayd
