// HealthState: readiness from the daemon's inputs.
#include <xrayd/admin/health_state.h>

#include <fmt/format.h>

namespace xrayd {

void HealthState::upload_succeeded() noexcept {
    failing_since_.store(not_failing, std::memory_order_relaxed);
}

void HealthState::upload_failed(TimePoint now) noexcept {
    // Only the first failure of a run starts the clock.
    Clock::rep expected = not_failing;
    (void)failing_since_.compare_exchange_strong(expected, now.time_since_epoch().count(),
                                                 std::memory_order_relaxed);
}

Duration HealthState::failing_for(TimePoint now) const noexcept {
    const Clock::rep since = failing_since_.load(std::memory_order_relaxed);
    if (since == not_failing) {
        return Duration::zero();
    }
    const Duration d = now - TimePoint(Duration(since));
    return d < Duration::zero() ? Duration::zero() : d;
}

Readiness HealthState::readiness(TimePoint now, Duration failure_threshold) const {
    if (!listening()) {
        return {false, "not listening for segments"};
    }
    const std::size_t started = receivers_started_.load(std::memory_order_relaxed);
    const std::size_t failed = receivers_failed_.load(std::memory_order_relaxed);
    if (started > 0 && failed >= started) {
        return {false, fmt::format("no receiver thread is running: all {} stopped on a fatal "
                                   "error (see the Error log; restart xrayd)",
                                   started)};
    }
    if (!credentials_usable()) {
        return {false, "no usable AWS credentials"};
    }
    const Duration failing = failing_for(now);
    if (failing > failure_threshold) {
        using Seconds = std::chrono::duration<double>;
        return {false,
                fmt::format("uploads to X-Ray have been failing for {:.1f}s (threshold {:.1f}s)",
                            std::chrono::duration_cast<Seconds>(failing).count(),
                            std::chrono::duration_cast<Seconds>(failure_threshold).count())};
    }
    if (failed > 0) {
        return {true, fmt::format("{} of {} receiver threads stopped on a fatal error; the "
                                  "others receive their traffic (see the Error log)",
                                  failed, started)};
    }
    return {true, {}};
}

void UploadHealthTracker::update(const CounterSnapshot& counters, TimePoint now,
                                 HealthState& health) {
    std::uint64_t failures = 0;
    for (Counter c :
         {Counter::backend_timeout, Counter::backend_connection_refused, Counter::backend_http_4xx,
          Counter::backend_http_5xx, Counter::backend_unknown_host, Counter::backend_other}) {
        failures += counters[c];
    }
    const std::uint64_t sent = counters[Counter::segments_sent];
    std::lock_guard lock(mutex_);
    if (sent > sent_) {
        health.upload_succeeded();
    } else if (failures > failures_) {
        health.upload_failed(now);
    }
    sent_ = sent;
    failures_ = failures;
}

}  // namespace xrayd
