// The real and the manual credentials clocks.
#include <xrayd/aws/credentials_clock.h>

namespace xrayd {

bool SystemCredentialsClock::sleep_until(WallClock::time_point deadline,
                                         std::stop_token stop) noexcept {
    std::unique_lock lock(mutex_);
    // wait_until returns on stop or timeout; the predicate is only the stop request.
    (void)cv_.wait_until(lock, stop, deadline, [] { return false; });
    return !stop.stop_requested();
}

WallClock::time_point ManualCredentialsClock::now() const noexcept {
    std::lock_guard lock(mutex_);
    return now_;
}

bool ManualCredentialsClock::sleep_until(WallClock::time_point deadline,
                                         std::stop_token stop) noexcept {
    std::unique_lock lock(mutex_);
    ++sleepers_;
    sleeper_deadline_ = deadline;
    cv_.notify_all();
    const bool reached = cv_.wait(lock, stop, [&] { return now_ >= deadline; });
    --sleepers_;
    if (sleepers_ == 0) {
        sleeper_deadline_ = {};
    }
    cv_.notify_all();
    return reached && !stop.stop_requested();
}

void ManualCredentialsClock::advance(Duration by) noexcept {
    std::lock_guard lock(mutex_);
    now_ += std::chrono::duration_cast<WallClock::duration>(by);
    cv_.notify_all();
}

void ManualCredentialsClock::set(WallClock::time_point to) noexcept {
    std::lock_guard lock(mutex_);
    now_ = to;
    cv_.notify_all();
}

bool ManualCredentialsClock::wait_for_sleeper_after(WallClock::time_point after,
                                                    std::chrono::milliseconds timeout) noexcept {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return sleepers_ > 0 && sleeper_deadline_ > after; });
}

WallClock::time_point ManualCredentialsClock::sleeper_deadline() const noexcept {
    std::lock_guard lock(mutex_);
    return sleeper_deadline_;
}

}  // namespace xrayd
