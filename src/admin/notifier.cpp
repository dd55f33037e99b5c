// Notifier: sd_notify() messages and the watchdog keep-alive thread.
#include <xrayd/admin/notifier.h>

#include <xrayd_config.h>

#if XRAYD_STATIC_RELEASE
#include <unistd.h>

#include <xrayd/admin/notify_socket.h>
#else
#include <systemd/sd-daemon.h>
#endif

#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include <xrayd/common/thread_name.h>

namespace xrayd {
namespace {

// libsystemd has no static library: the static release build sends the same datagrams itself
// (notify_socket.h), so Type=notify and WatchdogSec= in the shipped unit work with it too.
#if XRAYD_STATIC_RELEASE
int send_notification(const char* message) noexcept {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    return socket == nullptr ? 0 : notify_socket_send(socket, message);
}

int watchdog_enabled(std::uint64_t* usec) noexcept {
    *usec =
        watchdog_usec_for(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"), ::getpid());
    return *usec > 0 ? 1 : 0;
}
#else
int send_notification(const char* message) noexcept {
    return sd_notify(0, message);
}

int watchdog_enabled(std::uint64_t* usec) noexcept {
    return sd_watchdog_enabled(0, usec);
}
#endif

// STATUS= takes one line.
std::string one_line(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c == '\n' || c == '\r') {
            c = ' ';
        }
    }
    return out;
}

}  // namespace

Notifier::Notifier(Logger& logger) : logger_(logger) {
    // sd_notify() sends nothing without NOTIFY_SOCKET; libsystemd has no query for it, so the
    // variable is read here once, before any thread could change the environment.
    const char* socket = std::getenv("NOTIFY_SOCKET");
    active_ = socket != nullptr && socket[0] != '\0';
    std::uint64_t usec = 0;
    // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is this process.
    if (active_ && watchdog_enabled(&usec) > 0 && usec > 0) {
        interval_ = std::chrono::duration_cast<Duration>(std::chrono::microseconds(usec / 2));
    }
}

Notifier::~Notifier() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    if (watchdog_.joinable()) {
        watchdog_.join();
    }
}

void Notifier::set_liveness_check(std::function<bool()> alive) {
    std::lock_guard lock(mutex_);
    alive_ = std::move(alive);
}

void Notifier::notify(const std::string& message) noexcept {
    if (!active_) {
        return;
    }
    const int rc = send_notification(message.c_str());
    if (rc < 0) {
        logger_.warn("sd_notify({}) failed: {}", message.substr(0, message.find('\n')),
                     std::strerror(-rc));
    }
}

void Notifier::ready(std::string_view status) {
    std::string message = "READY=1";
    if (!status.empty()) {
        message += "\nSTATUS=" + one_line(status);
    }
    notify(message);
    if (interval_.count() > 0 && !watchdog_.joinable()) {
        logger_.debug("systemd watchdog: keep-alive every {} ms",
                      std::chrono::duration_cast<std::chrono::milliseconds>(interval_).count());
        watchdog_ = std::thread([this] {
            name_this_thread("xrayd-watchdog");
            watchdog_loop();
        });
    }
}

void Notifier::status(std::string_view text) {
    notify("STATUS=" + one_line(text));
}

void Notifier::reloading() {
    // MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match the READY=1 that follows.
    timespec ts{};
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    const auto usec = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u +
                      static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
    notify(fmt::format("RELOADING=1\nMONOTONIC_USEC={}", usec));
}

void Notifier::stopping(std::string_view status) {
    std::string message = "STOPPING=1";
    if (!status.empty()) {
        message += "\nSTATUS=" + one_line(status);
    }
    notify(message);
}

void Notifier::watchdog_loop() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
        const std::function<bool()> alive = alive_;
        lock.unlock();
        if (!alive || alive()) {
            notify("WATCHDOG=1");
        } else {
            logger_.error("Liveness check failed: not keeping the systemd watchdog alive");
        }
        lock.lock();
        // A timed wait is the schedule here, not synchronisation: stop_ ends it at once.
        wake_.wait_for(lock, interval_, [this] { return stop_; });
    }
}

}  // namespace xrayd
