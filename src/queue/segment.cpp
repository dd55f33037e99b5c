// Segment allocation and release.
#include <xrayd/queue/segment.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace xrayd {

SegmentPtr Segment::make(MemoryBudget& budget, std::string_view body, std::string_view id,
                         std::string_view trace_id, TimePoint received_at) noexcept {
    const std::size_t bytes = sizeof(Segment) + body.size();
    if (body.size() > UINT32_MAX || !budget.try_reserve(bytes)) {
        return nullptr;
    }
    void* mem = ::operator new(bytes, std::nothrow);
    if (mem == nullptr) {
        budget.release(bytes);
        return nullptr;
    }
    auto* s = new (mem) Segment();
    s->budget_ = &budget;
    s->received_at_ = received_at;
    s->size_ = static_cast<std::uint32_t>(body.size());
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

void SegmentDeleter::operator()(Segment* s) const noexcept {
    const std::size_t bytes = s->charged_bytes();
    MemoryBudget* budget = s->budget_;
    s->~Segment();
    ::operator delete(s);
    budget->release(bytes);
}

}  // namespace xrayd
