// SpoolStage: write-ahead appends, spills and replay on the pipeline thread.
#include <xrayd/spool/spool_stage.h>

#include <ctime>

namespace xrayd::spool {

namespace {

std::int64_t unix_minus_steady() noexcept {
    timespec ts{};
    (void)::clock_gettime(CLOCK_REALTIME, &ts);
    const std::int64_t unix_ns = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    return unix_ns -
           std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
               .count();
}

}  // namespace

SpoolStage::SpoolStage(Spool& spool, SpoolMode mode, MemoryBudget& budget, BatchLimits limits)
    : spool_(spool),
      mode_(mode),
      budget_(budget),
      limits_(limits),
      unix_minus_steady_ns_(unix_minus_steady()) {
    if (spool_.unread_segments() > 0) {
        oldest_unread_ = TimePoint{};  // found at start: due at once
    }
}

std::uint64_t SpoolStage::unix_ns(TimePoint at) const noexcept {
    const std::int64_t ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count() +
        unix_minus_steady_ns_;
    return ns > 0 ? static_cast<std::uint64_t>(ns) : 0;
}

void SpoolStage::accept(const Segment& segment, TimePoint now) noexcept {
    if (spool_.append(segment.body(), segment.id(), segment.trace_id(),
                      unix_ns(segment.received_at())) &&
        !oldest_unread_) {
        oldest_unread_ = now;
    }
}

void SpoolStage::on_turn(BatchSink& sink, TimePoint now, bool draining) noexcept {
    unix_minus_steady_ns_ = unix_minus_steady();
    spool_.flush(now);
    replay(sink, now, draining);
}

void SpoolStage::replay(BatchSink& sink, TimePoint now, bool draining) noexcept {
    while (spool_.unread_segments() > 0 && sink.wants_replay() &&
           budget_.used() < budget_.limit() / 2) {
        if (mode_ == SpoolMode::write_ahead && !draining &&
            spool_.unread_segments() < limits_.max_segments && oldest_unread_ &&
            now < *oldest_unread_ + limits_.linger) {
            return;  // not a full batch yet, and its oldest segment may wait longer
        }
        Batch batch(budget_);
        std::size_t body = Batch::framing_size;
        const std::uint32_t origin =
            spool_.read(limits_.max_segments, [&](const SpooledSegment& s) {
                const std::size_t grows = Batch::appended_size(s.document);
                if (!batch.empty() && body + grows > limits_.max_body_bytes) {
                    return Take::stop;
                }
                const SegmentPtr segment =
                    Segment::make(budget_, s.document, s.id, s.trace_id, now);
                if (!segment || !batch.append(*segment)) {
                    return Take::stop;  // no room in memory: it stays on disk for now
                }
                body += grows;
                return Take::taken;
            });
        if (origin == 0) {
            break;
        }
        batch.seal();
        batch.set_origin(origin);
        sink.submit(std::move(batch));
    }
    if (spool_.unread_segments() == 0) {
        oldest_unread_.reset();
    } else if (!oldest_unread_) {
        oldest_unread_ = now;
    }
}

std::optional<TimePoint> SpoolStage::deadline() const noexcept {
    std::optional<TimePoint> due = spool_.deadline();
    if (mode_ == SpoolMode::write_ahead && oldest_unread_) {
        const TimePoint linger_end = *oldest_unread_ + limits_.linger;
        if (!due || linger_end < *due) {
            due = linger_end;
        }
    }
    return due;
}

void SpoolStage::spill(Batch&& batch) noexcept {
    const std::size_t count = batch.segment_count();
    const std::uint32_t origin = batch.origin();
    const std::uint64_t arrival = unix_ns(batch.oldest_received());
    std::size_t written = 0;
    const std::string_view body = batch.body();
    simdjson::dom::element root;
    simdjson::dom::array documents;
    if (parser_.parse(body.data(), body.size(), true).get(root) == simdjson::SUCCESS &&
        root["TraceSegmentDocuments"].get_array().get(documents) == simdjson::SUCCESS) {
        const auto refs = batch.segments();
        for (simdjson::dom::element item : documents) {
            std::string_view document;
            if (written == refs.size() || item.get_string().get(document) != simdjson::SUCCESS) {
                break;
            }
            (void)spool_.append(document, refs[written].id_view(), refs[written].trace_id_view(),
                                arrival);  // a refused one is counted by the spool
            ++written;
        }
    }
    if (written < count) {
        // A body the batch itself built always parses; this is the parser out of memory.
        spool_.count_lost(count - written);
    }
    if (origin != 0) {
        spool_.settle(origin, count);
    }
    batch = Batch(budget_);  // its memory goes back now
    if (!oldest_unread_ && spool_.unread_segments() > 0) {
        oldest_unread_ = Clock::now();
    }
}

void SpoolStage::settle(std::uint32_t origin, std::size_t segments) noexcept {
    spool_.settle(origin, segments);
}

void SpoolStage::unread(std::uint32_t origin, std::size_t segments) noexcept {
    spool_.unread(origin, segments);
}

}  // namespace xrayd::spool
