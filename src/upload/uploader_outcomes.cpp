// Uploader outcomes: reading X-Ray's answers, counting and logging them, throttling bookkeeping.
#include "uploader_state.h"

#include <optional>
#include <string>

#include <fmt/format.h>

#include <xrayd/log/remote_text.h>
#include <xrayd/upload/resend.h>

namespace xrayd {
namespace {

double seconds_between(TimePoint from, TimePoint to) noexcept {
    return std::chrono::duration<double>(to - from).count();
}

// Items of one answer logged per reason: a few lines, then one that says how many were not.
constexpr std::size_t items_logged_per_answer = 5;

// The log budget of one reason (final, sent again) within one answer: the reason's limiter is
// asked once per answer, so at most items_logged_per_answer + 1 lines per interval.
struct ItemLog {
    RateLimiter& limiter;
    std::string_view what;  // "final" / "sent again", for the closing line
    std::optional<bool> allowed{};
    std::uint64_t answers_suppressed = 0;  // earlier answers of this reason not logged at all
    std::size_t logged = 0;
    std::size_t skipped = 0;

    bool may_log(TimePoint now) noexcept {
        if (!allowed) {
            allowed = limiter.allow(now, &answers_suppressed);
        }
        if (*allowed && logged < items_logged_per_answer) {
            ++logged;
            return true;
        }
        ++skipped;
        return false;
    }

    void close(Logger& logger) const noexcept {
        if (allowed.value_or(false) && (skipped > 0 || answers_suppressed > 0)) {
            logger.warn("{} more unprocessed segments ({}) of this answer not logged, and {} "
                        "earlier answers with such segments",
                        skipped, what, answers_suppressed);
        }
    }
};

}  // namespace

void Uploader::State::on_http_answer(Slot& slot, Job&& job, long status, TimePoint now) noexcept {
    if (options.latency != nullptr) {
        options.latency->observe(now - slot.started);
    }
    if (status >= 200 && status <= 299) {
        on_success(std::move(job), slot.started, now, slot.response);
        return;
    }
    curl_off_t retry_after_s = 0;
    if (slot.easy.info(CURLINFO_RETRY_AFTER, &retry_after_s) != CURLE_OK) {
        retry_after_s = 0;
    }
    const XRayError error = parse_error_response(parser, slot.response, slot.error_type_header);
    std::string reason;
    try {
        reason = fmt::format("HTTP {}", status);
        // X-Ray's words are a peer's: escaped here, so every line that carries the reason
        // (failures, throttling) is safe.
        if (!error.type.empty()) {
            reason += fmt::format(" {}", RemoteText{error.type, 128});
        }
        if (!error.message.empty()) {
            reason += fmt::format(": {}", RemoteText{error.message, 256});
        }
    } catch (...) {
    }
    if (status == 429 || is_throttling_error(error.type)) {
        on_throttled(slot.started, now, reason);
    }
    on_failure(std::move(job), classify_http_status(status),
               http_failure_is_retryable(status, error.type), reason,
               retry_after_delay(retry_after_s), now,
               final_rejection_counter(status, error.type));
}

void Uploader::State::on_success(Job&& job, TimePoint started, TimePoint now,
                                 std::string_view body) noexcept {
    const std::size_t count = job.batch.segment_count();
    const double seconds = seconds_between(started, now);
    std::size_t ignored = 0;
    const Result<void, ResponseErrc> parsed =
        parse_unprocessed_segments(parser, body, unprocessed, count, &ignored);
    if (!parsed) {
        // X-Ray accepted the request; an unreadable answer cannot name any rejection.
        std::uint64_t suppressed = 0;
        if (internal_limiter.allow(now, &suppressed)) {
            logger.warn("Could not read the PutTraceSegments response ({}): {}",
                        to_string(parsed.error()), RemoteText{body, 200});
        }
    }
    if (ignored > 0) {
        std::uint64_t suppressed = 0;
        if (unprocessed_excess_limiter.allow(now, &suppressed)) {
            logger.warn("X-Ray's answer to a batch of {} segments named {} more unprocessed "
                        "segments than the batch holds; only the first {} were read",
                        count, ignored, count);
        }
    }
    counters.add(Counter::batches_sent);
    if (unprocessed.empty()) {
        counters.add(Counter::segments_sent, count);
        release(count);
        on_not_throttled();
        logger.info("Successfully sent batch of {} segments ({:1.3f} seconds)", count, seconds);
        return;
    }
    logger.info("Sent batch of {} segments but had {} Unprocessed segments ({:1.3f} seconds)",
                count, unprocessed.size(), seconds);

    // Match each unprocessed item to its document (by id, each document once) and sort the
    // transient ones out for a re-send.
    const auto refs = job.batch.segments();
    resend_indexes.clear();
    bool throttled = false;
    std::size_t final_items = 0;
    ItemLog final_log{unprocessed_final_limiter, "final"};
    ItemLog retry_log{unprocessed_retry_limiter, "sent again"};
    try {
        matched.assign(count, 0);
        for (const UnprocessedSegment& item : unprocessed) {
            std::size_t index = count;
            if (item.has_id) {
                for (std::size_t i = 0; i < count; ++i) {
                    if (matched[i] == 0 && refs[i].id_view() == item.id) {
                        index = i;
                        break;
                    }
                }
            }
            if (index < count) {
                matched[index] = 1;
            }
            throttled = throttled || unprocessed_is_throttled(item.error_code);
            const std::string_view trace_id =
                index < count ? refs[index].trace_id_view() : std::string_view();
            const RemoteText id{item.has_id ? std::string_view(item.id) : "<none>", 64};
            const RemoteText error_code{item.error_code, 64};
            const RemoteText message{item.message, 256};
            if (budget != nullptr && index < count && unprocessed_is_retryable(item.error_code)) {
                resend_indexes.push_back(index);
                if (retry_log.may_log(now)) {
                    logger.warn("Unprocessed segment will be sent again: id={} trace_id={} "
                                "error_code={} message={}",
                                id, trace_id, error_code, message);
                }
                continue;
            }
            ++final_items;
            if (final_log.may_log(now)) {
                logger.error("Unprocessed segment: id={} trace_id={} error_code={} message={}",
                             id, trace_id, error_code, message);
            }
        }
    } catch (...) {
        // Out of memory matching: whatever is not yet sorted out is final.
        final_items = unprocessed.size() - resend_indexes.size();
    }
    final_log.close(logger);
    retry_log.close(logger);
    if (throttled) {
        on_throttled(started, now, "UnprocessedTraceSegments throttled");
    } else {
        on_not_throttled();
    }
    const std::size_t resend = resend_indexes.size();
    const std::size_t rejected = std::min(final_items, count - resend);
    counters.add(Counter::segments_sent, count - rejected - resend);
    counters.add(Counter::rejected_by_xray, rejected);
    release(count - resend);
    if (resend > 0) {
        resend_unprocessed(std::move(job), resend_indexes, now);
    }
}

void Uploader::State::resend_unprocessed(Job&& job, std::span<const std::size_t> indexes,
                                         TimePoint now) noexcept {
    const std::size_t wanted = indexes.size();
    Result<RebuiltBatch, RebuildErrc> rebuilt =
        rebuild_batch(resend_parser, job.batch, indexes, *budget);
    if (!rebuilt) {
        // The segments cannot be re-sent: final. Out of memory is a memory drop; a body that
        // does not parse cannot happen for a body Batch built, and stays X-Ray's rejection.
        counters.add(rebuilt.error() == RebuildErrc::out_of_memory ? Counter::dropped_buffer_full
                                                                   : Counter::rejected_by_xray,
                     wanted);
        release(wanted);
        logger.error("Could not re-send {} unprocessed segments: {}", wanted,
                     to_string(rebuilt.error()));
        return;
    }
    RebuiltBatch& out = rebuilt.value();
    if (out.lost > 0) {
        counters.add(Counter::dropped_buffer_full, out.lost);
        release(out.lost);
        logger.error("Memory limit reached: {} unprocessed segments could not be kept to be "
                     "sent again",
                     out.lost);
    }
    const std::size_t kept = out.batch.segment_count();
    if (kept == 0) {
        return;
    }
    Job retry(std::move(out.batch));
    retry.failures = job.failures;
    retry.first_failure = job.first_failure;
    Duration delay{};
    switch (queue_retry(std::move(retry), Duration::zero(), now, &delay)) {
    case RetryQueued::queued:
        break;
    case RetryQueued::gave_up:
        logger.error("Gave up on {} unprocessed segments after retrying past the retry budget",
                     kept);
        return;
    case RetryQueued::out_of_memory:
        logger.error("Out of memory queueing unprocessed segments for retry: {} dropped", kept);
        return;
    }
    counters.add(Counter::unprocessed_retried, kept);
}

void Uploader::State::on_throttled(TimePoint started, TimePoint now,
                                   std::string_view reason) noexcept {
    counters.add(Counter::upload_throttled);
    const int before = throttle.limit();
    if (throttle.on_throttled(started, now) == ThrottleEvent::started) {
        logger.info("X-Ray is throttling PutTraceSegments ({}): requests in flight cut from {} "
                    "to {}; they grow back as requests succeed",
                    reason, before, throttle.limit());
    }
}

void Uploader::State::on_not_throttled() noexcept {
    if (throttle.on_success() != ThrottleEvent::ended) {
        return;
    }
    const ThrottleEpisode& e = throttle.episode();
    logger.info("X-Ray throttling ended after {:.1f} s: {} requests throttled, {} succeeded; "
                "requests in flight went down to {} and are back to {}",
                seconds_between(e.started, Clock::now()), e.throttled, e.succeeded,
                e.lowest_limit, throttle.ceiling());
}

}  // namespace xrayd
