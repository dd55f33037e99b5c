// The accounting summary: one log line with the identity and every counter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <xrayd/stats/counters.h>

namespace xrayd {

// "received=N sent=N rejected=N dropped=N held=N name=value ..." with every counter, in
// declaration order. `held` is what the daemon still holds (counted by the caller, not derived),
// so the identity received = sent + rejected + dropped + held (+ spooled) is a real check.
// `spooled` (with a disk spool: the segments left in it) adds " spooled=N" after held.
[[nodiscard]] std::string format_summary(const CounterSnapshot& s, std::size_t held,
                                         std::optional<std::uint64_t> spooled = std::nullopt);

// True when received = sent + rejected + dropped + held + spooled.
[[nodiscard]] bool accounting_balances(const CounterSnapshot& s, std::size_t held,
                                       std::uint64_t spooled = 0) noexcept;

// "otlp spans: received=N sent=N rejected=N dropped=N held=N": the OTLP spans' own identity
// (CounterKind::otlp_*), printed beside the segments' line when the OTLP receiver runs. `held`:
// spans the exporter still holds, counted by it; `spooled` (with a disk spool: the spans left in
// it) adds " spooled=N".
[[nodiscard]] std::string format_otlp_summary(const CounterSnapshot& s, std::size_t held,
                                              std::optional<std::uint64_t> spooled = std::nullopt);

// True when otlp_received = otlp_sent + otlp_rejected + otlp_dropped + held + spooled.
[[nodiscard]] bool otlp_accounting_balances(const CounterSnapshot& s, std::size_t held,
                                            std::uint64_t spooled = 0) noexcept;

}  // namespace xrayd
