// Flow control: the feedback that runs backwards from the pipeline to the receivers — what the
// downstream can take (DeliveryHint), how long a receiver may sleep (DeliveryPace, PaceSource)
// and how the receivers wake the pipeline (Waker).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <xrayd/common/time.h>

namespace xrayd {

// The loop, one way for data and one way back for pacing:
//   receivers ──segments──▶ SegmentQueue ──▶ pipeline (Batcher → sink)
//   receivers ◀──DeliveryPace── Ingest (PaceSource) ◀──DeliveryHint── pipeline
//   receivers ──Waker::wakeup()──▶ the pipeline's event loop (EventLoop, event_loop.h)
// A module of its own because it joins four others (net reads the pace, ingest derives it,
// the pipeline writes the hint, the sinks implement the waker) and depends on none of them.
//
// Cost of being wrong: none of this can lose or reorder a segment. A stale or missing hint or
// pace only changes how many segments one wake-up carries (an extra wake-up, or one that comes
// later, never later than the hold limit); a lost wake-up is bounded by the pipeline's own
// timeouts. Only the waker's stickiness (below) matters for latency.

// What the segment queue's consumer would like producers to deliver per wake-up.
// Written by the consumer (the pipeline thread, Pipeline::publish_hint) on every loop turn
// before it sleeps; read by the producers (each receiver thread, through its Ingest) before
// each of their sleeps. Every field is independent and relaxed: no other memory is published
// through it, and a torn combination (room from one turn, full from the next) is just a
// stale hint, with the cost above.
struct DeliveryHint {
    // Segments that would complete the open batch (a whole batch when none is open).
    std::atomic<std::uint32_t> room{0};
    // Segments in a whole batch, by count and by the bytes of recent documents.
    std::atomic<std::uint32_t> full{0};
    // Longest a producer may hold a segment before delivering it (half the batcher's linger,
    // in Clock ticks); 0: deliver at once.
    std::atomic<Clock::rep> hold_limit{0};

    // How many segments one of `sharers` producers should gather before delivering, given
    // `queued` segments already delivered but not yet taken; 0 when there is no hint yet.
    [[nodiscard]] std::size_t wanted(std::size_t queued, std::size_t sharers) const noexcept {
        const std::size_t r = room.load(std::memory_order_relaxed);
        const std::size_t f = full.load(std::memory_order_relaxed);
        if (r == 0 || f == 0) {
            return 0;
        }
        // What is queued goes into the open batch first; past it, into whole batches.
        std::size_t need = r > queued ? r - queued : f - (queued - r) % f;
        if (sharers > 1) {
            need = (need + sharers - 1) / sharers;
        }
        return need;
    }
    [[nodiscard]] Duration hold() const noexcept {
        return Duration(hold_limit.load(std::memory_order_relaxed));
    }
};

// How a receiver should pace its wake-ups. While datagrams keep coming, a paced receiver
// sleeps until about `wanted` of them have arrived (from the rate it sees), at most
// `hold_limit`, and hands them over at once, instead of waking for each arrival. When they
// stop coming it goes back to waking on the first one, so pacing never delays a lone datagram.
// A plain value, computed fresh before each sleep (WakePacer, net/wake_pacer.h, applies it).
struct DeliveryPace {
    std::size_t wanted = 0;  // datagrams worth one wake-up; 0: no pacing
    Duration hold_limit{};   // longest sleep; zero or less: no pacing
};

// Where a receiver gets its pace (the daemon's: Ingest, from the pipeline's DeliveryHint).
// Called on the receiver's thread only, before each sleep: it must be cheap and must not
// block. Borrowed by the receiver (ReceiverOptions::pace); it must outlive the receiver.
class PaceSource {
public:
    virtual ~PaceSource() = default;
    [[nodiscard]] virtual DeliveryPace pace() const noexcept = 0;
};

// The pace of a nullable source: no pacing without one.
[[nodiscard]] inline DeliveryPace pace_of(const PaceSource* source) noexcept {
    return source != nullptr ? source->pace() : DeliveryPace{};
}

// Ends the pipeline's wait (EventLoop::run_once) early. Called by producer threads (the
// receivers, through SegmentQueue::push) and by control threads (reload, drain); any thread,
// concurrently, never from a signal handler.
// IMPORTANT: the wake must be sticky (an eventfd, curl_multi_wakeup, or a flag set under the
// condition variable's mutex): it can arrive after the consumer decided to sleep but before it
// starts waiting, and must then end that wait at once. Must not throw or block.
class Waker {
public:
    virtual ~Waker() = default;
    virtual void wakeup() noexcept = 0;
};

}  // namespace xrayd
