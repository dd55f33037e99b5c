// CredentialsClock: wall time and interruptible sleeps for credential refresh, replaceable in
// tests by ManualCredentialsClock (no real waiting).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <stop_token>

#include <xrayd/common/time.h>

namespace xrayd {

// Thread-safe. Outlives every provider that uses it.
class CredentialsClock {
public:
    virtual ~CredentialsClock() = default;
    [[nodiscard]] virtual WallClock::time_point now() const noexcept = 0;
    // Blocks until now() >= deadline (true) or a stop is requested on `stop` (false).
    virtual bool sleep_until(WallClock::time_point deadline, std::stop_token stop) noexcept = 0;
};

// The real clock.
class SystemCredentialsClock final : public CredentialsClock {
public:
    [[nodiscard]] WallClock::time_point now() const noexcept override { return WallClock::now(); }
    bool sleep_until(WallClock::time_point deadline, std::stop_token stop) noexcept override;

private:
    std::mutex mutex_;
    std::condition_variable_any cv_;
};

// A clock that moves only when advance() is called. Sleepers wake when time passes their
// deadline. For tests: advance() then wait_for_sleeper_after(now()) to know the refresh thread
// has done its work and gone back to sleep.
class ManualCredentialsClock final : public CredentialsClock {
public:
    explicit ManualCredentialsClock(WallClock::time_point start) noexcept : now_(start) {}

    [[nodiscard]] WallClock::time_point now() const noexcept override;
    bool sleep_until(WallClock::time_point deadline, std::stop_token stop) noexcept override;

    void advance(Duration by) noexcept;
    void set(WallClock::time_point to) noexcept;
    // Waits (real time, up to `timeout`) until some thread sleeps with a deadline later than
    // `after`. False on timeout.
    [[nodiscard]] bool wait_for_sleeper_after(WallClock::time_point after,
                                              std::chrono::milliseconds timeout) noexcept;
    // The deadline of the latest sleeper (the epoch when none sleeps).
    [[nodiscard]] WallClock::time_point sleeper_deadline() const noexcept;

private:
    mutable std::mutex mutex_;
    std::condition_variable_any cv_;
    WallClock::time_point now_;
    WallClock::time_point sleeper_deadline_{};
    std::size_t sleepers_ = 0;
};

}  // namespace xrayd
