// PeriodicSummary: when the summary line is due, and its text.
#include <xrayd/admin/periodic_summary.h>

#include <algorithm>
#include <limits>

#include <fmt/format.h>

namespace xrayd {
namespace {

// " (name=n, ...)" for the non-zero counters of `kind` in the interval, "" when all are zero.
std::string breakdown(const CounterSnapshot& from, const CounterSnapshot& to, CounterKind kind,
                      std::string_view strip_prefix) {
    std::string out;
    for (std::size_t i = 0; i < counter_count; ++i) {
        if (counter_infos[i].kind != kind) {
            continue;
        }
        const std::uint64_t n = to.values[i] - from.values[i];
        if (n == 0) {
            continue;
        }
        std::string_view name = counter_infos[i].name;
        if (name.starts_with(strip_prefix)) {
            name.remove_prefix(strip_prefix.size());
        }
        out += fmt::format("{}{}={}", out.empty() ? " (" : ", ", name, n);
    }
    if (!out.empty()) {
        out.push_back(')');
    }
    return out;
}

std::uint64_t delta(const CounterSnapshot& from, const CounterSnapshot& to, Counter c) {
    return to[c] - from[c];
}

}  // namespace

PeriodicSummary::PeriodicSummary(Duration interval, const CounterSnapshot& baseline,
                                 TimePoint now) noexcept
    : interval_(interval), baseline_(baseline), last_(now) {}

void PeriodicSummary::set_interval(Duration interval, TimePoint now) noexcept {
    interval_ = interval;
    last_ = now;
}

int PeriodicSummary::poll_timeout_ms(TimePoint now) const noexcept {
    if (!enabled()) {
        return -1;
    }
    const Duration left = last_ + interval_ - now;
    if (left <= Duration::zero()) {
        return 0;
    }
    // Rounded up, so a wake-up never comes a little early and finds nothing due.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return static_cast<int>(std::min<std::int64_t>(ms, std::numeric_limits<int>::max()));
}

std::optional<std::string> PeriodicSummary::tick(const CounterSnapshot& current, TimePoint now,
                                                 const HealthState* gauges) {
    if (!enabled() || now - last_ < interval_) {
        return std::nullopt;
    }
    std::string line = format(baseline_, current, now - last_, gauges);
    baseline_ = current;
    last_ = now;
    return line;
}

std::string PeriodicSummary::format(const CounterSnapshot& from, const CounterSnapshot& to,
                                    Duration elapsed, const HealthState* gauges) {
    const double seconds = std::max(std::chrono::duration<double>(elapsed).count(), 1e-3);
    const auto total = [&](CounterKind kind) { return to.total(kind) - from.total(kind); };
    const std::uint64_t received = total(CounterKind::received);
    const std::uint64_t sent = total(CounterKind::sent);
    std::uint64_t backend_errors = 0;
    for (Counter c :
         {Counter::backend_timeout, Counter::backend_connection_refused, Counter::backend_http_4xx,
          Counter::backend_http_5xx, Counter::backend_unknown_host, Counter::backend_other}) {
        backend_errors += delta(from, to, c);
    }
    std::string out = fmt::format(
        "Summary of the last {:.0f}s: received {} ({:.1f}/s), sent {} ({:.1f}/s), rejected {}{}, "
        "dropped {}{}, kernel drops {}, uploads {} (retries {}, errors {})",
        seconds, received, static_cast<double>(received) / seconds, sent,
        static_cast<double>(sent) / seconds, total(CounterKind::rejected),
        breakdown(from, to, CounterKind::rejected, "rejected_"), total(CounterKind::dropped),
        breakdown(from, to, CounterKind::dropped, "dropped_"),
        delta(from, to, Counter::kernel_drops), delta(from, to, Counter::upload_requests),
        delta(from, to, Counter::upload_retries), backend_errors);
    if (to[Counter::otlp_requests] > 0) {  // the OTLP receiver has had traffic
        out += fmt::format(
            "; otlp spans received {} ({:.1f}/s), sent {} ({:.1f}/s), rejected {}{}, dropped {}{}, "
            "uploads {} (retries {}, errors {})",
            total(CounterKind::otlp_received),
            static_cast<double>(total(CounterKind::otlp_received)) / seconds,
            total(CounterKind::otlp_sent),
            static_cast<double>(total(CounterKind::otlp_sent)) / seconds,
            total(CounterKind::otlp_rejected),
            breakdown(from, to, CounterKind::otlp_rejected, "otlp_spans_rejected_"),
            total(CounterKind::otlp_dropped),
            breakdown(from, to, CounterKind::otlp_dropped, "otlp_spans_dropped_"),
            delta(from, to, Counter::otlp_upload_requests),
            delta(from, to, Counter::otlp_upload_retries),
            delta(from, to, Counter::otlp_upload_failures));
    }
    if (gauges != nullptr) {
        constexpr double mib = 1024.0 * 1024.0;
        out += fmt::format("; queue {}, held {}, memory {:.1f} of {:.1f} MiB",
                           gauges->get(Gauge::queue_depth), gauges->get(Gauge::held_segments),
                           static_cast<double>(gauges->get(Gauge::memory_in_use_bytes)) / mib,
                           static_cast<double>(gauges->get(Gauge::memory_limit_bytes)) / mib);
        if (gauges->get(Gauge::spool_files) > 0 || gauges->get(Gauge::spool_segments) > 0) {
            out +=
                fmt::format(", spooled {} ({:.1f} MiB on disk)", gauges->get(Gauge::spool_segments),
                            static_cast<double>(gauges->get(Gauge::spool_bytes)) / mib);
        }
    }
    return out;
}

}  // namespace xrayd
