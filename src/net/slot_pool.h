// SlotPool: preallocated, padded receive slots shared by every receiver backend.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <utility>

#include <xrayd/common/result.h>
#include <xrayd/net/mmap_area.h>

namespace xrayd::net_detail {

inline constexpr std::size_t cache_line_bytes = 64;

// `count` slots in one page-aligned mapping. Slot i starts at i * stride(); each holds up to
// slot_bytes() of datagram followed by at least padding() writable bytes. stride() is a
// multiple of the cache line so slots never share a line. Move-only; one thread uses it.
class SlotPool {
public:
    SlotPool() noexcept = default;

    // The error is an errno value: EINVAL for zero sizes, ENOMEM on overflow or no memory.
    [[nodiscard]] static Result<SlotPool, int> create(std::size_t count, std::size_t slot_bytes,
                                                      std::size_t padding) noexcept {
        if (count == 0 || slot_bytes == 0) {
            return fail(EINVAL);
        }
        constexpr std::size_t limit = SIZE_MAX / 4;
        if (slot_bytes > limit || padding > limit) {
            return fail(ENOMEM);
        }
        const std::size_t stride =
            (slot_bytes + padding + cache_line_bytes - 1) / cache_line_bytes * cache_line_bytes;
        if (count > limit / stride) {
            return fail(ENOMEM);
        }
        auto area = MmapArea::create(count * stride);
        if (!area) {
            return fail(area.error());
        }
        // Every datagram lands at the start of a slot: prefault that page of each, so small
        // datagrams never stall on a first-touch fault. The rest of a 64 KiB slot is faulted in
        // only by the first datagram large enough to reach it (once), instead of making every
        // slot resident up front (8 MiB for 128 slots that mostly hold 300 B).
        char* base = area.value().data();
        for (std::size_t i = 0; i < count; ++i) {
            *static_cast<volatile char*>(base + i * stride) = 0;
        }
        SlotPool pool;
        pool.area_ = std::move(area.value());
        pool.count_ = count;
        pool.stride_ = stride;
        pool.slot_bytes_ = slot_bytes;
        pool.padding_ = stride - slot_bytes;  // all of the rounding is usable padding
        return pool;
    }

    // IMPORTANT: i < count().
    [[nodiscard]] char* slot(std::size_t i) const noexcept { return area_.data() + i * stride_; }
    [[nodiscard]] std::size_t count() const noexcept { return count_; }
    [[nodiscard]] std::size_t stride() const noexcept { return stride_; }
    [[nodiscard]] std::size_t slot_bytes() const noexcept { return slot_bytes_; }
    [[nodiscard]] std::size_t padding() const noexcept { return padding_; }

private:
    MmapArea area_;
    std::size_t count_ = 0;
    std::size_t stride_ = 0;
    std::size_t slot_bytes_ = 0;
    std::size_t padding_ = 0;
};

}  // namespace xrayd::net_detail
