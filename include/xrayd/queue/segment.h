// Segment: one accepted segment document, owned, with its bytes charged to the MemoryBudget.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include <xrayd/common/time.h>
#include <xrayd/queue/memory_budget.h>

namespace xrayd {

inline constexpr std::size_t segment_id_max = 16;        // 16 hex digits
inline constexpr std::size_t segment_trace_id_max = 35;  // "1-" 8 hex "-" 24 hex

class Segment;

struct SegmentDeleter {
    void operator()(Segment* s) const noexcept;
};

// Move-only owner. Destroying it frees the bytes and returns them to the budget.
using SegmentPtr = std::unique_ptr<Segment, SegmentDeleter>;

// Header and body in one allocation (the body follows the object). Immutable once made.
class Segment {
public:
    [[nodiscard]] std::string_view body() const noexcept {
        return {reinterpret_cast<const char*>(this + 1), size_};
    }
    [[nodiscard]] std::string_view id() const noexcept { return {id_, id_len_}; }
    [[nodiscard]] std::string_view trace_id() const noexcept { return {trace_id_, trace_id_len_}; }
    [[nodiscard]] TimePoint received_at() const noexcept { return received_at_; }
    // Bytes charged to the budget: the object plus the body.
    [[nodiscard]] std::size_t charged_bytes() const noexcept { return sizeof(Segment) + size_; }

    // Copies `body` into a new segment, charging the budget. nullptr when the budget has no
    // room (or, rarely, when the allocation fails): the caller counts a buffer-full drop.
    // `id` and `trace_id` are cut to their maximum lengths.
    [[nodiscard]] static SegmentPtr make(MemoryBudget& budget, std::string_view body,
                                         std::string_view id, std::string_view trace_id,
                                         TimePoint received_at) noexcept;

private:
    Segment() = default;
    friend struct SegmentDeleter;

    MemoryBudget* budget_ = nullptr;
    TimePoint received_at_{};
    std::uint32_t size_ = 0;
    std::uint8_t id_len_ = 0;
    std::uint8_t trace_id_len_ = 0;
    char id_[segment_id_max]{};
    char trace_id_[segment_trace_id_max]{};
};

}  // namespace xrayd
