// Pipeline: the one thread between the receivers and X-Ray — it drains the segment queue into
// the batcher, hands sealed batches to the sink and drives the sink's I/O.
#pragma once

#include <atomic>
#include <cstddef>

#include <xrayd/batch/batch_sink.h>
#include <xrayd/batch/batcher.h>
#include <xrayd/common/time.h>
#include <xrayd/flow/event_loop.h>
#include <xrayd/flow/flow_control.h>
#include <xrayd/queue/segment_queue.h>
#include <xrayd/spool/spool_stage.h>

namespace xrayd {

// Owns nothing; every reference must outlive run(). `sink` takes the sealed batches and
// `loop` is the same sink's I/O, driven between them (the Uploader and the LocalSink are
// both). The queue's waker must be `loop` (the daemon sets that up) so that producers can end
// a wait. The pipeline writes the flow-control hint (delivery_hint(), flow_control.h).
class Pipeline {
public:
    // `spool` (nullable): the disk spool's stage. In write-ahead mode every segment taken from
    // the queue is appended to it instead of batched; in either mode it gets a turn every loop
    // (writing out, fsync, replay), and the drain waits for what it can still send.
    Pipeline(SegmentQueue& queue, Batcher& batcher, BatchSink& sink, EventLoop& loop,
             spool::SpoolStage* spool = nullptr) noexcept
        : queue_(queue), batcher_(batcher), sink_(sink), loop_(loop), spool_(spool) {}

    // The pipeline thread's body. Returns after drain() once everything is sent or the drain
    // deadline has passed.
    void run() noexcept;

    // Any thread, after every producer has stopped: send what is held, then make run() return
    // by `deadline` at the latest.
    void drain(TimePoint deadline) noexcept;

    // Changes the batcher's linger (SIGHUP reload). Any thread: taken over, and the pipeline
    // woken, on its next turn.
    void set_linger(Duration linger) noexcept;

    // What the pipeline would like the receivers to deliver per wake-up, written every loop
    // turn before it sleeps (see DeliveryHint). Any thread may read it.
    [[nodiscard]] const DeliveryHint& delivery_hint() const noexcept { return hint_; }

    // Segments still held when run() returned (given up at the drain deadline).
    [[nodiscard]] std::size_t held_at_exit() const noexcept {
        return held_at_exit_.load(std::memory_order_acquire);
    }

private:
    // Moves up to `max` queued segments into the batcher; returns how many it moved.
    std::size_t take_from_queue(TimePoint now, std::size_t max) noexcept;
    void publish_hint() noexcept;
    // Whether the drain is done: nothing queued or held, and nothing spooled that could be sent.
    [[nodiscard]] bool drained() const noexcept;

    SegmentQueue& queue_;
    Batcher& batcher_;
    BatchSink& sink_;
    EventLoop& loop_;
    spool::SpoolStage* spool_;  // nullable
    std::atomic<bool> draining_{false};
    static constexpr Clock::rep no_new_linger = -1;
    std::atomic<Clock::rep> new_linger_{no_new_linger};  // set_linger(), from any thread
    std::atomic<Clock::rep> drain_deadline_{0};
    std::atomic<std::size_t> held_at_exit_{0};
    DeliveryHint hint_;
};

}  // namespace xrayd
