// Prometheus text exposition of the daemon's counters, gauges and upload latency.
#include <xrayd/admin/metrics.h>

#include <tuple>

#include <fmt/format.h>

namespace xrayd {
namespace {

// HELP text escaping: backslash and newline.
std::string escape_help(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out.push_back(c);
        }
    }
    return out;
}

void header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name, type);
}

// Go's strconv.FormatFloat(f, 'g', -1, 64) is what Prometheus clients print; fmt's shortest
// round-trip form is equivalent for the values here.
std::string number(double value) {
    return fmt::format("{}", value);
}

}  // namespace

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string format_metrics(const CounterSnapshot& counters, const HealthState& health, bool ready,
                           const LatencyHistogram::Snapshot& latency,
                           const MetricLabels& build_info) {
    std::string out;
    out.reserve(8192);
    for (std::size_t i = 0; i < counter_count; ++i) {
        const std::string name = fmt::format("xrayd_{}_total", counter_infos[i].name);
        header(out, name, counter_infos[i].help, "counter");
        out += fmt::format("{} {}\n", name, counters.values[i]);
    }

    header(out, "xrayd_segments_total",
           "segments by accounting outcome: received = sent + rejected + dropped + held + spooled",
           "counter");
    for (const auto& [outcome, kind] :
         {std::pair{"received", CounterKind::received}, std::pair{"sent", CounterKind::sent},
          std::pair{"rejected", CounterKind::rejected},
          std::pair{"dropped", CounterKind::dropped}}) {
        out += fmt::format("xrayd_segments_total{{outcome=\"{}\"}} {}\n", outcome,
                           counters.total(kind));
    }

    // OTLP spans by outcome and reason: otlp_spans_<outcome>_<reason> counters as one family
    // per outcome, so a dashboard sums or splits them without knowing every reason.
    for (const auto& [outcome, kind, help] :
         {std::tuple{"rejected", CounterKind::otlp_rejected,
                     "OTLP spans refused, by reason (by xrayd or by X-Ray)"},
          std::tuple{"dropped", CounterKind::otlp_dropped,
                     "valid OTLP spans lost for lack of room or time, by reason"}}) {
        const std::string family = fmt::format("xrayd_otlp_spans_{}_total", outcome);
        const std::string prefix = fmt::format("otlp_spans_{}_", outcome);
        header(out, family, help, "counter");
        for (std::size_t i = 0; i < counter_count; ++i) {
            if (counter_infos[i].kind == kind && counter_infos[i].name.starts_with(prefix)) {
                out += fmt::format("{}{{reason=\"{}\"}} {}\n", family,
                                   counter_infos[i].name.substr(prefix.size()), counters.values[i]);
            }
        }
    }

    for (std::size_t i = 0; i < gauge_count; ++i) {
        const std::string name = fmt::format("xrayd_{}", gauge_infos[i].name);
        header(out, name, gauge_infos[i].help, "gauge");
        out += fmt::format("{} {}\n", name, health.get(static_cast<Gauge>(i)));
    }
    header(out, "xrayd_listening", "1 while the UDP socket(s) are bound and read", "gauge");
    out += fmt::format("xrayd_listening {}\n", health.listening() ? 1 : 0);
    header(out, "xrayd_ready", "1 when /readyz answers 200", "gauge");
    out += fmt::format("xrayd_ready {}\n", ready ? 1 : 0);

    header(out, "xrayd_upload_latency_seconds",
           "PutTraceSegments request latency, from send to response", "histogram");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < LatencyHistogram::bucket_count; ++i) {
        cumulative += latency.buckets[i];
        const std::string le = i < LatencyHistogram::bounds_seconds.size()
                                   ? number(LatencyHistogram::bounds_seconds[i])
                                   : std::string("+Inf");
        out += fmt::format("xrayd_upload_latency_seconds_bucket{{le=\"{}\"}} {}\n", le, cumulative);
    }
    out += fmt::format("xrayd_upload_latency_seconds_sum {}\n", number(latency.sum_seconds));
    // The +Inf bucket and _count must agree even when a snapshot raced an observation.
    out += fmt::format("xrayd_upload_latency_seconds_count {}\n", cumulative);

    header(out, "xrayd_build_info", "xrayd build information (always 1)", "gauge");
    out += "xrayd_build_info";
    if (!build_info.empty()) {
        out.push_back('{');
        bool first = true;
        for (const auto& [key, value] : build_info) {
            out += fmt::format("{}{}=\"{}\"", first ? "" : ",", key, escape_label_value(value));
            first = false;
        }
        out.push_back('}');
    }
    out += " 1\n";
    return out;
}

}  // namespace xrayd
