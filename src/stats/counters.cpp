// Counters: snapshot and per-kind totals.
#include <xrayd/stats/counters.h>

namespace xrayd {

std::uint64_t CounterSnapshot::total(CounterKind kind) const noexcept {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < counter_count; ++i) {
        if (counter_infos[i].kind == kind) {
            sum += values[i];
        }
    }
    return sum;
}

CounterSnapshot Counters::snapshot() const noexcept {
    CounterSnapshot s;
    for (std::size_t i = 0; i < counter_count; ++i) {
        s.values[i] = cells_[i].value.load(std::memory_order_relaxed);
    }
    return s;
}

}  // namespace xrayd
