// Tests for EventFd: the sticky wake-up every loop's stop and wake signal is built on.
#include <xrayd/common/event_fd.h>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>

#include <chrono>
#include <string>
#include <thread>

#include <xrayd/common/startup_error.h>

namespace {

// Whether `fd` polls readable within `timeout_ms`.
bool readable(int fd, int timeout_ms = 0) {
    pollfd pfd{fd, POLLIN, 0};
    return ::poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLIN) != 0;
}

}  // namespace

TEST_CASE("an EventFd is non-blocking and close-on-exec, and not readable until signalled") {
    xrayd::EventFd event("test");
    REQUIRE(event.fd() >= 0);
    CHECK((::fcntl(event.fd(), F_GETFL) & O_NONBLOCK) != 0);
    CHECK((::fcntl(event.fd(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK_FALSE(readable(event.fd()));
    CHECK(event.drain() == 0);  // nothing to read is not a failure
}

TEST_CASE("signals before a wait are sticky, and one drain takes them all") {
    xrayd::EventFd event("test");
    CHECK(event.signal() == 0);
    CHECK(event.signal() == 0);
    CHECK(readable(event.fd()));
    CHECK(readable(event.fd()));  // polling does not use it up
    CHECK(event.drain() == 0);
    CHECK_FALSE(readable(event.fd()));
}

TEST_CASE("a signal from another thread ends a wait on the fd") {
    xrayd::EventFd event("test");
    std::thread signaller([&event] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        CHECK(event.signal() == 0);
    });
    CHECK(readable(event.fd(), 60'000));  // a hang fails after a minute instead
    signaller.join();
}

TEST_CASE("an EventFd moves with its descriptor") {
    xrayd::EventFd first("test");
    const int fd = first.fd();
    xrayd::EventFd second(std::move(first));
    CHECK(second.fd() == fd);
    CHECK(second.signal() == 0);
    CHECK(readable(fd));
}
