// Cancellation over an eventfd.
#include <xrayd/http/cancellation.h>

#include <sys/eventfd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include <xrayd/common/startup_error.h>

namespace xrayd {

std::shared_ptr<Cancellation> Cancellation::create() {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd) {
        throw StartupError(std::string("eventfd for the shutdown cancellation failed: ") +
                           std::strerror(errno));
    }
    return std::shared_ptr<Cancellation>(new Cancellation(std::move(fd)));
}

void Cancellation::cancel() noexcept {
    if (cancelled_.exchange(true, std::memory_order_acq_rel)) {
        return;
    }
    const std::uint64_t one = 1;
    // Non-blocking, and the counter is far from overflow after one write: this cannot fail on a
    // valid eventfd. The flag alone still stops every loop that checks it.
    while (::write(fd_.get(), &one, sizeof one) < 0 && errno == EINTR) {
    }
}

void Cancellation::cancel_at(TimePoint deadline) noexcept {
    const Clock::rep at = deadline.time_since_epoch().count();
    Clock::rep current = deadline_.load(std::memory_order_relaxed);
    while (at < current &&
           !deadline_.compare_exchange_weak(current, at, std::memory_order_relaxed)) {
    }
}

}  // namespace xrayd
