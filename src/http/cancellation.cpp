// Cancellation over an eventfd.
#include <xrayd/http/cancellation.h>

#include <utility>

namespace xrayd {

std::shared_ptr<Cancellation> Cancellation::create() {
    return std::shared_ptr<Cancellation>(new Cancellation(EventFd("the shutdown cancellation")));
}

void Cancellation::cancel() noexcept {
    if (cancelled_.exchange(true, std::memory_order_acq_rel)) {
        return;
    }
    // One write to a fresh non-blocking eventfd cannot fail; were it to, the flag alone still
    // stops every loop that checks it.
    (void)fd_.signal();
}

void Cancellation::cancel_at(TimePoint deadline) noexcept {
    const Clock::rep at = deadline.time_since_epoch().count();
    Clock::rep current = deadline_.load(std::memory_order_relaxed);
    while (at < current &&
           !deadline_.compare_exchange_weak(current, at, std::memory_order_relaxed)) {
    }
}

}  // namespace xrayd
