// OtlpExporter: the queue of accepted OTLP requests, merging them into requests for X-Ray, and
// the exporter thread that compresses and starts them. What answers mean is in
// otlp_exporter_answers.cpp, the spool side in otlp_exporter_spool.cpp, the curl side in
// otlp_transfers.cpp.
#include <xrayd/otlp/otlp_exporter.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/common/thread_name.h>
#include <xrayd/otlp/otlp_batch.h>

#include "otlp_exporter_state.h"

namespace xrayd::otlp {
namespace {

// The longest the exporter thread sleeps with nothing due: offers and answers wake it sooner.
constexpr int idle_poll_ms = 1000;

std::uint64_t unix_now_ns() noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(WallClock::now().time_since_epoch())
            .count());
}

}  // namespace

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
        while (!waiting.empty() && waiting.front().due <= now) {
            std::pop_heap(waiting.begin(), waiting.end(), due_later);
            try {
                ready.push_back(std::move(waiting.back()));
            } catch (...) {
                std::push_heap(waiting.begin(), waiting.end(), due_later);
                break;  // tried again on the next turn
            }
            waiting.pop_back();
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
    if (!waiting.empty()) {
        wait = std::min(wait, waiting.front().due - now);
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
        auto compressed = gzip_writer.compress(job.body);
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

}  // namespace xrayd::otlp
