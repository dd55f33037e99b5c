// Batcher: the count, size and age rules that turn segments into batches.
#include <xrayd/batch/batcher.h>

#include <algorithm>
#include <utility>

namespace xrayd {

Batcher::Batcher(BatchLimits limits, MemoryBudget& budget, Counters& counters) noexcept
    : limits_(limits), budget_(&budget), counters_(&counters), open_(budget) {
    limits_.max_segments = std::max<std::size_t>(limits_.max_segments, 1);
    limits_.max_body_bytes = std::max(limits_.max_body_bytes, Batch::framing_size + 3);
}

void Batcher::add(SegmentPtr&& segment, TimePoint now, const Emit& emit) noexcept {
    // Age is deliberately not checked here: during a backlog every segment is already older than
    // the linger, and sealing on age in add() would send one-segment batches exactly when load
    // is highest. The pipeline calls flush_due() after each bounded drain of the queue instead.
    (void)now;
    if (!segment) {
        return;
    }
    SegmentPtr owned = std::move(segment);  // destroyed (charge released) when this returns
    if (!open_.empty()) {
        // Sealed size if this document joined: current body + comma, quoted doc + "]}". The
        // exact escaped size costs a pass over the document, so first try the worst case
        // (every byte a \u00XX): it settles almost every add when batches are far from full.
        const std::size_t document_size = owned->body().size();
        const std::size_t base = open_.body().size() + 2;
        const bool fits_worst_case = document_size <= (limits_.max_body_bytes - 3) / 6 &&
                                     base <= limits_.max_body_bytes - 3 - 6 * document_size;
        if (!fits_worst_case &&
            base + Batch::appended_size(owned->body()) > limits_.max_body_bytes) {
            seal_and_emit(emit);
        }
    }
    if (!open_.append(*owned)) {
        counters_->add(Counter::dropped_buffer_full);
        return;
    }
    // Full by count, or at/over the byte limit (an oversized segment alone goes out at once).
    if (open_.segment_count() >= limits_.max_segments ||
        open_.body().size() + 2 >= limits_.max_body_bytes) {
        seal_and_emit(emit);
    }
}

void Batcher::flush_due(TimePoint now, const Emit& emit) noexcept {
    if (!open_.empty() && now >= open_.oldest_received() + limits_.linger) {
        seal_and_emit(emit);
    }
}

void Batcher::flush(const Emit& emit) noexcept {
    if (!open_.empty()) {
        seal_and_emit(emit);
    }
}

std::optional<TimePoint> Batcher::deadline() const noexcept {
    if (open_.empty()) {
        return std::nullopt;
    }
    return open_.oldest_received() + limits_.linger;
}

std::size_t Batcher::wake_threshold() const noexcept {
    return open_.segment_count() == 0 ? 1 : room();
}

std::size_t Batcher::room() const noexcept {
    const std::size_t count = open_.segment_count();
    if (count == 0) {
        return full_batch();
    }
    std::size_t room = limits_.max_segments > count ? limits_.max_segments - count : 1;
    // By bytes: documents like the average one so far that still fit (the body's open size
    // plus "]}" must stay within max_body_bytes).
    const std::size_t used = open_.body().size() + 2;
    const std::size_t average = std::max<std::size_t>(used / count, 1);
    const std::size_t fit =
        used < limits_.max_body_bytes ? (limits_.max_body_bytes - used) / average + 1 : 1;
    return std::max<std::size_t>(std::min(room, fit), 1);
}

std::size_t Batcher::full_batch() const noexcept {
    if (recent_document_bytes_ == 0) {
        return limits_.max_segments;
    }
    const std::size_t fit = limits_.max_body_bytes / recent_document_bytes_;
    return std::max<std::size_t>(std::min(limits_.max_segments, fit), 1);
}

void Batcher::seal_and_emit(const Emit& emit) noexcept {
    open_.seal();
    if (const std::size_t count = open_.segment_count(); count > 0) {
        recent_document_bytes_ = std::max<std::size_t>(open_.body().size() / count, 1);
    }
    // The next batch starts with a body block the size of this one's: under steady traffic
    // batches are alike, and the body then never moves to a bigger block while it fills.
    const std::size_t expected = std::min(open_.body().size(), limits_.max_body_bytes);
    Batch done = std::move(open_);
    open_ = Batch(*budget_, expected);
    emit(std::move(done));
}

}  // namespace xrayd
