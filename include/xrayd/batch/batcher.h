// Batcher: groups segments into PutTraceSegments batches by count, size and age.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>

#include <xrayd/batch/batch.h>
#include <xrayd/common/time.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/queue/segment.h>
#include <xrayd/stats/counters.h>

namespace xrayd {

// The Batcher raises max_segments to at least 1 and max_body_bytes to at least an empty body
// plus one empty document.
struct BatchLimits {
    std::size_t max_segments = 50;          // X-Ray accepts at most 50 documents per request
    std::size_t max_body_bytes = 4u << 20;  // sealed body size a batch may not grow past
    Duration linger = std::chrono::milliseconds(100);  // longest wait of a segment for company
};

// Keeps one open batch and seals it when it is full (max_segments), when the next segment would
// take its body past max_body_bytes, when its oldest segment has waited `linger` (measured from
// Segment::received_at()), or on flush(). Sealed batches go to `emit`, which takes ownership.
// A segment bigger than max_body_bytes on its own still goes out, alone: never dropped silently.
// Allocates nothing per segment or per batch once the budget's pools are warm (see Batch).
//
// Threads: the pipeline thread only. The budget and counters must outlive the Batcher.
// IMPORTANT: `emit` must not throw (these functions are noexcept) and must not call back into
// the Batcher.
class Batcher {
public:
    using Emit = std::function<void(Batch&&)>;

    Batcher(BatchLimits limits, MemoryBudget& budget, Counters& counters) noexcept;
    Batcher(const Batcher&) = delete;
    Batcher& operator=(const Batcher&) = delete;

    // Takes the segment into the open batch and emits every batch this completes: none, one, or
    // two (the open batch sealed because the segment does not fit, then a batch the segment
    // fills on its own). If the body cannot grow (allocation failure) the segment is dropped and
    // counted as dropped_buffer_full. A null segment is ignored. `now` does not seal on age (see
    // flush_due): a backlog of old segments must still form full batches.
    void add(SegmentPtr&& segment, TimePoint now, const Emit& emit) noexcept;

    // Seals and emits the open batch if its oldest segment has waited `linger` by `now`.
    void flush_due(TimePoint now, const Emit& emit) noexcept;

    // Seals and emits whatever is open (shutdown).
    void flush(const Emit& emit) noexcept;

    // When the open batch becomes due (oldest received + linger); nullopt when none is open.
    [[nodiscard]] std::optional<TimePoint> deadline() const noexcept;

    [[nodiscard]] std::size_t open_segments() const noexcept { return open_.segment_count(); }

    // How many newly queued segments are worth waking the pipeline for (the threshold of
    // SegmentQueue::prepare_to_sleep): 1 with no open batch (the first segment starts the linger
    // clock), otherwise about what completes the open batch, by count or by bytes (estimated
    // from the documents it holds). Until then the pipeline sleeps to deadline(), when the open
    // batch goes out anyway. At least 1.
    [[nodiscard]] std::size_t wake_threshold() const noexcept;

    // Segments that would complete the open batch, by count or by bytes (a whole batch,
    // full_batch(), when none is open). At least 1. Published to the receivers (DeliveryHint)
    // so that they can hand over about that many at once.
    [[nodiscard]] std::size_t room() const noexcept;
    // Segments in a whole batch: max_segments, or fewer when documents like the recent ones
    // would reach max_body_bytes first. At least 1.
    [[nodiscard]] std::size_t full_batch() const noexcept;

    [[nodiscard]] const BatchLimits& limits() const noexcept { return limits_; }
    // Changes the linger (SIGHUP reload): the open batch's deadline follows at once.
    void set_linger(Duration linger) noexcept { limits_.linger = linger; }

private:
    void seal_and_emit(const Emit& emit) noexcept;

    BatchLimits limits_;
    MemoryBudget* budget_;
    Counters* counters_;
    Batch open_;
    std::size_t recent_document_bytes_ = 0;  // body bytes per document of the last sealed batch
};

}  // namespace xrayd
