// The OTLP exporter and its spool: requests spilled to disk (given up, memory over three
// quarters full, the drain), read back while X-Ray answers, and what is left at the drain.
#include <algorithm>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include <xrayd/otlp/otlp_batch.h>
#include <xrayd/otlp/otlp_spool.h>

#include "otlp_exporter_state.h"

namespace xrayd::otlp {

void OtlpExporter::State::spill(OtlpJob& job) noexcept {
    if (job.origin != 0) {
        options.spool->unread(job.origin);  // its file is still there
        release(job);
        return;
    }
    // The spans are let go of first (held), then written: the spool counts each outcome.
    std::vector<OtlpItem> items = std::move(job.items);
    job.items.clear();
    release(job);
    for (const OtlpItem& item : items) {
        try {
            OtlpBatch batch(item.encoding, options.limits);
            (void)batch.try_add(item.body, item.request);
            (void)options.spool->write(item.encoding, batch.take(), item.spans,
                                       item.arrival_unix_ns);  // counts its own outcome
        } catch (...) {
            counters.add(Counter::otlp_spans_dropped_spool_error, item.spans);
        }
        budget.release(item.charged);
    }
}

void OtlpExporter::State::spill_for_room() noexcept {
    // Ahead of need, so that offers find room: the oldest queued requests go to disk while
    // memory is more than three quarters full.
    const std::size_t high = budget.limit() / 4 * 3;
    while (budget.used() > high) {
        OtlpJob job;
        {
            std::lock_guard lock(mutex);
            if (queued.empty()) {
                return;
            }
            try {
                job.items.push_back(std::move(queued.front()));
            } catch (...) {
                return;
            }
            queued.pop_front();
            job.encoding = job.items.front().encoding;
            job.spans = job.items.front().spans;
            queued_spans -= job.spans;
            queued_bytes -= job.items.front().body.size();
        }
        spill(job);
    }
}

void OtlpExporter::State::maybe_replay(bool draining) noexcept {
    OtlpSpool* spool = options.spool;
    if (spool == nullptr || draining || !spool->has_unread()) {
        return;
    }
    const bool wanted = healthy ? replay_outstanding < 2 && budget.used() < budget.limit() / 2
                                : held.load(std::memory_order_relaxed) == 0;
    if (!wanted) {
        return;
    }
    std::optional<SpooledRequest> back = spool->read_oldest();
    if (!back) {
        return;
    }
    try {
        auto read = read_export_request(back->body, back->encoding, options.limits);
        const std::size_t charge = sizeof(OtlpItem) + back->body.size();
        if (!read || read.value().accepted_spans() != back->spans || !budget.try_reserve(charge)) {
            spool->unread(back->number);  // damaged copies are caught by the CRC; tried later
            return;
        }
        OtlpJob job;
        job.encoding = back->encoding;
        job.spans = back->spans;
        job.origin = back->number;
        job.items.push_back(OtlpItem{back->encoding, std::move(back->body), std::move(read.value()),
                                     back->spans, charge, Clock::now(), back->arrival_unix_ns});
        held.fetch_add(job.spans, std::memory_order_relaxed);
        ++replay_outstanding;
        ready.push_back(std::move(job));
    } catch (...) {
        spool->unread(back->number);
    }
}

void OtlpExporter::State::give_up_everything() noexcept {
    // With a spool, everything goes to disk (what was in flight may arrive twice: the request
    // cannot be un-sent). Without one, what is left stays counted as held (the exit summary's
    // otlp held=) and only its memory goes.
    std::vector<OtlpJob> jobs = transfers.abandon();
    in_flight.store(0, std::memory_order_relaxed);
    const auto let_go = [this](OtlpJob& job) {
        if (options.spool != nullptr) {
            spill(job);
            return;
        }
        for (const OtlpItem& item : job.items) {
            budget.release(item.charged);
        }
        budget.release(job.body_charged);
    };
    for (OtlpJob& job : jobs) {
        if (options.spool != nullptr) {
            // X-Ray may have stored it: sent again after the restart, it may arrive twice.
            counters.add(Counter::otlp_spans_spool_maybe_duplicates, job.spans);
        }
        let_go(job);
    }
    for (OtlpJob& job : waiting) {
        let_go(job);
    }
    for (OtlpJob& job : ready) {
        let_go(job);
    }
    waiting.clear();
    ready.clear();
    std::deque<OtlpItem> left;
    {
        std::lock_guard lock(mutex);
        left.swap(queued);
        queued_spans = 0;
        queued_bytes = 0;
    }
    for (OtlpItem& item : left) {
        OtlpJob job;
        job.encoding = item.encoding;
        job.spans = item.spans;
        try {
            job.items.push_back(std::move(item));
        } catch (...) {
            budget.release(item.charged);
            continue;
        }
        let_go(job);
    }
}

}  // namespace xrayd::otlp
