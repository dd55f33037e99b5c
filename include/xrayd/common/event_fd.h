// EventFd: an eventfd used as a sticky wake-up: signal() from any thread makes it readable
// (for poll, epoll or io_uring) until drain() reads it back to zero.
#pragma once

#include <string_view>

#include <xrayd/common/unique_fd.h>

namespace xrayd {

// Non-blocking and close-on-exec. signal() and fd() from any thread; drain() from the one
// thread that waits on it. A signal before the wait still ends it: that stickiness is what the
// wake-up protocols built on it (Waker, the receivers' stop) rely on.
class EventFd {
public:
    // Throws StartupError "<what>: eventfd: <reason>" when the kernel refuses one.
    explicit EventFd(std::string_view what);

    [[nodiscard]] int fd() const noexcept { return fd_.get(); }

    // Makes fd() readable. 0, or the errno of a failed write; a full counter (EAGAIN) is not a
    // failure, since the fd is readable then already. Never blocks.
    [[nodiscard]] int signal() noexcept;

    // Reads the counter back to zero. 0, or the errno of a failed read; nothing to read (EAGAIN)
    // is not a failure.
    [[nodiscard]] int drain() noexcept;

private:
    UniqueFd fd_;
};

}  // namespace xrayd
