// Segment: one accepted segment document, owned, with its bytes charged to the MemoryBudget.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include <xrayd/common/time.h>
#include <xrayd/queue/block_pool.h>
#include <xrayd/queue/memory_budget.h>

namespace xrayd {

inline constexpr std::size_t segment_id_max = 16;        // 16 hex digits
inline constexpr std::size_t segment_trace_id_max = 35;  // "1-" 8 hex "-" 24 hex

class Segment;

struct SegmentDeleter {
    void operator()(Segment* s) const noexcept;
};

// Move-only owner. Destroying it gives the block back (to the pool, or the heap) and returns
// its charge to the budget, on whatever thread that happens.
using SegmentPtr = std::unique_ptr<Segment, SegmentDeleter>;

// Header and body in one block (the body follows the object). Immutable once made.
class Segment {
public:
    [[nodiscard]] std::string_view body() const noexcept {
        return {reinterpret_cast<const char*>(this + 1), size_};
    }
    [[nodiscard]] std::string_view id() const noexcept { return {id_, id_len_}; }
    [[nodiscard]] std::string_view trace_id() const noexcept { return {trace_id_, trace_id_len_}; }
    [[nodiscard]] TimePoint received_at() const noexcept { return received_at_; }
    // Bytes charged to the budget: the block the segment occupies (object plus body, rounded
    // up to the pool's size class for make_pooled()).
    [[nodiscard]] std::size_t charged_bytes() const noexcept { return charged_; }

    // Copies `body` into a new segment of exactly sizeof(Segment) + body.size() bytes, newly
    // allocated, charging exactly that. nullptr when the budget has no room (or, rarely, when
    // the allocation fails): the caller counts a buffer-full drop. `id` and `trace_id` are cut
    // to their maximum lengths. For tests and cold paths; the data plane uses make_pooled().
    [[nodiscard]] static SegmentPtr make(MemoryBudget& budget, std::string_view body,
                                         std::string_view id, std::string_view trace_id,
                                         TimePoint received_at) noexcept;

    // Same, in a block from budget.segment_blocks(), charging the block's size: after warm-up
    // (once the pool holds idle blocks of the classes in use) this allocates nothing. Any
    // thread; the segment may be destroyed on any other thread.
    [[nodiscard]] static SegmentPtr make_pooled(MemoryBudget& budget, std::string_view body,
                                                std::string_view id, std::string_view trace_id,
                                                TimePoint received_at) noexcept;

private:
    Segment() = default;
    friend struct SegmentDeleter;

    [[nodiscard]] static SegmentPtr construct(MemoryBudget& budget, const PoolBlock& block,
                                              std::string_view body, std::string_view id,
                                              std::string_view trace_id,
                                              TimePoint received_at) noexcept;

    MemoryBudget* budget_ = nullptr;
    TimePoint received_at_{};
    std::uint32_t size_ = 0;
    std::uint32_t charged_ = 0;
    std::uint8_t id_len_ = 0;
    std::uint8_t trace_id_len_ = 0;
    std::uint8_t size_class_ = BlockPool::unpooled;  // where the block goes back
    char id_[segment_id_max]{};
    char trace_id_[segment_trace_id_max]{};
};

}  // namespace xrayd
