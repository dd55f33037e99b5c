// Cancellation: a one-way "give up now" flag with a pollable fd, and an optional deadline, so that
// blocking control-plane calls (credential fetches, credential_process, telemetry, the sampling
// proxy's forwarding) end promptly at shutdown.
#pragma once

#include <atomic>
#include <limits>
#include <memory>
#include <optional>

#include <xrayd/common/event_fd.h>
#include <xrayd/common/time.h>

namespace xrayd {

// Thread-safe: cancel() and cancel_at() from any thread (the signal-handling main thread),
// cancelled() and fd() from the threads that wait. Shared (shared_ptr) by the daemon and every
// client it is given to; it lives as long as its last holder.
class Cancellation {
public:
    // Throws StartupError when the eventfd cannot be created.
    [[nodiscard]] static std::shared_ptr<Cancellation> create();

    // Sets the flag and makes fd() readable for good. Idempotent; never blocks.
    void cancel() noexcept;
    // Cancelled from `deadline` on (the earliest of several wins). Nothing wakes the fd then: a
    // waiter that honours a deadline polls cancelled() at an interval (HttpExchange: 200 ms).
    void cancel_at(TimePoint deadline) noexcept;
    // cancel() ran, or the deadline has passed.
    [[nodiscard]] bool cancelled() const noexcept {
        return cancel_requested() || deadline_passed();
    }
    // cancel() ran (a waiter reports "cancelled").
    [[nodiscard]] bool cancel_requested() const noexcept {
        return cancelled_.load(std::memory_order_acquire);
    }
    // The deadline of cancel_at() has passed (a waiter reports a timeout: time ran out).
    [[nodiscard]] bool deadline_passed() const noexcept {
        const Clock::rep deadline = deadline_.load(std::memory_order_relaxed);
        return deadline != no_deadline && Clock::now().time_since_epoch().count() >= deadline;
    }
    // The deadline cancel_at() set (the earliest of several), or nullopt.
    [[nodiscard]] std::optional<TimePoint> deadline() const noexcept {
        const Clock::rep deadline = deadline_.load(std::memory_order_relaxed);
        if (deadline == no_deadline) {
            return std::nullopt;
        }
        return TimePoint(Duration(deadline));
    }
    // An eventfd that polls readable (POLLIN) once cancel() ran. IMPORTANT: poll it, never read
    // it: reading would clear it for every other waiter.
    [[nodiscard]] int fd() const noexcept { return fd_.fd(); }

    Cancellation(const Cancellation&) = delete;
    Cancellation& operator=(const Cancellation&) = delete;

private:
    explicit Cancellation(EventFd fd) noexcept : fd_(std::move(fd)) {}
    static constexpr Clock::rep no_deadline = std::numeric_limits<Clock::rep>::max();
    EventFd fd_;
    std::atomic<bool> cancelled_{false};
    std::atomic<Clock::rep> deadline_{no_deadline};
};

// True when `cancel` is non-null and cancelled.
[[nodiscard]] inline bool is_cancelled(const Cancellation* cancel) noexcept {
    return cancel != nullptr && cancel->cancelled();
}

}  // namespace xrayd
