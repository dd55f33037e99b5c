// PeriodicSummary: the once-a-minute Info line with rates and drops, from counter snapshots.
#pragma once

#include <optional>
#include <string>

#include <xrayd/admin/health_state.h>
#include <xrayd/common/time.h>
#include <xrayd/stats/counters.h>

namespace xrayd {

// Decides when the summary is due and formats it from the difference between two snapshots.
// Not thread-safe: owned and called by one thread (the daemon's main loop).
class PeriodicSummary {
public:
    // `interval` zero: disabled (tick() never returns a line).
    PeriodicSummary(Duration interval, const CounterSnapshot& baseline, TimePoint now) noexcept;

    [[nodiscard]] bool enabled() const noexcept { return interval_.count() > 0; }
    // SIGHUP reload: the next line is due `interval` after `now`.
    void set_interval(Duration interval, TimePoint now) noexcept;

    // Milliseconds until the next line is due, for poll(): -1 when disabled, 0 when due.
    [[nodiscard]] int poll_timeout_ms(TimePoint now) const noexcept;

    // The line when due (and `current` becomes the new baseline), else nullopt. `gauges`
    // (nullable) adds queue depth and memory.
    [[nodiscard]] std::optional<std::string> tick(const CounterSnapshot& current, TimePoint now,
                                                  const HealthState* gauges = nullptr);

    // "Summary of the last 60s: received 1200 (20.0/s), sent 1190 (19.8/s), rejected 5
    // (bad_json=5), dropped 5 (buffer_full=5), kernel drops 0, uploads 24 (retries 0, errors 0);
    // queue 3, memory 1.2 of 160.0 MiB". Thread-safe (pure).
    [[nodiscard]] static std::string format(const CounterSnapshot& from, const CounterSnapshot& to,
                                            Duration elapsed, const HealthState* gauges);

private:
    Duration interval_;
    CounterSnapshot baseline_;
    TimePoint last_;
};

}  // namespace xrayd
