// BlockPool: size classes, the per-class lock-free rings of idle blocks, and the idle bound.
#include <xrayd/queue/block_pool.h>

#include <algorithm>
#include <bit>
#include <memory>
#include <new>

namespace xrayd {

// A bounded MPMC ring of idle block pointers (Vyukov): each cell's sequence number says whether
// it is free for the pusher of lap n or full for the popper of lap n. Both sides claim a
// position with one CAS on their own counter; no ABA problem (positions only grow) and no
// block is ever dereferenced by the ring, so blocks can be freed while other threads use it.
struct BlockPool::FreeRing {
    struct Cell {
        std::atomic<std::size_t> sequence;
        void* block;
    };

    alignas(cache_line_size) std::atomic<std::size_t> push_pos{0};
    alignas(cache_line_size) std::atomic<std::size_t> pop_pos{0};
    alignas(cache_line_size) std::size_t mask = 0;
    Cell* cells = nullptr;  // follows this header in the same allocation

    // capacity: a power of two, at least 2. nullptr when out of memory.
    static FreeRing* create(std::size_t capacity) noexcept {
        const std::size_t bytes = sizeof(FreeRing) + capacity * sizeof(Cell);
        void* mem = ::operator new (bytes, std::align_val_t{alignof(FreeRing)}, std::nothrow);
        if (mem == nullptr) {
            return nullptr;
        }
        auto* ring = new (mem) FreeRing();
        ring->mask = capacity - 1;
        ring->cells = reinterpret_cast<Cell*>(ring + 1);
        for (std::size_t i = 0; i < capacity; ++i) {
            std::construct_at(&ring->cells[i]);
            ring->cells[i].sequence.store(i, std::memory_order_relaxed);
            ring->cells[i].block = nullptr;
        }
        return ring;
    }

    static void destroy(FreeRing* ring) noexcept {
        for (std::size_t i = 0; i <= ring->mask; ++i) {
            std::destroy_at(&ring->cells[i]);
        }
        ring->~FreeRing();
        ::operator delete (ring, std::align_val_t{alignof(FreeRing)});
    }

    [[nodiscard]] bool push(void* block) noexcept {
        std::size_t pos = push_pos.load(std::memory_order_relaxed);
        Cell* cell = nullptr;
        for (;;) {
            cell = &cells[pos & mask];
            const std::size_t seq = cell->sequence.load(std::memory_order_acquire);
            const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos);
            if (diff == 0) {
                if (push_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    break;
                }
            } else if (diff < 0) {
                return false;  // full: the cell still holds last lap's block
            } else {
                pos = push_pos.load(std::memory_order_relaxed);
            }
        }
        cell->block = block;
        cell->sequence.store(pos + 1, std::memory_order_release);
        return true;
    }

    [[nodiscard]] void* pop() noexcept {
        std::size_t pos = pop_pos.load(std::memory_order_relaxed);
        Cell* cell = nullptr;
        for (;;) {
            cell = &cells[pos & mask];
            const std::size_t seq = cell->sequence.load(std::memory_order_acquire);
            const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos + 1);
            if (diff == 0) {
                if (pop_pos.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    break;
                }
            } else if (diff < 0) {
                return nullptr;  // empty
            } else {
                pos = pop_pos.load(std::memory_order_relaxed);
            }
        }
        void* block = cell->block;
        cell->sequence.store(pos + mask + 1, std::memory_order_release);  // free for next lap
        return block;
    }
};

BlockPool::BlockPool(BlockPoolShape shape, std::size_t max_idle_bytes) noexcept
    : max_idle_bytes_(max_idle_bytes) {
    const std::size_t min_block = std::bit_ceil(std::max<std::size_t>(shape.min_block, 64));
    const std::size_t max_block = std::max(min_block, std::bit_ceil(shape.max_block));
    min_shift_ = static_cast<unsigned>(std::countr_zero(min_block));
    for (std::size_t size = min_block; size <= max_block && class_count_ < max_classes - 1;
         size <<= 1) {
        classes_[class_count_++].block_size = size;
    }
    pow2_count_ = class_count_;
    if (shape.top_block > classes_[class_count_ - 1].block_size) {
        classes_[class_count_++].block_size = shape.top_block;
    }
    for (std::size_t k = 0; k < class_count_; ++k) {
        const std::size_t fit =
            std::min(max_idle_bytes / classes_[k].block_size, max_ring_capacity);
        classes_[k].ring_capacity = fit >= 2 ? std::bit_floor(fit) : 0;
    }
}

BlockPool::~BlockPool() {
    trim();
    for (std::size_t k = 0; k < class_count_; ++k) {
        if (FreeRing* ring = classes_[k].ring.load(std::memory_order_relaxed)) {
            FreeRing::destroy(ring);
        }
    }
}

std::size_t BlockPool::class_of(std::size_t n) const noexcept {
    const std::size_t largest_pow2 = classes_[pow2_count_ - 1].block_size;
    if (n <= largest_pow2) {
        const std::size_t rounded = std::bit_ceil(std::max<std::size_t>(n, 1));
        const auto shift = static_cast<unsigned>(std::countr_zero(rounded));
        return shift <= min_shift_ ? 0 : shift - min_shift_;
    }
    if (class_count_ > pow2_count_ && n <= classes_[pow2_count_].block_size) {
        return pow2_count_;
    }
    return class_count_;
}

std::size_t BlockPool::block_size(std::size_t n) const noexcept {
    const std::size_t k = class_of(n);
    return k < class_count_ ? classes_[k].block_size : n;
}

BlockPool::FreeRing* BlockPool::ring_of(SizeClass& c) noexcept {
    FreeRing* ring = c.ring.load(std::memory_order_acquire);
    if (ring != nullptr || c.ring_capacity == 0) {
        return ring;
    }
    FreeRing* created = FreeRing::create(c.ring_capacity);
    if (created == nullptr) {
        return nullptr;
    }
    // Another thread may have installed one meanwhile: keep theirs.
    if (c.ring.compare_exchange_strong(ring, created, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return created;
    }
    FreeRing::destroy(created);
    return ring;
}

PoolBlock BlockPool::acquire(std::size_t n) noexcept {
    const std::size_t k = class_of(n);
    if (k == class_count_) {
        return PoolBlock{::operator new(n, std::nothrow), n, unpooled};
    }
    SizeClass& c = classes_[k];
    if (FreeRing* ring = c.ring.load(std::memory_order_acquire)) {
        if (void* block = ring->pop()) {
            idle_bytes_.fetch_sub(c.block_size, std::memory_order_relaxed);
            return PoolBlock{block, c.block_size, static_cast<std::uint8_t>(k)};
        }
    }
    void* fresh = ::operator new(c.block_size, std::nothrow);
    return PoolBlock{fresh, fresh != nullptr ? c.block_size : 0, static_cast<std::uint8_t>(k)};
}

void BlockPool::recycle(void* data, std::uint8_t size_class) noexcept {
    if (data == nullptr) {
        return;
    }
    if (size_class >= class_count_) {
        ::operator delete(data);
        return;
    }
    SizeClass& c = classes_[size_class];
    // Claim room under the idle bound first, so concurrent recyclers cannot overshoot it.
    const std::size_t before = idle_bytes_.fetch_add(c.block_size, std::memory_order_relaxed);
    if (before + c.block_size <= max_idle_bytes_) {
        if (FreeRing* ring = ring_of(c); ring != nullptr && ring->push(data)) {
            return;
        }
    }
    idle_bytes_.fetch_sub(c.block_size, std::memory_order_relaxed);
    ::operator delete(data);
}

void BlockPool::trim() noexcept {
    for (std::size_t k = 0; k < class_count_; ++k) {
        FreeRing* ring = classes_[k].ring.load(std::memory_order_acquire);
        if (ring == nullptr) {
            continue;
        }
        while (void* block = ring->pop()) {
            idle_bytes_.fetch_sub(classes_[k].block_size, std::memory_order_relaxed);
            ::operator delete(block);
        }
    }
}

}  // namespace xrayd
