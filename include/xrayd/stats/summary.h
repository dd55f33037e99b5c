// The accounting summary: one log line with the identity and every counter.
#pragma once

#include <cstddef>
#include <string>

#include <xrayd/stats/counters.h>

namespace xrayd {

// "received=N sent=N rejected=N dropped=N held=N name=value ..." with every counter, in
// declaration order. `held` is what the daemon still holds (counted by the caller, not derived),
// so the identity received = sent + rejected + dropped + held is a real check.
[[nodiscard]] std::string format_summary(const CounterSnapshot& s, std::size_t held);

// True when received = sent + rejected + dropped + held.
[[nodiscard]] bool accounting_balances(const CounterSnapshot& s, std::size_t held) noexcept;

}  // namespace xrayd
