// HealthState: readiness from the daemon's inputs.
#include <xrayd/admin/health_state.h>

#include <fmt/format.h>

namespace xrayd {

void HealthState::upload_succeeded(UploadPath path) noexcept {
    failing_since_[static_cast<std::size_t>(path)].store(not_failing, std::memory_order_relaxed);
}

void HealthState::upload_failed(TimePoint now, UploadPath path) noexcept {
    // Only the first failure of a run starts the clock.
    Clock::rep expected = not_failing;
    (void)failing_since_[static_cast<std::size_t>(path)].compare_exchange_strong(
        expected, now.time_since_epoch().count(), std::memory_order_relaxed);
}

Duration HealthState::failing_for(TimePoint now, UploadPath path) const noexcept {
    const Clock::rep since =
        failing_since_[static_cast<std::size_t>(path)].load(std::memory_order_relaxed);
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
    for (const auto& [path, what] : {std::pair{UploadPath::segments, "uploads"},
                                     std::pair{UploadPath::otlp, "OTLP uploads"}}) {
        const Duration failing = failing_for(now, path);
        if (failing > failure_threshold) {
            using Seconds = std::chrono::duration<double>;
            return {false,
                    fmt::format("{} to X-Ray have been failing for {:.1f}s (threshold {:.1f}s)",
                                what, std::chrono::duration_cast<Seconds>(failing).count(),
                                std::chrono::duration_cast<Seconds>(failure_threshold).count())};
        }
    }
    if (failed > 0) {
        return {true, fmt::format("{} of {} receiver threads stopped on a fatal error; the "
                                  "others receive their traffic (see the Error log)",
                                  failed, started)};
    }
    return {true, {}};
}

void UploadHealthTracker::update_path(Seen& seen, std::uint64_t sent, std::uint64_t failures,
                                      UploadPath path, TimePoint now,
                                      HealthState& health) noexcept {
    if (sent > seen.sent) {
        health.upload_succeeded(path);
    } else if (failures > seen.failures) {
        health.upload_failed(now, path);
    }
    seen.sent = sent;
    seen.failures = failures;
}

void UploadHealthTracker::update(const CounterSnapshot& counters, TimePoint now,
                                 HealthState& health) {
    std::uint64_t failures = 0;
    for (Counter c :
         {Counter::backend_timeout, Counter::backend_connection_refused, Counter::backend_http_4xx,
          Counter::backend_http_5xx, Counter::backend_unknown_host, Counter::backend_other}) {
        failures += counters[c];
    }
    std::lock_guard lock(mutex_);
    update_path(segments_, counters[Counter::segments_sent], failures, UploadPath::segments, now,
                health);
    update_path(otlp_, counters[Counter::otlp_spans_sent], counters[Counter::otlp_upload_failures],
                UploadPath::otlp, now, health);
}

}  // namespace xrayd
