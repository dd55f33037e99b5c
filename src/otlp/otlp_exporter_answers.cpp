// What each answer from X-Ray, or each failure to get one, means for an OTLP request: sent
// (with partial success), retried, split into its client requests, or given up; and letting go
// of a request's memory and spans once it is settled.
#include <algorithm>
#include <optional>
#include <string>

#include <fmt/format.h>

#include <xrayd/log/remote_text.h>
#include <xrayd/otlp/otlp_response.h>

#include "otlp_exporter_state.h"

namespace xrayd::otlp {
namespace {

// The OTLP counter of a final refusal, by the class the segments' policy gives it.
Counter otlp_rejection_counter(long status, std::string_view error_type) noexcept {
    switch (final_rejection_counter(status, error_type)) {
    case Counter::rejected_request_invalid: return Counter::otlp_spans_rejected_request_invalid;
    case Counter::rejected_request_denied: return Counter::otlp_spans_rejected_request_denied;
    case Counter::rejected_request_too_large: return Counter::otlp_spans_rejected_request_too_large;
    default: return Counter::otlp_spans_rejected_request_other;
    }
}

std::string_view encoding_name(OtlpEncoding encoding) noexcept {
    return encoding == OtlpEncoding::protobuf ? "protobuf" : "JSON";
}

}  // namespace

void OtlpExporter::State::on_finished(OtlpFinished&& done) noexcept {
    const TimePoint now = Clock::now();
    if (done.result != CURLE_OK) {
        on_failure(std::move(done.job), done.failure, Duration::zero(), now);
        return;
    }
    on_answer(std::move(done), now);
}

void OtlpExporter::State::on_answer(OtlpFinished&& done, TimePoint now) noexcept {
    OtlpJob& job = done.job;
    const long status = done.status;
    if (status >= 200 && status < 300) {
        const std::optional<PartialSuccess> partial = read_export_response(job.encoding, done.body);
        const std::size_t rejected = partial ? static_cast<std::size_t>(std::min<std::uint64_t>(
                                                   partial->rejected_spans, job.spans))
                                             : 0;
        settle(job);  // let go first: a span counted as sent is no longer held
        counters.add(Counter::otlp_spans_sent, job.spans - rejected);
        if (rejected > 0) {
            counters.add(Counter::otlp_spans_rejected_by_xray, rejected);
            std::uint64_t suppressed = 0;
            if (partial_log.allow(now, &suppressed)) {
                logger.warn("X-Ray refused {} of {} OTLP spans: {}", rejected, job.spans,
                            RemoteText{partial->error_message});
            }
        }
        healthy = true;
        if (throttle.on_success() == ThrottleEvent::ended) {
            logger.info("X-Ray stopped throttling OTLP requests");
        }
        logger.debug("Successfully sent OTLP request of {} spans ({:.3f} seconds)", job.spans,
                     std::chrono::duration<double>(now - done.started).count());
        return;
    }
    const std::string_view error_type = done.error_type_header;
    const bool throttled = status == 429 || is_throttling_error(error_type);
    if (throttled) {
        counters.add(Counter::otlp_upload_throttled);
        if (throttle.on_throttled(done.started, now) == ThrottleEvent::started) {
            logger.info("X-Ray is throttling OTLP requests: at most {} in flight",
                        throttle.limit());
        }
    }
    std::string reason;
    try {
        reason = fmt::format("HTTP {} {}: {}", status, RemoteText{error_type},
                             RemoteText{done.body.substr(0, 256)});
    } catch (...) {
    }
    if (http_failure_is_retryable(status, error_type)) {
        on_failure(std::move(job), reason, retry_after_delay(done.retry_after_s), now);
        return;
    }
    counters.add(Counter::otlp_upload_failures);
    if (job.items.size() > 1) {
        // One client's bad request must not cost the others: each is sent again on its own.
        std::uint64_t suppressed = 0;
        if (split_log.allow(now, &suppressed)) {
            logger.warn("X-Ray refused a merged OTLP request of {} spans from {} client "
                        "requests ({}); sending each request alone",
                        job.spans, job.items.size(), reason);
        }
        split(std::move(job));
        return;
    }
    settle(job);
    counters.add(otlp_rejection_counter(status, error_type), job.spans);
    std::uint64_t suppressed = 0;
    if (final_log.allow(now, &suppressed)) {
        logger.error("X-Ray refused an OTLP request of {} spans ({}): {}", job.spans,
                     encoding_name(job.encoding), reason);
    }
}

void OtlpExporter::State::on_failure(OtlpJob&& job, std::string_view reason, Duration retry_after,
                                     TimePoint now) noexcept {
    counters.add(Counter::otlp_upload_failures);
    healthy = false;
    if (job.failures == 0) {
        job.first_failure = now;
    }
    if (decide_retry(job.first_failure, now, options.retry_budget) == RetryDecision::give_up) {
        if (options.spool != nullptr) {
            spill(job);  // kept on disk, sent again once X-Ray answers
            return;
        }
        settle(job);
        counters.add(Counter::otlp_spans_dropped_gave_up, job.spans);
        std::uint64_t suppressed = 0;
        if (final_log.allow(now, &suppressed)) {
            logger.error("Gave up an OTLP request of {} spans after {} attempts: {}", job.spans,
                         job.failures + 1, reason);
        }
        return;
    }
    const Duration delay = backoff_delay(job.failures, options.retry_base, options.retry_cap,
                                         jitter.next_unit(), retry_after);
    job.failures += 1;
    job.due = now + delay;
    std::uint64_t suppressed = 0;
    if (retry_log.allow(now, &suppressed)) {
        logger.warn("OTLP request of {} spans failed, retrying in {:.1f}s: {}", job.spans,
                    std::chrono::duration<double>(delay).count(), reason);
    }
    try {
        waiting.push_back(std::move(job));
        std::push_heap(waiting.begin(), waiting.end(), due_later);
        counters.add(Counter::otlp_upload_retries);
    } catch (...) {
        settle(job);
        counters.add(Counter::otlp_spans_dropped_gave_up, job.spans);
    }
}

void OtlpExporter::State::split(OtlpJob&& job) noexcept {
    counters.add(Counter::otlp_requests_split);
    budget.release(job.body_charged);
    job.body_charged = 0;
    for (OtlpItem& item : job.items) {
        try {
            OtlpJob alone;
            alone.encoding = job.encoding;
            alone.spans = item.spans;
            alone.items.push_back(std::move(item));
            ready.push_back(std::move(alone));
        } catch (...) {
            // Out of memory: this one cannot be re-sent; it is given up like a failed retry.
            budget.release(item.charged);
            held.fetch_sub(item.spans, std::memory_order_relaxed);
            counters.add(Counter::otlp_spans_dropped_gave_up, item.spans);
        }
    }
}

void OtlpExporter::State::release(OtlpJob& job) noexcept {
    for (const OtlpItem& item : job.items) {
        budget.release(item.charged);
    }
    budget.release(job.body_charged);
    job.body_charged = 0;
    job.items.clear();
    held.fetch_sub(job.spans, std::memory_order_relaxed);
    if (job.origin != 0) {
        replay_outstanding -= std::min<std::size_t>(replay_outstanding, 1);
    }
}

void OtlpExporter::State::settle(OtlpJob& job) noexcept {
    if (job.origin != 0) {
        options.spool->settle(job.origin);
    }
    release(job);
}

}  // namespace xrayd::otlp
