// BatchSink: where finished batches go — the X-Ray uploader or the local sink.
#pragma once

#include <cstddef>

#include <xrayd/batch/batch.h>

namespace xrayd {

// Fed by the pipeline thread, which drives the same object's I/O as an EventLoop
// (flow/event_loop.h) between batches. Every method is for the pipeline thread only.
class BatchSink {
public:
    virtual ~BatchSink() = default;

    // Takes ownership of a sealed batch. Never blocks; the sink queues what it cannot start.
    virtual void submit(Batch&& batch) noexcept = 0;

    // Segments held: queued, in flight or waiting to retry.
    [[nodiscard]] virtual std::size_t held_segments() const noexcept = 0;

    // Whether the sink takes a batch read back from the disk spool now (the spool stage asks
    // before reading one). A sink that never sends them says no.
    [[nodiscard]] virtual bool wants_replay() const noexcept { return false; }

    // Gives up everything held (the shutdown deadline passed) and returns the number of
    // segments given up, for the exit summary's "held" figure.
    [[nodiscard]] virtual std::size_t abandon() noexcept = 0;
};

}  // namespace xrayd
