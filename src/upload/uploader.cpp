// Uploader: PutTraceSegments over libcurl multi, with retries. The public API, create() and the
// pipeline thread's loop, composing the parts: JobQueues (what waits), TransferPool (what is
// in flight) and AnswerHandler (what the answers mean).
#include <xrayd/upload/uploader.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <utility>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/http/transport.h>
#include <xrayd/upload/throttle_controller.h>
#include <xrayd/xray/xray_request.h>

#include "answer_handler.h"
#include "job_queues.h"
#include "live_settings.h"
#include "transfer_pool.h"

namespace xrayd {
namespace {

constexpr std::string_view request_path = "/TraceSegments";

int to_poll_timeout(Duration wait) noexcept {
    if (wait <= Duration::zero()) {
        return 0;
    }
    // Round up so a wait for a due time does not wake just before it, over and over.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    return static_cast<int>(std::min<std::int64_t>(ms, 60'000));
}

TransportOptions transport_options(const UploaderOptions& o) {
    TransportOptions t = o.transport;
    t.connect_timeout = o.request_timeout;  // one limit for the whole request, connecting included
    t.total_timeout = o.request_timeout;
    return t;
}

std::uint64_t jitter_seed() noexcept {
    std::uint64_t seed = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
    try {
        std::random_device device;
        seed ^= (static_cast<std::uint64_t>(device()) << 32) | device();
    } catch (...) {
        // No entropy device: the clock alone still spreads jitter across daemons.
    }
    return seed;
}

}  // namespace

// The parts and the loop that drives them. Everything runs on the pipeline thread, except
// `settings` (written from any thread) and pool.wakeup().
struct Uploader::State {
    State(UploaderOptions opts, XRayTarget target, CredentialsProvider& creds, Counters& ctrs,
          Logger& log, MemoryBudget* mem)
        : options(std::move(opts)),
          credentials(creds),
          counters(ctrs),
          logger(log),
          budget(mem),
          settings(options.concurrency, options.retry_budget, options.request_timeout),
          throttle(options.concurrency, options.throttle_successes_per_increase),
          concurrency(options.concurrency),
          internal_limiter(failure_log_interval),
          evict_limiter(failure_log_interval),
          queues(counters, options.retry_base, options.retry_cap, jitter_seed(), options.spill),
          pool(std::move(target), transport_options(options), options.region,
               static_cast<std::size_t>(options.concurrency), logger, internal_limiter),
          answers({.queues = queues,
                   .throttle = throttle,
                   .settings = settings,
                   .counters = counters,
                   .logger = logger,
                   .internal_errors = internal_limiter,
                   .budget = budget,
                   .latency = options.latency}) {}

    // Picks up set_concurrency(): throttle ceiling, connection cache, slot pool size.
    void apply_concurrency() noexcept;
    void do_work() noexcept;
    // Whether a queued job can go out now: a free slot, under the throttle's limit.
    [[nodiscard]] bool can_start() const noexcept;
    void start_ready(TimePoint now) noexcept;
    void make_room() noexcept;
    [[nodiscard]] Duration next_wait(Duration max_wait, TimePoint now) const noexcept;
    // Whether answers can wait for the end of the next wait: nothing is waiting for them (a
    // free slot under the throttle for the next batch; memory not short, which an answer would
    // give back).
    [[nodiscard]] bool answers_may_wait() const noexcept;

    const UploaderOptions options;
    CredentialsProvider& credentials;
    Counters& counters;
    Logger& logger;
    MemoryBudget* budget;  // nullable
    LiveSettings settings;
    ThrottleController throttle;
    int concurrency;               // applied: the throttle ceiling and the pool's size
    RateLimiter internal_limiter;  // libcurl's own failures, an unreadable answer
    RateLimiter evict_limiter;
    std::uint64_t evicted_since_log = 0;
    bool last_answer_ok = true;        // the last finished attempt was a 2xx (or none finished)
    std::size_t replay_in_flight = 0;  // requests in flight sending batches read from the spool
    JobQueues queues;
    TransferPool pool;
    AnswerHandler answers;
};

void Uploader::State::apply_concurrency() noexcept {
    const int wanted = settings.concurrency();
    if (wanted != concurrency) {
        logger.info("Upload concurrency changed from {} to {}", concurrency, wanted);
        concurrency = wanted;
        throttle.set_ceiling(wanted);
        if (!pool.set_max_connects(static_cast<std::size_t>(wanted))) {
            logger.warn("libcurl rejected CURLMOPT_MAXCONNECTS {}; the connection cache keeps "
                        "its old size",
                        wanted);
        }
    }
    if (pool.size() != static_cast<std::size_t>(concurrency)) {
        pool.resize(static_cast<std::size_t>(concurrency));
    }
}

void Uploader::State::do_work() noexcept {
    apply_concurrency();
    // Bounded: each pass either starts or finishes transfers; a few passes cover the cascade
    // of completions freeing slots for the next batches.
    for (int pass = 0; pass < 4; ++pass) {
        const TimePoint now = Clock::now();
        queues.promote_due(now);
        start_ready(now);
        // Only then make room (drop-oldest): a batch a free slot can send right away must be
        // sent, not evicted.
        make_room();
        if (!pool.perform()) {
            return;
        }
        bool any = false;
        while (std::optional<FinishedTransfer> done = pool.next_finished()) {
            if (done->job.batch.origin() != 0 && replay_in_flight > 0) {
                --replay_in_flight;
            }
            last_answer_ok = done->result == CURLE_OK && done->status >= 200 && done->status < 300;
            answers.on_finished(std::move(*done));
            any = true;
        }
        if (!any) {
            return;
        }
        if (pool.size() > static_cast<std::size_t>(concurrency)) {
            pool.resize(static_cast<std::size_t>(concurrency));  // slots freed just now
        }
    }
}

bool Uploader::State::can_start() const noexcept {
    // After set_concurrency() lowered the limit, slots above it may still be busy: in_flight()
    // can exceed the limit until they finish.
    return pool.has_idle() && pool.in_flight() < static_cast<std::size_t>(throttle.limit()) &&
           queues.has_ready();
}

void Uploader::State::start_ready(TimePoint now) noexcept {
    while (can_start()) {
        const auto half = static_cast<std::size_t>(std::max(1, throttle.limit() / 2));
        UploadJob job = queues.take_ready(replay_in_flight >= half);
        const bool replayed = job.batch.origin() != 0;
        const std::shared_ptr<const Credentials> creds = credentials.current();
        if (!creds) {
            std::string reason;
            try {
                reason =
                    fmt::format("no AWS credentials available (source: {})", credentials.source());
            } catch (...) {
            }
            answers.on_failure(std::move(job), FailureClass::other, true, reason, Duration::zero(),
                               now);
            continue;
        }
        Result<void, std::string> started =
            pool.start(std::move(job), *creds, settings.request_timeout(), now);
        if (!started) {
            // `job` was not taken: the attempt failed before it left (start()'s contract, which
            // the checker cannot see).
            // NOLINTNEXTLINE(bugprone-use-after-move)
            answers.on_failure(std::move(job), FailureClass::other, true, started.error(),
                               Duration::zero(), now);
            continue;
        }
        counters.add(Counter::upload_requests);
        replay_in_flight += replayed ? 1 : 0;
    }
}

void Uploader::State::make_room() noexcept {
    // With a spool, what is evicted is spilled to disk, not dropped: it runs under either
    // policy (the policy then decides at the spool's quota).
    if ((options.backpressure != Backpressure::drop_oldest && options.spill == nullptr) ||
        budget == nullptr) {
        return;
    }
    const std::size_t limit = budget->limit();
    const std::size_t headroom = std::min(
        limit, options.drop_oldest_headroom > 0 ? options.drop_oldest_headroom : limit / 8);
    std::size_t evicted = 0;
    while (budget->used() + headroom > limit) {
        const std::size_t count = queues.evict_oldest();
        if (count == 0) {
            break;  // everything held is in flight: new segments are refused at ingest
        }
        evicted += count;
    }
    if (evicted == 0 || options.spill != nullptr) {
        return;  // the spool logs what it could not take
    }
    evicted_since_log += evicted;
    std::uint64_t suppressed = 0;
    if (evict_limiter.allow(Clock::now(), &suppressed)) {
        logger.warn("Memory limit reached (using {} of {} bytes): dropped the {} oldest segments "
                    "held to make room (drop-oldest; consider increasing -m)",
                    budget->used(), limit, std::exchange(evicted_since_log, 0));
    }
}

bool Uploader::State::answers_may_wait() const noexcept {
    return pool.has_idle() && pool.in_flight() < static_cast<std::size_t>(throttle.limit()) &&
           !queues.has_ready() && (budget == nullptr || budget->used() <= budget->limit() / 2);
}

Duration Uploader::State::next_wait(Duration max_wait, TimePoint now) const noexcept {
    if (can_start()) {
        return Duration::zero();
    }
    return queues.until_next_due(max_wait, now);
}

Uploader::Uploader(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}

Uploader::~Uploader() = default;

std::unique_ptr<Uploader> Uploader::create(UploaderOptions options,
                                           CredentialsProvider& credentials, Counters& counters,
                                           Logger& logger, MemoryBudget* budget) {
    if (options.concurrency < 1) {
        throw StartupError(
            fmt::format("uploader concurrency must be at least 1, not {}", options.concurrency));
    }
    if (options.request_timeout <= std::chrono::milliseconds::zero()) {
        throw StartupError("uploader request timeout must be positive");
    }
    if (options.retry_budget < Duration::zero()) {
        throw StartupError("uploader retry budget must not be negative");
    }
    XRayTarget target = make_xray_target(options.endpoint, request_path);
    auto state = std::make_unique<State>(std::move(options), std::move(target), credentials,
                                         counters, logger, budget);
    logger.debug(
        "Using X-Ray endpoint: {} (concurrency {}, retry budget {} s, {})",
        state->pool.target().url, state->pool.size(),
        std::chrono::duration_cast<std::chrono::seconds>(state->options.retry_budget).count(),
        to_string(state->options.backpressure));
    return std::unique_ptr<Uploader>(new Uploader(std::move(state)));
}

void Uploader::submit(Batch&& batch) noexcept {
    if (!batch.sealed()) {
        batch.seal();  // contract says sealed; sealing here keeps the body well-formed
    }
    if (batch.empty()) {
        return;
    }
    const std::size_t count = batch.segment_count();
    if (!state_->queues.push_fresh(std::move(batch))) {
        state_->logger.error("Out of memory queueing a batch: {} segments dropped", count);
    }
}

void Uploader::run_once(Duration max_wait, Answers answers) noexcept {
    State& s = *state_;
    s.do_work();
    s.pool.poll(to_poll_timeout(s.next_wait(max_wait, Clock::now())),
                answers == Answers::at_next_wake && s.answers_may_wait());
    s.do_work();
}

void Uploader::wakeup() noexcept {
    state_->pool.wakeup();
}

std::size_t Uploader::held_segments() const noexcept {
    return state_->queues.held();
}

int Uploader::in_flight_limit() const noexcept {
    return state_->throttle.limit();
}

void Uploader::set_retry_settings(Duration retry_budget,
                                  std::chrono::milliseconds request_timeout) noexcept {
    state_->settings.set_retry_budget(retry_budget);
    state_->settings.set_request_timeout(request_timeout);
}

void Uploader::set_concurrency(int concurrency) noexcept {
    state_->settings.set_concurrency(concurrency);
    wakeup();  // the pipeline thread applies it in its next do_work()
}

bool Uploader::wants_replay() const noexcept {
    const State& s = *state_;
    if (s.last_answer_ok) {
        return s.queues.replay_queued() < 2;
    }
    return s.queues.held() == 0;
}

std::size_t Uploader::abandon() noexcept {
    state_->replay_in_flight = 0;
    return state_->queues.clear(state_->pool.abandon());
}

}  // namespace xrayd
