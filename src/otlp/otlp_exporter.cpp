// OtlpExporter: the queue of accepted OTLP requests, merging, the exporter thread, and what each
// answer from X-Ray means. The curl side is otlp_transfers.cpp.
#include <xrayd/otlp/otlp_exporter.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/common/thread_name.h>
#include <xrayd/log/remote_text.h>
#include <xrayd/otlp/otlp_batch.h>
#include <xrayd/otlp/otlp_response.h>
#include <xrayd/upload/throttle_controller.h>
#include <xrayd/xray/retry_policy.h>
#include <xrayd/xray/xray_request.h>

#include "otlp_transfers.h"

namespace xrayd::otlp {
namespace {

constexpr Duration log_interval = std::chrono::seconds(10);
// The longest the exporter thread sleeps with nothing due: offers and answers wake it sooner.
constexpr int idle_poll_ms = 1000;

// The OTLP counter of a final refusal, by the class the segments' policy gives it.
Counter otlp_rejection_counter(long status, std::string_view error_type) noexcept {
    switch (final_rejection_counter(status, error_type)) {
    case Counter::rejected_request_invalid: return Counter::otlp_spans_rejected_request_invalid;
    case Counter::rejected_request_denied: return Counter::otlp_spans_rejected_request_denied;
    case Counter::rejected_request_too_large: return Counter::otlp_spans_rejected_request_too_large;
    default: return Counter::otlp_spans_rejected_request_other;
    }
}

std::uint64_t unix_now_ns() noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(WallClock::now().time_since_epoch())
            .count());
}

std::string_view encoding_name(OtlpEncoding encoding) noexcept {
    return encoding == OtlpEncoding::protobuf ? "protobuf" : "JSON";
}

}  // namespace

struct OtlpExporter::State {
    OtlpExporterOptions options;
    CredentialsProvider& credentials;
    Counters& counters;
    Logger& logger;
    MemoryBudget& budget;
    RateLimiter internal_errors{log_interval};
    RateLimiter retry_log{log_interval};
    RateLimiter final_log{log_interval};
    RateLimiter partial_log{log_interval};
    RateLimiter split_log{log_interval};
    OtlpTransfers transfers;
    ThrottleController throttle;
    JitterSource jitter;

    // Shared with offer() (receiver threads).
    std::mutex mutex;
    std::deque<OtlpItem> queued;  // accepted, not yet in a request
    std::size_t queued_spans = 0;
    std::size_t queued_bytes = 0;
    bool stopping = false;
    TimePoint deadline{};

    // Exporter thread only.
    std::deque<OtlpJob> ready;     // split client requests, and retries that are due
    std::vector<OtlpJob> waiting;  // failed, waiting for their due time

    bool healthy = true;                 // the last answer was a success
    std::size_t replay_outstanding = 0;  // jobs read back from the spool, not yet settled

    std::atomic<std::size_t> held{0};
    std::atomic<std::size_t> in_flight{0};
    std::thread thread;
    bool drained = false;

    State(OtlpExporterOptions o, CredentialsProvider& c, Counters& k, Logger& l, MemoryBudget& b)
        : options(std::move(o)),
          credentials(c),
          counters(k),
          logger(l),
          budget(b),
          transfers(make_xray_target(options.url, ""), options.transport, options.region,
                    static_cast<std::size_t>(options.concurrency), logger, internal_errors),
          throttle(options.concurrency),
          jitter(static_cast<std::uint64_t>(Clock::now().time_since_epoch().count())) {}

    void run() noexcept;
    void start_ready(TimePoint now, bool draining) noexcept;
    std::optional<OtlpJob> next_job(TimePoint now, bool draining) noexcept;
    bool build_body(OtlpJob& job) noexcept;
    void on_finished(OtlpFinished&& done) noexcept;
    void on_answer(OtlpFinished&& done, TimePoint now) noexcept;
    void on_failure(OtlpJob&& job, std::string_view reason, Duration retry_after,
                    TimePoint now) noexcept;
    void split(OtlpJob&& job) noexcept;
    void settle(OtlpJob& job) noexcept;
    int poll_timeout(TimePoint now, bool draining) noexcept;
    void give_up_everything() noexcept;
    void spill(OtlpJob& job) noexcept;
    void spill_for_room() noexcept;
    void maybe_replay(bool draining) noexcept;
    void release(OtlpJob& job) noexcept;
};

OtlpExporter::OtlpExporter(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}

std::unique_ptr<OtlpExporter> OtlpExporter::create(OtlpExporterOptions options,
                                                   CredentialsProvider& credentials,
                                                   Counters& counters, Logger& logger,
                                                   MemoryBudget& budget) {
    if (options.concurrency < 1) {
        throw StartupError(
            fmt::format("OTLP exporter concurrency {} must be at least 1", options.concurrency));
    }
    // make_xray_target (in State) checks the URL: http(s), a host, no query.
    return std::unique_ptr<OtlpExporter>(new OtlpExporter(
        std::make_unique<State>(std::move(options), credentials, counters, logger, budget)));
}

OtlpExporter::~OtlpExporter() {
    (void)drain(Clock::now());
}

void OtlpExporter::start() {
    State& s = *state_;
    try {
        s.thread = std::thread([&s] { s.run(); });
    } catch (const std::system_error& e) {
        throw StartupError(fmt::format("could not start the OTLP exporter thread: {}", e.what()));
    }
}

OfferResult OtlpExporter::offer(OtlpEncoding encoding, std::string body,
                                const OtlpExportRequest& request) noexcept {
    State& s = *state_;
    const std::size_t spans = request.accepted_spans();
    const std::size_t charge = sizeof(OtlpItem) + body.size() + request.rebuilt.size() +
                               request.parts.size() * sizeof(OtlpPart);
    {
        std::lock_guard lock(s.mutex);
        if (s.stopping) {
            return OfferResult::full;
        }
        while (!s.budget.try_reserve(charge)) {
            // drop-oldest: the oldest queued request goes to make room; in flight or waiting
            // for a retry, requests stay (they may already be stored by X-Ray). With a spool,
            // the exporter thread moves queued requests to disk ahead of need instead, and a
            // client that still finds memory full is asked to retry.
            if (s.options.backpressure != Backpressure::drop_oldest || s.options.spool != nullptr ||
                s.queued.empty()) {
                return OfferResult::full;
            }
            OtlpItem& oldest = s.queued.front();
            s.counters.add(Counter::otlp_spans_dropped_oldest, oldest.spans);
            s.budget.release(oldest.charged);
            s.held.fetch_sub(oldest.spans, std::memory_order_relaxed);
            s.queued_spans -= oldest.spans;
            s.queued_bytes -= oldest.body.size();
            s.queued.pop_front();
        }
        try {
            OtlpItem item{encoding, std::move(body), request,      spans,
                          charge,   Clock::now(),    unix_now_ns()};
            s.queued_spans += spans;
            s.queued_bytes += item.body.size();
            s.queued.push_back(std::move(item));
        } catch (...) {
            s.budget.release(charge);
            return OfferResult::full;
        }
        s.held.fetch_add(spans, std::memory_order_relaxed);
    }
    s.transfers.wakeup();
    return OfferResult::accepted;
}

void OtlpExporter::begin_drain(TimePoint deadline) noexcept {
    State& s = *state_;
    {
        std::lock_guard lock(s.mutex);
        if (s.stopping) {
            return;
        }
        s.stopping = true;
        s.deadline = deadline;
    }
    s.transfers.wakeup();
}

std::size_t OtlpExporter::drain(TimePoint deadline) noexcept {
    State& s = *state_;
    if (s.drained) {
        return 0;
    }
    s.drained = true;
    begin_drain(deadline);
    if (s.thread.joinable()) {
        s.thread.join();
    } else {
        s.give_up_everything();  // never started: nothing in flight
    }
    return s.held.load(std::memory_order_relaxed);
}

std::size_t OtlpExporter::held_spans() const noexcept {
    return state_->held.load(std::memory_order_relaxed);
}

std::size_t OtlpExporter::in_flight() const noexcept {
    return state_->in_flight.load(std::memory_order_relaxed);
}

// ---- The exporter thread ------------------------------------------------------------------

void OtlpExporter::State::run() noexcept {
    name_this_thread("xrayd-otlp");
    while (true) {
        const TimePoint now = Clock::now();
        bool draining = false;
        TimePoint until{};
        {
            std::lock_guard lock(mutex);
            draining = stopping;
            until = deadline;
        }
        if (draining && (now >= until || held.load(std::memory_order_relaxed) == 0)) {
            break;
        }
        // Due retries go first, in the order they fell due.
        std::sort(waiting.begin(), waiting.end(),
                  [](const OtlpJob& a, const OtlpJob& b) { return a.due < b.due; });
        while (!waiting.empty() && waiting.front().due <= now) {
            try {
                ready.push_back(std::move(waiting.front()));
            } catch (...) {
                break;  // tried again on the next turn
            }
            waiting.erase(waiting.begin());
        }
        start_ready(now, draining);
        (void)transfers.perform();
        bool finished_any = false;
        while (auto done = transfers.next_finished()) {
            in_flight.fetch_sub(1, std::memory_order_relaxed);
            on_finished(std::move(*done));
            finished_any = true;
        }
        if (finished_any) {
            continue;  // slots are free again: start what waits before sleeping
        }
        transfers.poll(poll_timeout(Clock::now(), draining));
    }
    give_up_everything();
}

int OtlpExporter::State::poll_timeout(TimePoint now, bool draining) noexcept {
    Duration wait = std::chrono::milliseconds(idle_poll_ms);
    const bool can_start =
        transfers.has_idle() && static_cast<int>(transfers.in_flight()) < throttle.limit();
    if (can_start) {
        std::lock_guard lock(mutex);
        if (!queued.empty()) {
            wait = draining ? Duration::zero()
                            : std::min(wait, queued.front().received + options.linger - now);
        }
    }
    for (const OtlpJob& job : waiting) {
        wait = std::min(wait, job.due - now);
    }
    if (draining) {
        wait = std::min(wait, deadline - now);
    }
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    return static_cast<int>(std::clamp<std::int64_t>(ms, 0, idle_poll_ms));
}

void OtlpExporter::State::start_ready(TimePoint now, bool draining) noexcept {
    if (options.spool != nullptr) {
        spill_for_room();
        maybe_replay(draining);
    }
    while (transfers.has_idle() && static_cast<int>(transfers.in_flight()) < throttle.limit()) {
        std::optional<OtlpJob> job = next_job(now, draining);
        if (!job) {
            return;
        }
        if (!job->compressed && !build_body(*job)) {
            on_failure(std::move(*job), "out of memory building the request", Duration::zero(),
                       now);
            continue;
        }
        const std::shared_ptr<const Credentials> creds = credentials.current();
        if (!creds) {
            on_failure(std::move(*job), "no credentials", Duration::zero(), now);
            continue;
        }
        counters.add(Counter::otlp_upload_requests);
        if (auto started = transfers.start(std::move(*job), *creds, options.request_timeout, now);
            !started) {
            on_failure(std::move(*job),
                       fmt::format("libcurl could not start the request: {}", started.error()),
                       Duration::zero(), now);
            continue;
        }
        in_flight.fetch_add(1, std::memory_order_relaxed);
    }
}

std::optional<OtlpJob> OtlpExporter::State::next_job(TimePoint now, bool draining) noexcept {
    if (!ready.empty()) {
        OtlpJob job = std::move(ready.front());
        ready.pop_front();
        return job;
    }
    std::lock_guard lock(mutex);
    if (queued.empty()) {
        return std::nullopt;
    }
    // Wait for company unless the oldest has lingered enough, the merge would be full, or the
    // daemon is stopping.
    const bool full = queued_spans >= options.limits.max_spans ||
                      queued_bytes >= options.limits.max_request_bytes;
    if (!draining && !full && now - queued.front().received < options.linger) {
        return std::nullopt;
    }
    try {
        OtlpJob job;
        job.encoding = queued.front().encoding;
        OtlpBatch batch(job.encoding, options.limits);
        // The oldest request and the ones of its encoding after it, in order, while they fit;
        // requests of the other encoding keep their place for the next job.
        for (auto it = queued.begin(); it != queued.end();) {
            if (it->encoding != job.encoding) {
                ++it;
                continue;
            }
            if (!batch.try_add(it->body, it->request)) {
                break;
            }
            job.spans += it->spans;
            queued_spans -= it->spans;
            queued_bytes -= it->body.size();
            job.items.push_back(std::move(*it));
            it = queued.erase(it);
            if (batch.oversize()) {
                break;  // one request alone past the limits goes out alone
            }
        }
        job.body = batch.take();  // build_body() compresses it, outside the lock
        return job;
    } catch (...) {
        return std::nullopt;  // out of memory: the items stay queued, tried again later
    }
}

bool OtlpExporter::State::build_body(OtlpJob& job) noexcept {
    try {
        if (job.body.empty() && job.items.size() == 1) {  // split out: its own request alone
            OtlpBatch batch(job.encoding, options.limits);
            (void)batch.try_add(job.items.front().body, job.items.front().request);
            job.body = batch.take();
        }
        auto compressed = gzip(job.body, options.gzip_level);
        if (!compressed) {
            return false;
        }
        job.body = std::move(compressed.value());
    } catch (...) {
        return false;
    }
    job.compressed = true;
    // Charged past the limit if need be: the spans are already held, this is their new form.
    job.body_charged = job.body.size();
    budget.force_reserve(job.body_charged);
    return true;
}

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
