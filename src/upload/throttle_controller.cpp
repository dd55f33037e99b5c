// ThrottleController: AIMD limit on requests in flight.
#include <xrayd/upload/throttle_controller.h>

#include <algorithm>

namespace xrayd {

ThrottleController::ThrottleController(int ceiling, unsigned successes_per_increase) noexcept
    : ceiling_(std::max(ceiling, 1)),
      limit_(ceiling_),
      successes_per_increase_(std::max(successes_per_increase, 1u)) {}

ThrottleEvent ThrottleController::on_throttled(TimePoint started, TimePoint now) noexcept {
    ThrottleEvent event = ThrottleEvent::none;
    if (!throttling_) {
        throttling_ = true;
        episode_ = ThrottleEpisode{now, 0, 0, limit_};
        event = ThrottleEvent::started;
    }
    ++episode_.throttled;
    successes_ = 0;
    // A request sent before the last halving saw the old limit: it says nothing new.
    if (!decreased_ || started >= last_decrease_) {
        limit_ = std::max(1, limit_ / 2);
        decreased_ = true;
        last_decrease_ = now;
        episode_.lowest_limit = std::min(episode_.lowest_limit, limit_);
    }
    return event;
}

ThrottleEvent ThrottleController::on_success() noexcept {
    if (!throttling_) {
        return ThrottleEvent::none;
    }
    ++episode_.succeeded;
    if (++successes_ >= successes_per_increase_) {
        successes_ = 0;
        limit_ = std::min(ceiling_, limit_ + 1);
    }
    if (limit_ < ceiling_) {
        return ThrottleEvent::none;
    }
    throttling_ = false;
    decreased_ = false;
    return ThrottleEvent::ended;
}

void ThrottleController::set_ceiling(int ceiling) noexcept {
    ceiling_ = std::max(ceiling, 1);
    limit_ = throttling_ ? std::min(limit_, ceiling_) : ceiling_;
    if (throttling_) {
        episode_.lowest_limit = std::min(episode_.lowest_limit, limit_);
    }
}

}  // namespace xrayd
