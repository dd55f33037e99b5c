// Segment allocation (exact or pooled) and release.
#include <xrayd/queue/segment.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>

namespace xrayd {

namespace {

// The largest UDP payload must fit the segment pool's top class, or maximal datagrams would
// fall back to exact heap blocks on every arrival.
constexpr std::size_t max_udp_payload = 65535;

}  // namespace

static_assert(sizeof(Segment) + max_udp_payload <= segment_pool_shape.top_block);

SegmentPtr Segment::construct(MemoryBudget& budget, const PoolBlock& block, std::string_view body,
                              std::string_view id, std::string_view trace_id,
                              TimePoint received_at) noexcept {
    auto* s = new (block.data) Segment();
    s->budget_ = &budget;
    s->received_at_ = received_at;
    s->size_ = static_cast<std::uint32_t>(body.size());
    s->charged_ = static_cast<std::uint32_t>(block.size);
    s->size_class_ = block.size_class;
    s->id_len_ = static_cast<std::uint8_t>(std::min(id.size(), segment_id_max));
    s->trace_id_len_ = static_cast<std::uint8_t>(std::min(trace_id.size(), segment_trace_id_max));
    // copy_n, not memcpy: an empty view may carry a null pointer.
    std::copy_n(id.data(), s->id_len_, s->id_);
    std::copy_n(trace_id.data(), s->trace_id_len_, s->trace_id_);
    if (!body.empty()) {
        std::memcpy(s + 1, body.data(), body.size());
    }
    return SegmentPtr(s);
}

SegmentPtr Segment::make(MemoryBudget& budget, std::string_view body, std::string_view id,
                         std::string_view trace_id, TimePoint received_at) noexcept {
    // charged_ is 32 bits: a body that large is never a datagram anyway.
    if (body.size() > UINT32_MAX - sizeof(Segment)) {
        return nullptr;
    }
    const std::size_t bytes = sizeof(Segment) + body.size();
    if (!budget.try_reserve(bytes)) {
        return nullptr;
    }
    void* mem = ::operator new(bytes, std::nothrow);
    if (mem == nullptr) {
        budget.release(bytes);
        return nullptr;
    }
    return construct(budget, PoolBlock{mem, bytes, BlockPool::unpooled}, body, id, trace_id,
                     received_at);
}

SegmentPtr Segment::make_pooled(MemoryBudget& budget, std::string_view body, std::string_view id,
                                std::string_view trace_id, TimePoint received_at) noexcept {
    if (body.size() > UINT32_MAX - sizeof(Segment)) {
        return nullptr;
    }
    BlockPool& pool = budget.segment_blocks();
    const std::size_t needed = sizeof(Segment) + body.size();
    const std::size_t charge = pool.block_size(needed);
    if (!budget.try_reserve(charge)) {
        return nullptr;
    }
    const PoolBlock block = pool.acquire(needed);
    if (block.data == nullptr) {
        budget.release(charge);
        return nullptr;
    }
    return construct(budget, block, body, id, trace_id, received_at);
}

void SegmentDeleter::operator()(Segment* s) const noexcept {
    const std::size_t bytes = s->charged_bytes();
    MemoryBudget* budget = s->budget_;
    const std::uint8_t size_class = s->size_class_;
    s->~Segment();
    budget->segment_blocks().recycle(s, size_class);  // unpooled blocks go to the heap
    budget->release(bytes);
}

}  // namespace xrayd
