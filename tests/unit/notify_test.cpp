// Tests of the systemd Notifier against a real NOTIFY_SOCKET (a unix datagram socket bound here).
#include <xrayd/admin/notifier.h>
#include <xrayd/admin/notify_socket.h>

#include <doctest/doctest.h>

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include <xrayd/common/unique_fd.h>

#include "temp_dir.h"

namespace xrayd {
namespace {

class NullSink final : public LogSink {
public:
    void write(std::string_view) noexcept override {}
};

// A bound unix datagram socket standing in for systemd's notification socket, exported as
// NOTIFY_SOCKET for the lifetime of the object. The variables are restored afterwards.
class FakeServiceManager {
public:
    FakeServiceManager() {
        path_ = (dir_.path() / "notify").string();
        fd_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        REQUIRE(fd_);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        REQUIRE(path_.size() < sizeof addr.sun_path);
        std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
        REQUIRE(::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::setenv("NOTIFY_SOCKET", path_.c_str(), 1) == 0);
        ::unsetenv("WATCHDOG_USEC");
        ::unsetenv("WATCHDOG_PID");
    }
    ~FakeServiceManager() {
        ::unsetenv("NOTIFY_SOCKET");
        ::unsetenv("WATCHDOG_USEC");
        ::unsetenv("WATCHDOG_PID");
    }
    FakeServiceManager(const FakeServiceManager&) = delete;
    FakeServiceManager& operator=(const FakeServiceManager&) = delete;

    // The next datagram, waiting up to a generous deadline; "" when none came.
    std::string receive(int timeout_ms = 10000) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) != 1) {
            return {};
        }
        char buf[4096];
        const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
        REQUIRE(n >= 0);
        return std::string(buf, static_cast<std::size_t>(n));
    }

private:
    test::TempDir dir_{"xrayd-notify"};
    std::string path_;
    UniqueFd fd_;
};

TEST_CASE("without NOTIFY_SOCKET the notifier is inactive and every call is a no-op") {
    ::unsetenv("NOTIFY_SOCKET");
    Logger logger(LogLevel::info, std::make_unique<NullSink>());
    Notifier n(logger);
    CHECK_FALSE(n.active());
    CHECK(n.watchdog_interval() == Duration::zero());
    n.ready("ready");
    n.status("status");
    n.reloading();
    n.stopping();
}

TEST_CASE("ready, status, reloading and stopping reach the service manager's socket") {
    FakeServiceManager manager;
    Logger logger(LogLevel::info, std::make_unique<NullSink>());
    Notifier n(logger);
    REQUIRE(n.active());
    CHECK(n.watchdog_interval() == Duration::zero());  // no WatchdogSec=

    n.ready("Receiving on 127.0.0.1:2000\nsecond line");
    CHECK(manager.receive() == "READY=1\nSTATUS=Receiving on 127.0.0.1:2000 second line");
    n.status("received 10");
    CHECK(manager.receive() == "STATUS=received 10");
    n.reloading();
    const std::string reloading = manager.receive();
    CHECK(reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="));
    n.stopping("Draining");
    CHECK(manager.receive() == "STOPPING=1\nSTATUS=Draining");
}

TEST_CASE("with WATCHDOG_USEC the notifier pings WATCHDOG=1 at half the period after ready") {
    FakeServiceManager manager;
    REQUIRE(::setenv("WATCHDOG_USEC", "200000", 1) == 0);
    REQUIRE(::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1) == 0);
    Logger logger(LogLevel::info, std::make_unique<NullSink>());
    Notifier n(logger);
    CHECK(n.watchdog_interval() == std::chrono::milliseconds(100));
    n.ready();
    CHECK(manager.receive() == "READY=1");
    CHECK(manager.receive() == "WATCHDOG=1");
    CHECK(manager.receive() == "WATCHDOG=1");
}

TEST_CASE("a watchdog for another PID is not ours to keep") {
    FakeServiceManager manager;
    REQUIRE(::setenv("WATCHDOG_USEC", "200000", 1) == 0);
    REQUIRE(::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1) == 0);
    Logger logger(LogLevel::info, std::make_unique<NullSink>());
    Notifier n(logger);
    CHECK(n.watchdog_interval() == Duration::zero());
}

TEST_CASE("a failing liveness check withholds the watchdog ping") {
    FakeServiceManager manager;
    REQUIRE(::setenv("WATCHDOG_USEC", "20000", 1) == 0);
    Logger logger(LogLevel::info, std::make_unique<NullSink>());
    Notifier n(logger);
    std::atomic<int> checks{0};
    std::atomic<bool> alive{false};
    n.set_liveness_check([&] {
        ++checks;
        return alive.load();
    });
    n.ready();
    CHECK(manager.receive() == "READY=1");
    // Wait (on the condition, with a generous deadline) until the check has refused 3 pings.
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (checks.load() < 3 && Clock::now() < deadline) {
        CHECK(manager.receive(10).empty());
    }
    REQUIRE(checks.load() >= 3);
    // Nothing was sent while the check failed: the socket holds no datagram.
    CHECK(manager.receive(0).empty());
    alive = true;
    CHECK(manager.receive() == "WATCHDOG=1");
}

// notify_socket.h: the static build's protocol code, checked in every build.
TEST_CASE("notify_socket_send delivers one datagram to a socket path") {
    FakeServiceManager manager;
    const char* path = std::getenv("NOTIFY_SOCKET");
    REQUIRE(path != nullptr);
    CHECK(notify_socket_send(path, "READY=1\nSTATUS=up") == 0);
    CHECK(manager.receive() == "READY=1\nSTATUS=up");
}

TEST_CASE("notify_socket_send reaches an abstract socket named with @") {
    const UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    const std::string name = "xrayd-notify-test-" + std::to_string(::getpid());
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path + 1, name.data(), name.size());
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), length) == 0);
    CHECK(notify_socket_send("@" + name, "WATCHDOG=1") == 0);
    pollfd p{fd.get(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10000) == 1);
    char buf[64];
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    CHECK(std::string(buf, static_cast<std::size_t>(n > 0 ? n : 0)) == "WATCHDOG=1");
}

TEST_CASE("notify_socket_send refuses a relative or empty path and reports a missing socket") {
    CHECK(notify_socket_send("", "READY=1") == -EINVAL);
    CHECK(notify_socket_send("relative/notify", "READY=1") == -EINVAL);
    CHECK(notify_socket_send("/nonexistent-xrayd-dir/notify", "READY=1") == -ENOENT);
}

TEST_CASE("watchdog_usec_for reads WATCHDOG_USEC for this PID only, as sd_watchdog_enabled") {
    CHECK(watchdog_usec_for(nullptr, nullptr, 42) == 0);
    CHECK(watchdog_usec_for("30000000", nullptr, 42) == 30000000);
    CHECK(watchdog_usec_for("30000000", "42", 42) == 30000000);
    CHECK(watchdog_usec_for("30000000", "43", 42) == 0);
    CHECK(watchdog_usec_for("30s", nullptr, 42) == 0);
    CHECK(watchdog_usec_for("", nullptr, 42) == 0);
    CHECK(watchdog_usec_for("1000", "x", 42) == 0);
}

}  // namespace
}  // namespace xrayd
