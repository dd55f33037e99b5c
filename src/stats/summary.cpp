// The accounting summary line.
#include <xrayd/stats/summary.h>

#include <fmt/format.h>

namespace xrayd {

std::string format_summary(const CounterSnapshot& s, std::size_t held,
                           std::optional<std::uint64_t> spooled) {
    std::string out =
        fmt::format("received={} sent={} rejected={} dropped={} held={}",
                    s.total(CounterKind::received), s.total(CounterKind::sent),
                    s.total(CounterKind::rejected), s.total(CounterKind::dropped), held);
    if (spooled) {
        out += fmt::format(" spooled={}", *spooled);
    }
    for (std::size_t i = 0; i < counter_count; ++i) {
        out += fmt::format(" {}={}", counter_infos[i].name, s.values[i]);
    }
    return out;
}

bool accounting_balances(const CounterSnapshot& s, std::size_t held,
                         std::uint64_t spooled) noexcept {
    return s.total(CounterKind::received) == s.total(CounterKind::sent) +
                                                 s.total(CounterKind::rejected) +
                                                 s.total(CounterKind::dropped) + held + spooled;
}

std::string format_otlp_summary(const CounterSnapshot& s, std::size_t held,
                                std::optional<std::uint64_t> spooled) {
    std::string out =
        fmt::format("otlp spans: received={} sent={} rejected={} dropped={} held={}",
                    s.total(CounterKind::otlp_received), s.total(CounterKind::otlp_sent),
                    s.total(CounterKind::otlp_rejected), s.total(CounterKind::otlp_dropped), held);
    if (spooled) {
        out += fmt::format(" spooled={}", *spooled);
    }
    return out;
}

bool otlp_accounting_balances(const CounterSnapshot& s, std::size_t held,
                              std::uint64_t spooled) noexcept {
    return s.total(CounterKind::otlp_received) ==
           s.total(CounterKind::otlp_sent) + s.total(CounterKind::otlp_rejected) +
               s.total(CounterKind::otlp_dropped) + held + spooled;
}

}  // namespace xrayd
