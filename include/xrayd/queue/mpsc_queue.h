// BoundedMpscQueue: a bounded, lock-free, multi-producer single-consumer FIFO.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

namespace xrayd {

// Cache line size used to keep producer-side and consumer-side state apart. A constant rather
// than std::hardware_destructive_interference_size, whose value g++ warns may change.
inline constexpr std::size_t cache_line_size = 64;

// A Vyukov bounded array queue: every cell carries a sequence number that says whose turn it is
// (a producer's for lap n, or the consumer's). Producers claim a position with one CAS on the
// shared tail, fill the cell, then publish it by advancing its sequence; the single consumer
// reads cells in order without any read-modify-write. No allocation after construction.
//
// Threads: try_push() from any number of threads; try_pop() and ready() from ONE consumer thread
// at a time; size_approx() and capacity() from any thread.
// IMPORTANT: a producer that stalls between claiming and publishing a cell holds up the consumer
// at that cell (later cells are not visible until it finishes); that is the price of FIFO order.
//
// T must be default-constructible and nothrow move-assignable (e.g. std::unique_ptr). Items
// left in the queue are destroyed with it.
template <typename T>
class BoundedMpscQueue {
    static_assert(std::is_nothrow_move_assignable_v<T>, "T must be nothrow move-assignable");
    static_assert(std::is_default_constructible_v<T>, "T must be default-constructible");

public:
    // Capacity is rounded up to a power of two, at least 2 (with one cell, "full" and "free for
    // the next lap" would have the same sequence number). Allocates: start-up only.
    explicit BoundedMpscQueue(std::size_t capacity)
        : mask_(std::bit_ceil(std::max<std::size_t>(capacity, 2)) - 1),
          cells_(std::make_unique<Cell[]>(mask_ + 1)) {
        for (std::size_t i = 0; i <= mask_; ++i) {
            cells_[i].sequence.store(i, std::memory_order_relaxed);
        }
    }
    BoundedMpscQueue(const BoundedMpscQueue&) = delete;
    BoundedMpscQueue& operator=(const BoundedMpscQueue&) = delete;

    // Producers (any thread). On success moves from `item`; when the queue is full returns false
    // and leaves `item` untouched, so the caller can count and drop it.
    [[nodiscard]] bool try_push(T& item) noexcept {
        std::size_t position = 0;
        return try_push(item, position);
    }

    // As try_push(item); on success also gives the position the item took (its sequence number
    // since construction: the n-th item pushed has position n - 1). See items_through().
    [[nodiscard]] bool try_push(T& item, std::size_t& position) noexcept {
        std::size_t pos = tail_.load(std::memory_order_relaxed);
        Cell* cell = nullptr;
        for (;;) {
            cell = &cells_[pos & mask_];
            // Acquire: if the consumer freed this cell, its move-out happened before our write.
            const std::size_t seq = cell->sequence.load(std::memory_order_acquire);
            const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos);
            if (diff == 0) {
                // The cell is free for this lap; claim the position (a failed CAS reloads pos).
                if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    break;
                }
            } else if (diff < 0) {
                // The cell still holds the item from the previous lap: full.
                return false;
            } else {
                // Another producer claimed pos already; catch up.
                pos = tail_.load(std::memory_order_relaxed);
            }
        }
        cell->value = std::move(item);
        // Publishes the value to the consumer. seq_cst rather than release so that a wake-up
        // protocol on top (SegmentQueue) can order "publish, then read the sleep flag" against
        // the consumer's "set the flag, then ready()" without standalone fences (which TSan
        // cannot check). Same cost as release + fence on x86 (one locked instruction), and on
        // ARMv8 the same instruction as a release store.
        cell->sequence.store(pos + 1, std::memory_order_seq_cst);
        position = pos;
        return true;
    }

    // Consumer only. Moves the oldest published item into `out`; false when there is none.
    [[nodiscard]] bool try_pop(T& out) noexcept {
        const std::size_t pos = head_.load(std::memory_order_relaxed);
        Cell& cell = cells_[pos & mask_];
        if (cell.sequence.load(std::memory_order_acquire) != pos + 1) {
            return false;
        }
        out = std::move(cell.value);
        cell.value = T{};  // do not keep the moved-from husk's resources alive in the ring
        // Release: the cell is free for the producer of the next lap.
        cell.sequence.store(pos + mask_ + 1, std::memory_order_release);
        head_.store(pos + 1, std::memory_order_relaxed);
        return true;
    }

    // Consumer only: whether try_pop() would succeed now (the next item is published). A
    // seq_cst load, the other half of the ordering described in try_push().
    [[nodiscard]] bool ready() const noexcept {
        const std::size_t pos = head_.load(std::memory_order_relaxed);
        return cells_[pos & mask_].sequence.load(std::memory_order_seq_cst) == pos + 1;
    }

    // Consumer only: whether the item `offset` places behind the next one to pop is published
    // (offset 0 is ready()). A seq_cst load, like ready(). `offset` < capacity().
    [[nodiscard]] bool ready_at(std::size_t offset) const noexcept {
        const std::size_t pos = head_.load(std::memory_order_relaxed) + offset;
        return cells_[pos & mask_].sequence.load(std::memory_order_seq_cst) == pos + 1;
    }

    // Any thread: how many items a queue holding the item at `position` (from try_push) holds
    // up to and including it, counted from the consumer's position (0 if it was popped).
    // IMPORTANT: the consumer's position is read relaxed; a producer gets a fresh enough one
    // only after an acquire that synchronises with the consumer (SegmentQueue's sleep flag).
    [[nodiscard]] std::size_t items_through(std::size_t position) const noexcept {
        const std::size_t head = head_.load(std::memory_order_relaxed);
        return position >= head ? position - head + 1 : 0;
    }

    // Items claimed by producers and not yet popped; exact only when no thread is running.
    [[nodiscard]] std::size_t size_approx() const noexcept {
        // Head first: the tail read after it is never behind it.
        const std::size_t head = head_.load(std::memory_order_relaxed);
        const std::size_t tail = tail_.load(std::memory_order_relaxed);
        return tail >= head ? std::min(tail - head, capacity()) : 0;
    }

    [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }

private:
    struct Cell {
        std::atomic<std::size_t> sequence{0};
        T value{};
    };

    // Producers' position (shared, CAS'd) and the consumer's position each own a cache line;
    // the read-only ring description sits on a third one.
    alignas(cache_line_size) std::atomic<std::size_t> tail_{0};
    alignas(cache_line_size) std::atomic<std::size_t> head_{0};
    alignas(cache_line_size) const std::size_t mask_;
    const std::unique_ptr<Cell[]> cells_;
};

}  // namespace xrayd
