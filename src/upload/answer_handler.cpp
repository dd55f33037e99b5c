// AnswerHandler: reading X-Ray's answers, counting and logging them, throttling bookkeeping.
#include "answer_handler.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

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

AnswerHandler::AnswerHandler(Parts parts) noexcept
    : p_(parts),
      retry_limiter_(failure_log_interval),
      final_limiter_(failure_log_interval),
      unprocessed_final_limiter_(failure_log_interval),
      unprocessed_retry_limiter_(failure_log_interval),
      unprocessed_excess_limiter_(failure_log_interval) {}

void AnswerHandler::on_finished(FinishedTransfer&& done) noexcept {
    if (done.result == CURLE_OK) {
        on_http_answer(std::move(done));
        return;
    }
    on_failure(std::move(done.job), classify_transport_failure(done.result, done.os_errno),
               transport_failure_is_retryable(done.result), done.failure, Duration::zero(),
               done.finished);
}

void AnswerHandler::log_failure(RateLimiter& limiter, std::string_view reason,
                                std::string_view outcome) noexcept {
    std::uint64_t suppressed = 0;
    if (!limiter.allow(Clock::now(), &suppressed)) {
        return;
    }
    if (suppressed > 0) {
        p_.logger.error("Sending segment batch failed with: {} ({}; {} similar failures not "
                        "logged)",
                        reason, outcome, suppressed);
    } else {
        p_.logger.error("Sending segment batch failed with: {} ({})", reason, outcome);
    }
}

void AnswerHandler::on_failure(UploadJob&& job, FailureClass failure, bool retryable,
                               std::string_view reason, Duration retry_after, TimePoint now,
                               Counter rejected_as) noexcept {
    p_.counters.add(failure_counter(failure));
    const std::size_t count = job.batch.segment_count();
    if (!retryable) {
        p_.counters.add(rejected_as, count);
        p_.queues.release(job.batch.origin(), count);
        try {
            log_failure(final_limiter_, reason,
                        fmt::format("not retryable; {} segments rejected", count));
        } catch (...) {
        }
        return;
    }
    const unsigned attempts = job.failures + 1;
    Duration delay{};
    switch (p_.queues.schedule_retry(std::move(job), retry_after, p_.settings.retry_budget(), now,
                                     &delay)) {
    case RetryQueued::queued: break;
    case RetryQueued::gave_up:
        try {
            log_failure(
                final_limiter_, reason,
                fmt::format("gave up after {} attempts; {} segments dropped", attempts, count));
        } catch (...) {
        }
        return;
    case RetryQueued::out_of_memory:
        p_.logger.error("Out of memory queueing a batch for retry: {} segments dropped", count);
        return;
    }
    p_.counters.add(Counter::upload_retries);
    try {
        log_failure(
            retry_limiter_, reason,
            fmt::format("retrying in {:.3f} s", std::chrono::duration<double>(delay).count()));
    } catch (...) {
    }
}

void AnswerHandler::on_http_answer(FinishedTransfer&& done) noexcept {
    const TimePoint now = done.finished;
    const long status = done.status;
    if (p_.latency != nullptr) {
        p_.latency->observe(now - done.started);
    }
    if (status >= 200 && status <= 299) {
        on_success(std::move(done.job), done.started, now, done.body);
        return;
    }
    const XRayError error = parse_error_response(parser_, done.body, done.error_type_header);
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
        on_throttled(done.started, now, reason);
    }
    on_failure(std::move(done.job), classify_http_status(status),
               http_failure_is_retryable(status, error.type), reason,
               retry_after_delay(done.retry_after_s), now,
               final_rejection_counter(status, error.type));
}

void AnswerHandler::on_success(UploadJob&& job, TimePoint started, TimePoint now,
                               std::string_view body) noexcept {
    const std::size_t count = job.batch.segment_count();
    const double seconds = seconds_between(started, now);
    std::size_t ignored = 0;
    const Result<void, ResponseErrc> parsed =
        parse_unprocessed_segments(parser_, body, unprocessed_, count, &ignored);
    if (!parsed) {
        // X-Ray accepted the request; an unreadable answer cannot name any rejection.
        std::uint64_t suppressed = 0;
        if (p_.internal_errors.allow(now, &suppressed)) {
            p_.logger.warn("Could not read the PutTraceSegments response ({}): {}",
                           to_string(parsed.error()), RemoteText{body, 200});
        }
    }
    if (ignored > 0) {
        std::uint64_t suppressed = 0;
        if (unprocessed_excess_limiter_.allow(now, &suppressed)) {
            p_.logger.warn("X-Ray's answer to a batch of {} segments named {} more unprocessed "
                           "segments than the batch holds; only the first {} were read",
                           count, ignored, count);
        }
    }
    p_.counters.add(Counter::batches_sent);
    if (unprocessed_.empty()) {
        p_.counters.add(Counter::segments_sent, count);
        p_.queues.release(job.batch.origin(), count);
        on_not_throttled();
        p_.logger.info("Successfully sent batch of {} segments ({:1.3f} seconds)", count, seconds);
        return;
    }
    p_.logger.info("Sent batch of {} segments but had {} Unprocessed segments ({:1.3f} seconds)",
                   count, unprocessed_.size(), seconds);

    // Match each unprocessed item to its document (by id, each document once) and sort the
    // transient ones out for a re-send.
    const auto refs = job.batch.segments();
    resend_indexes_.clear();
    bool throttled = false;
    std::size_t final_items = 0;
    ItemLog final_log{unprocessed_final_limiter_, "final"};
    ItemLog retry_log{unprocessed_retry_limiter_, "sent again"};
    try {
        matched_.assign(count, 0);
        for (const UnprocessedSegment& item : unprocessed_) {
            std::size_t index = count;
            if (item.has_id) {
                for (std::size_t i = 0; i < count; ++i) {
                    if (matched_[i] == 0 && refs[i].id_view() == item.id) {
                        index = i;
                        break;
                    }
                }
            }
            if (index < count) {
                matched_[index] = 1;
            }
            throttled = throttled || unprocessed_is_throttled(item.error_code);
            const std::string_view trace_id =
                index < count ? refs[index].trace_id_view() : std::string_view();
            const RemoteText id{item.has_id ? std::string_view(item.id) : "<none>", 64};
            const RemoteText error_code{item.error_code, 64};
            const RemoteText message{item.message, 256};
            if (p_.budget != nullptr && index < count &&
                unprocessed_is_retryable(item.error_code)) {
                resend_indexes_.push_back(index);
                if (retry_log.may_log(now)) {
                    p_.logger.warn("Unprocessed segment will be sent again: id={} trace_id={} "
                                   "error_code={} message={}",
                                   id, trace_id, error_code, message);
                }
                continue;
            }
            ++final_items;
            if (final_log.may_log(now)) {
                p_.logger.error("Unprocessed segment: id={} trace_id={} error_code={} message={}",
                                id, trace_id, error_code, message);
            }
        }
    } catch (...) {
        // Out of memory matching: whatever is not yet sorted out is final.
        final_items = unprocessed_.size() - resend_indexes_.size();
    }
    final_log.close(p_.logger);
    retry_log.close(p_.logger);
    if (throttled) {
        on_throttled(started, now, "UnprocessedTraceSegments throttled");
    } else {
        on_not_throttled();
    }
    const std::size_t resend = resend_indexes_.size();
    const std::size_t rejected = std::min(final_items, count - resend);
    p_.counters.add(Counter::segments_sent, count - rejected - resend);
    p_.counters.add(Counter::rejected_by_xray, rejected);
    p_.queues.release(job.batch.origin(), count - resend);
    if (resend > 0) {
        resend_unprocessed(std::move(job), resend_indexes_, now);
    }
}

void AnswerHandler::resend_unprocessed(UploadJob&& job, std::span<const std::size_t> indexes,
                                       TimePoint now) noexcept {
    const std::size_t wanted = indexes.size();
    const std::uint32_t origin = job.batch.origin();  // rebuild_batch() empties the batch
    Result<RebuiltBatch, RebuildErrc> rebuilt =
        rebuild_batch(resend_parser_, job.batch, indexes, *p_.budget);
    if (!rebuilt) {
        // The segments cannot be re-sent: final. Out of memory is a memory drop; a body that
        // does not parse cannot happen for a body Batch built, and stays X-Ray's rejection.
        p_.counters.add(rebuilt.error() == RebuildErrc::out_of_memory ? Counter::dropped_buffer_full
                                                                      : Counter::rejected_by_xray,
                        wanted);
        p_.queues.release(origin, wanted);
        p_.logger.error("Could not re-send {} unprocessed segments: {}", wanted,
                        to_string(rebuilt.error()));
        return;
    }
    RebuiltBatch& out = rebuilt.value();
    if (out.lost > 0) {
        p_.counters.add(Counter::dropped_buffer_full, out.lost);
        p_.queues.release(origin, out.lost);
        p_.logger.error("Memory limit reached: {} unprocessed segments could not be kept to be "
                        "sent again",
                        out.lost);
    }
    const std::size_t kept = out.batch.segment_count();
    if (kept == 0) {
        return;
    }
    UploadJob retry(std::move(out.batch));
    retry.failures = job.failures;
    retry.first_failure = job.first_failure;
    Duration delay{};
    switch (p_.queues.schedule_retry(std::move(retry), Duration::zero(), p_.settings.retry_budget(),
                                     now, &delay)) {
    case RetryQueued::queued: break;
    case RetryQueued::gave_up:
        p_.logger.error("Gave up on {} unprocessed segments after retrying past the retry budget",
                        kept);
        return;
    case RetryQueued::out_of_memory:
        p_.logger.error("Out of memory queueing unprocessed segments for retry: {} dropped", kept);
        return;
    }
    p_.counters.add(Counter::unprocessed_retried, kept);
}

void AnswerHandler::on_throttled(TimePoint started, TimePoint now,
                                 std::string_view reason) noexcept {
    p_.counters.add(Counter::upload_throttled);
    const int before = p_.throttle.limit();
    if (p_.throttle.on_throttled(started, now) == ThrottleEvent::started) {
        p_.logger.info("X-Ray is throttling PutTraceSegments ({}): requests in flight cut from "
                       "{} to {}; they grow back as requests succeed",
                       reason, before, p_.throttle.limit());
    }
}

void AnswerHandler::on_not_throttled() noexcept {
    if (p_.throttle.on_success() != ThrottleEvent::ended) {
        return;
    }
    const ThrottleEpisode& e = p_.throttle.episode();
    p_.logger.info("X-Ray throttling ended after {:.1f} s: {} requests throttled, {} succeeded; "
                   "requests in flight went down to {} and are back to {}",
                   seconds_between(e.started, Clock::now()), e.throttled, e.succeeded,
                   e.lowest_limit, p_.throttle.ceiling());
}

}  // namespace xrayd
