// Ingest: what a receiver thread does with each datagram — validate, copy into a Segment
// charged to the memory budget, hand to the queue — counting every outcome.
#pragma once

#include <array>
#include <cstddef>
#include <span>

#include <xrayd/flow/flow_control.h>
#include <xrayd/ingest/validator.h>
#include <xrayd/log/logger.h>
#include <xrayd/net/receiver.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/queue/segment_queue.h>
#include <xrayd/stats/counters.h>

namespace xrayd {

// Why a datagram was not queued, as one entry per log rate limiter.
enum class IngestOutcome : std::uint8_t {
    missing_header,
    bad_header,
    missing_body,
    bad_json,
    invalid_segment,
    too_large,
    bad_otlp_udp,
    buffer_full,
    queue_full,
    count_,
};

// The rate limiters for ingest log lines: one per outcome, shared by every receiver thread so
// that each reason is logged at most once per interval process-wide.
class IngestLogLimits {
public:
    explicit IngestLogLimits(Duration interval = std::chrono::seconds(10));
    [[nodiscard]] RateLimiter& for_outcome(IngestOutcome o) noexcept {
        return limiters_[static_cast<std::size_t>(o)];
    }

private:
    std::array<RateLimiter, static_cast<std::size_t>(IngestOutcome::count_)> limiters_;
};

// One per receiver thread (it owns a Validator, which owns a parser). The references must
// outlive it. It is its receiver's DatagramHandler and, once pace_with() was called, its
// PaceSource (ReceiverOptions::pace): both are called on that receiver's thread only.
class Ingest final : public DatagramHandler, public PaceSource {
public:
    Ingest(SegmentQueue& queue, MemoryBudget& budget, Counters& counters, Logger& logger,
           IngestLogLimits& limits, std::size_t max_datagram_bytes);

    void on_datagrams(std::span<Datagram> batch) noexcept override;

    // Handles one datagram (on_datagrams calls this for each). Public for tests and benches.
    void on_datagram(const Datagram& d) noexcept;

    // Paces the receiver to deliver what the queue's consumer wants per wake-up (`hint`, e.g.
    // the pipeline's), this receiver's share of it among `sharers`, less what is queued
    // already. Without it pace() asks for no pacing. Call before the receiver runs; `hint`
    // must outlive the Ingest.
    void pace_with(const DeliveryHint& hint, std::size_t sharers) noexcept {
        hint_ = &hint;
        sharers_ = sharers;
    }
    [[nodiscard]] DeliveryPace pace() const noexcept override;

private:
    void reject(IngestOutcome outcome, Counter counter, const Validation& v,
                const Datagram& d) noexcept;

    Validator validator_;
    SegmentQueue& queue_;
    MemoryBudget& budget_;
    Counters& counters_;
    Logger& logger_;
    IngestLogLimits& limits_;
    const DeliveryHint* hint_ = nullptr;
    std::size_t sharers_ = 1;
};

}  // namespace xrayd
