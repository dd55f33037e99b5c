// Uploader: PutTraceSegments over libcurl multi, with retries. The public API and create(); the
// work is in uploader_transfers.cpp, uploader_queues.cpp and uploader_outcomes.cpp.
#include <xrayd/upload/uploader.h>

#include <algorithm>
#include <random>
#include <utility>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>

#include "uploader_state.h"

namespace xrayd {
namespace {

constexpr std::string_view request_path = "/TraceSegments";
constexpr Duration failure_log_interval = std::chrono::seconds(10);

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

}  // namespace

Uploader::State::State(UploaderOptions opts, XRayTarget ep, CredentialsProvider& creds,
                       Counters& ctrs, Logger& log, MemoryBudget* mem, std::uint64_t seed)
    : options(std::move(opts)),
      transport(transport_options(options)),
      endpoint(std::move(ep)),
      credentials(creds),
      counters(ctrs),
      logger(log),
      budget(mem),
      signer(options.region, "xray"),
      throttle(options.concurrency, options.throttle_successes_per_increase),
      concurrency(options.concurrency),
      wanted_concurrency(options.concurrency),
      retry_budget(options.retry_budget.count()),
      request_timeout_ms(options.request_timeout.count()),
      jitter(seed),
      retry_limiter(failure_log_interval),
      final_limiter(failure_log_interval),
      internal_limiter(failure_log_interval),
      evict_limiter(failure_log_interval),
      unprocessed_final_limiter(failure_log_interval),
      unprocessed_retry_limiter(failure_log_interval),
      unprocessed_excess_limiter(failure_log_interval) {}

Uploader::State::~State() {
    for (auto& slot : slots) {
        if (slot->job) {
            (void)multi.remove(slot->easy);
        }
    }
}

Uploader::Uploader(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}

Uploader::~Uploader() = default;

std::unique_ptr<Uploader> Uploader::create(UploaderOptions options,
                                           CredentialsProvider& credentials, Counters& counters,
                                           Logger& logger, MemoryBudget* budget) {
    if (options.concurrency < 1) {
        throw StartupError(fmt::format("uploader concurrency must be at least 1, not {}",
                                       options.concurrency));
    }
    if (options.request_timeout <= std::chrono::milliseconds::zero()) {
        throw StartupError("uploader request timeout must be positive");
    }
    if (options.retry_budget < Duration::zero()) {
        throw StartupError("uploader retry budget must not be negative");
    }
    XRayTarget endpoint = make_xray_target(options.endpoint, request_path);
    std::uint64_t seed = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
    try {
        std::random_device device;
        seed ^= (static_cast<std::uint64_t>(device()) << 32) | device();
    } catch (...) {
        // No entropy device: the clock alone still spreads jitter across daemons.
    }
    auto state = std::make_unique<State>(std::move(options), std::move(endpoint), credentials,
                                         counters, logger, budget, seed);
    state->multi = CurlMulti::create();
    const auto slots = static_cast<std::size_t>(state->options.concurrency);
    if (state->multi.set(CURLMOPT_MAXCONNECTS, static_cast<long>(slots)) != CURLM_OK) {
        throw StartupError("libcurl rejected CURLMOPT_MAXCONNECTS");
    }
    for (std::size_t i = 0; i < slots; ++i) {
        state->add_slot();
    }
    logger.debug("Using X-Ray endpoint: {} (concurrency {}, retry budget {} s, {})",
                 state->endpoint.url, slots,
                 std::chrono::duration_cast<std::chrono::seconds>(state->options.retry_budget)
                     .count(),
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
    try {
        state_->fresh.emplace_back(std::move(batch));
    } catch (...) {
        state_->counters.add(Counter::dropped_gave_up, count);
        state_->logger.error("Out of memory queueing a batch: {} segments dropped", count);
        return;
    }
    state_->held += count;
}

void Uploader::run_once(Duration max_wait) noexcept {
    State& s = *state_;
    s.do_work();
    const Duration wait = s.next_wait(max_wait, Clock::now());
    const CURLMcode mrc = s.multi.poll(to_poll_timeout(wait));
    if (mrc != CURLM_OK) {
        std::uint64_t suppressed = 0;
        if (s.internal_limiter.allow(Clock::now(), &suppressed)) {
            s.logger.error("curl_multi_poll failed: {}", curl_multi_strerror(mrc));
        }
    }
    s.do_work();
}

void Uploader::wakeup() noexcept {
    // Fails only on a bad handle; there is no one to tell from an arbitrary thread.
    (void)state_->multi.wakeup();
}

std::size_t Uploader::held_segments() const noexcept { return state_->held; }

int Uploader::in_flight_limit() const noexcept { return state_->throttle.limit(); }

void Uploader::set_retry_settings(Duration retry_budget,
                                  std::chrono::milliseconds request_timeout) noexcept {
    if (retry_budget > Duration::zero()) {
        state_->retry_budget.store(retry_budget.count(), std::memory_order_relaxed);
    }
    if (request_timeout > std::chrono::milliseconds::zero()) {
        state_->request_timeout_ms.store(request_timeout.count(), std::memory_order_relaxed);
    }
}

void Uploader::set_concurrency(int concurrency) noexcept {
    state_->wanted_concurrency.store(std::max(concurrency, 1), std::memory_order_relaxed);
    wakeup();  // the pipeline thread applies it in its next do_work()
}

std::size_t Uploader::abandon() noexcept {
    State& s = *state_;
    for (auto& slot : s.slots) {
        if (slot->job) {
            (void)s.multi.remove(slot->easy);
            slot->job.reset();
            s.idle.push_back(slot.get());
        }
    }
    s.fresh.clear();
    s.retry_ready.clear();
    s.waiting.clear();
    return std::exchange(s.held, 0);
}

}  // namespace xrayd
