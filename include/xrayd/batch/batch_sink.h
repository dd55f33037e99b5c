// BatchSink: where finished batches go — the X-Ray uploader or the local sink.
#pragma once

#include <cstddef>

#include <xrayd/batch/batch.h>
#include <xrayd/common/time.h>

namespace xrayd {

// Driven by the pipeline thread, which alternates between feeding batches and run_once().
// Every method except wakeup() is for the pipeline thread only.
class BatchSink {
public:
    virtual ~BatchSink() = default;

    // Takes ownership of a sealed batch. Never blocks; the sink queues what it cannot start.
    virtual void submit(Batch&& batch) noexcept = 0;

    // Does the work that is ready (start transfers, handle completions and due retries),
    // then waits until more work may be ready, `max_wait` has passed, or wakeup() is called.
    virtual void run_once(Duration max_wait) noexcept = 0;

    // Ends a run_once() wait early. Any thread; async-signal-unsafe.
    virtual void wakeup() noexcept = 0;

    // Segments held: queued, in flight or waiting to retry.
    [[nodiscard]] virtual std::size_t held_segments() const noexcept = 0;

    // Gives up everything held (the shutdown deadline passed) and returns the number of
    // segments given up, for the exit summary's "held" figure.
    [[nodiscard]] virtual std::size_t abandon() noexcept = 0;
};

}  // namespace xrayd
