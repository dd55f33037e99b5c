// BatchSpill: where a sink puts the batches memory cannot keep — the disk spool (issue #15).
#pragma once

#include <cstddef>
#include <cstdint>

#include <xrayd/batch/batch.h>

namespace xrayd {

// The uploader calls it on the pipeline thread; every method is for that thread only.
// A batch's origin (Batch::origin()) is 0 for segments received in this run, else the spool
// file its segments were read back from: the spool deletes a file once every record read from
// it has been settled.
class BatchSpill {
public:
    virtual ~BatchSpill() = default;

    // Takes a batch the sink cannot keep: evicted for room, past its retry budget, or held at
    // the shutdown deadline. Writes its segments to disk and counts each one: spool_written, or
    // dropped_spool_full / dropped_spool_error when it could not be written. A batch read back
    // from the spool is written again as new records and its origin settled.
    virtual void spill(Batch&& batch) noexcept = 0;

    // `segments` read back from spool file `origin` reached a counted outcome (sent, rejected,
    // dropped).
    virtual void settle(std::uint32_t origin, std::size_t segments) noexcept = 0;

    // `segments` read back from spool file `origin` are let go without an outcome (shutdown):
    // their records stay on disk, to be replayed at the next start.
    virtual void unread(std::uint32_t origin, std::size_t segments) noexcept = 0;
};

}  // namespace xrayd
