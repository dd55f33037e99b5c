// EventFd over eventfd(2).
#include <xrayd/common/event_fd.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include <fmt/format.h>

#include <xrayd/common/error_text.h>
#include <xrayd/common/startup_error.h>

namespace xrayd {

EventFd::EventFd(std::string_view what) : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (!fd_.valid()) {
        throw StartupError(fmt::format("{}: eventfd: {}", what, error_text(errno)));
    }
}

int EventFd::signal() noexcept {
    const std::uint64_t one = 1;
    for (;;) {
        if (::write(fd_.get(), &one, sizeof one) >= 0 || errno == EAGAIN) {
            return 0;
        }
        if (errno != EINTR) {
            return errno;
        }
    }
}

int EventFd::drain() noexcept {
    std::uint64_t count = 0;
    for (;;) {
        if (::read(fd_.get(), &count, sizeof count) >= 0 || errno == EAGAIN) {
            return 0;
        }
        if (errno != EINTR) {
            return errno;
        }
    }
}

}  // namespace xrayd
