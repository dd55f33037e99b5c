// The Prometheus text exposition (format 0.0.4) of every counter, gauge and the latency histogram.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <xrayd/admin/health_state.h>
#include <xrayd/stats/counters.h>
#include <xrayd/stats/latency_histogram.h>

namespace xrayd {

// Labels of the constant xrayd_build_info metric, e.g. {"version", "0.1.0"}.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// The /metrics body:
//   xrayd_<counter>_total (counter, the help text of the X-macro) for every counter;
//   xrayd_segments_total{outcome="received|sent|rejected|dropped"} (the accounting identity);
//   xrayd_<gauge> (gauge) for every gauge, xrayd_ready and xrayd_listening (0/1);
//   xrayd_upload_latency_seconds (histogram);
//   xrayd_build_info{labels} 1.
// Thread-safe (pure).
[[nodiscard]] std::string format_metrics(const CounterSnapshot& counters, const HealthState& health,
                                         bool ready, const LatencyHistogram::Snapshot& latency,
                                         const MetricLabels& build_info);

// A label value escaped for the text format (backslash, double quote, newline).
[[nodiscard]] std::string escape_label_value(std::string_view value);

}  // namespace xrayd
