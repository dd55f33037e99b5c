// Ingest: datagram → validation → Segment → queue, with every outcome counted.
#include <xrayd/ingest/ingest.h>

#include <algorithm>

namespace xrayd {

namespace {

std::string_view outcome_label(IngestOutcome o) noexcept {
    switch (o) {
    case IngestOutcome::missing_header: return "missing header";
    case IngestOutcome::bad_header: return "invalid header";
    case IngestOutcome::missing_body: return "missing segment document";
    case IngestOutcome::bad_json: return "segment is not valid JSON";
    case IngestOutcome::invalid_segment: return "invalid segment";
    case IngestOutcome::too_large: return "datagram too large";
    case IngestOutcome::bad_otlp_udp: return "OTLP-over-UDP document is malformed";
    case IngestOutcome::buffer_full: return "memory limit reached";
    case IngestOutcome::queue_full: return "hand-off queue full";
    case IngestOutcome::count_: break;
    }
    return "unknown";
}

// A printable excerpt of untrusted bytes, for debug logs only: control and non-ASCII bytes
// become \xNN so a datagram cannot forge log lines.
std::string excerpt(const char* data, std::size_t len) {
    constexpr std::size_t max_shown = 120;
    std::string out;
    for (std::size_t i = 0; i < std::min(len, max_shown); ++i) {
        const auto c = static_cast<unsigned char>(data[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out.push_back(static_cast<char>(c));
        } else {
            out += fmt::format("\\x{:02x}", c);
        }
    }
    if (len > max_shown) {
        out += "...";
    }
    return out;
}

}  // namespace

IngestLogLimits::IngestLogLimits(Duration interval)
    : limiters_{RateLimiter(interval), RateLimiter(interval), RateLimiter(interval),
                RateLimiter(interval), RateLimiter(interval), RateLimiter(interval),
                RateLimiter(interval), RateLimiter(interval), RateLimiter(interval)} {}

Ingest::Ingest(SegmentQueue& queue, MemoryBudget& budget, Counters& counters, Logger& logger,
               IngestLogLimits& limits, std::size_t max_datagram_bytes)
    : validator_(max_datagram_bytes),
      queue_(queue),
      budget_(budget),
      counters_(counters),
      logger_(logger),
      limits_(limits) {}

DeliveryPace Ingest::pace() const noexcept {
    if (hint_ == nullptr) {
        return {};
    }
    return {hint_->wanted(queue_.size_approx(), sharers_), hint_->hold()};
}

void Ingest::on_datagrams(std::span<Datagram> batch) noexcept {
    counters_.add(Counter::datagrams_received, batch.size());
    for (const Datagram& d : batch) {
        on_datagram(d);
    }
}

void Ingest::on_datagram(const Datagram& d) noexcept {
    if (d.truncated) {
        reject(IngestOutcome::too_large, Counter::rejected_too_large, Validation{}, d);
        return;
    }
    const Validation v = validator_.validate(d.data, d.len);
    switch (v.verdict) {
    case Verdict::accepted: break;
    case Verdict::accepted_otlp_udp: counters_.add(Counter::received_otlp_udp); break;
    case Verdict::missing_header:
        return reject(IngestOutcome::missing_header, Counter::rejected_missing_header, v, d);
    case Verdict::bad_header:
        return reject(IngestOutcome::bad_header, Counter::rejected_bad_header, v, d);
    case Verdict::missing_body:
        return reject(IngestOutcome::missing_body, Counter::rejected_missing_body, v, d);
    case Verdict::bad_json:
        return reject(IngestOutcome::bad_json, Counter::rejected_bad_json, v, d);
    case Verdict::invalid_segment:
        return reject(IngestOutcome::invalid_segment, Counter::rejected_invalid_segment, v, d);
    case Verdict::too_large:
        return reject(IngestOutcome::too_large, Counter::rejected_too_large, v, d);
    case Verdict::bad_otlp_udp:
        return reject(IngestOutcome::bad_otlp_udp, Counter::rejected_bad_otlp_udp, v, d);
    }

    // A recycled block from the budget's segment pool: no allocation per datagram once warm.
    SegmentPtr segment = Segment::make_pooled(budget_, v.body, v.id, v.trace_id, d.received_at);
    if (!segment) {
        return reject(IngestOutcome::buffer_full, Counter::dropped_buffer_full, v, d);
    }
    if (!queue_.push(segment)) {
        return reject(IngestOutcome::queue_full, Counter::dropped_queue_full, v, d);
    }
}

void Ingest::reject(IngestOutcome outcome, Counter counter, const Validation& v,
                    const Datagram& d) noexcept {
    counters_.add(counter);
    std::uint64_t suppressed = 0;
    if (!logger_.enabled(LogLevel::warn) ||
        !limits_.for_outcome(outcome).allow(d.received_at, &suppressed)) {
        return;
    }
    try {
        std::string line = fmt::format("Segment not accepted ({})", outcome_label(outcome));
        if (!v.problem.empty()) {
            line += fmt::format(": {}", v.problem);
        }
        if (!v.id.empty()) {
            line += fmt::format(" [segment id {}]", excerpt(v.id.data(), v.id.size()));
        }
        if (outcome == IngestOutcome::buffer_full) {
            line += fmt::format(" (using {} of {} bytes; consider increasing -m)", budget_.used(),
                                budget_.limit());
        }
        if (suppressed > 0) {
            line += fmt::format("; {} more since the last report", suppressed);
        }
        // Datagram bytes can hold customer data: only shown when debugging.
        if (logger_.enabled(LogLevel::debug)) {
            line += fmt::format("; datagram: {}", excerpt(d.data, d.len));
        }
        logger_.warn("{}", line);
    } catch (...) {
        // Allocation failure while formatting: the counter above already recorded the event.
    }
}

}  // namespace xrayd
