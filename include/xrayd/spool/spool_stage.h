// SpoolStage: the disk spool's place in the pipeline — write-ahead appends, spills from the
// uploader, and batches read back for it (issue #15).
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>

#include <xrayd/batch/batch_sink.h>
#include <xrayd/batch/batch_spill.h>
#include <xrayd/batch/batcher.h>
#include <xrayd/common/time.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/queue/segment.h>
#include <xrayd/spool/spool.h>
#include <xrayd/spool/spool_options.h>

namespace xrayd::spool {

// Overflow mode: segments go through memory as without a spool; the uploader spills what it
// cannot keep (spill()), and on_turn() reads spooled segments back into batches for it.
// Write-ahead mode: the pipeline gives every segment it takes from the queue to accept(),
// which appends it and frees its memory; on_turn() writes the appends out (before anything
// else happens on the pipeline thread) and reads them back into batches, as in overflow mode.
// Either way a batch read back carries its file as origin, and the uploader settles it.
//
// Replay reads only while the sink wants_replay() and less than half the memory limit is in
// use, so that replay never crowds out fresh segments nor fills memory to the point where the
// uploader would spill it again. In write-ahead mode a batch is read back once 50 segments are
// spooled or the oldest has waited the linger, as the batcher would seal it.
//
// Threads: the pipeline thread only. The references must outlive the stage.
class SpoolStage final : public BatchSpill {
public:
    SpoolStage(Spool& spool, SpoolMode mode, MemoryBudget& budget, BatchLimits limits);

    [[nodiscard]] SpoolMode mode() const noexcept { return mode_; }

    // Write-ahead: appends the segment (its memory is freed when the caller drops it). A
    // refused segment is counted by the spool.
    void accept(const Segment& segment, TimePoint now) noexcept;

    // Once per pipeline turn: writes out what accept() and spill() appended, fsyncs as the
    // policy says, and submits batches read back to `sink` while it wants them. `draining`:
    // shutdown, so no linger.
    void on_turn(BatchSink& sink, TimePoint now, bool draining) noexcept;

    // Writes out what was appended since the last turn (the pipeline's last act).
    void flush(TimePoint now) noexcept { spool_.flush(now); }

    // When on_turn() next has work by the clock (a sync due, a linger ending); nullopt: none.
    [[nodiscard]] std::optional<TimePoint> deadline() const noexcept;

    // Segments on disk that could still be read back in this run.
    [[nodiscard]] std::uint64_t unread() const noexcept { return spool_.unread_segments(); }

    // The linger of write-ahead batches (SIGHUP reload of --linger).
    void set_linger(Duration linger) noexcept { limits_.linger = linger; }

    void spill(Batch&& batch) noexcept override;
    void settle(std::uint32_t origin, std::size_t segments) noexcept override;
    void unread(std::uint32_t origin, std::size_t segments) noexcept override;

private:
    // The Unix time of a steady-clock time point, in ns.
    [[nodiscard]] std::uint64_t unix_ns(TimePoint at) const noexcept;
    void replay(BatchSink& sink, TimePoint now, bool draining) noexcept;

    Spool& spool_;
    SpoolMode mode_;
    MemoryBudget& budget_;
    BatchLimits limits_;
    std::int64_t unix_minus_steady_ns_ = 0;  // refreshed every turn
    // Write-ahead: when the oldest segment not yet read back was appended.
    std::optional<TimePoint> oldest_unread_;
    simdjson::dom::parser parser_;  // spill(): reads the documents back out of a batch body
};

}  // namespace xrayd::spool
