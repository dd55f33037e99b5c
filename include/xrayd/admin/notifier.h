// Notifier: the systemd notify protocol (sd_notify) — readiness, status, stopping, watchdog.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include <xrayd/common/time.h>
#include <xrayd/log/logger.h>

namespace xrayd {

// Talks to the service manager through libsystemd's sd_notify(), which reads NOTIFY_SOCKET
// from the process environment; outside systemd (no NOTIFY_SOCKET) every call is a cheap no-op.
// The watchdog (WATCHDOG_USEC set by WatchdogSec=, for this PID) is kept by a thread started
// by ready() that sends WATCHDOG=1 every half period while the liveness check passes; a failing
// check withholds the ping so systemd restarts the hung daemon.
//
// Create it in the main thread before other threads start (libsystemd reads the environment).
// Every method may be called from any thread. Lifetime: stops its thread in the destructor;
// the Logger must outlive it.
class Notifier {
public:
    explicit Notifier(Logger& logger);
    ~Notifier();
    Notifier(const Notifier&) = delete;
    Notifier& operator=(const Notifier&) = delete;

    // True when a service manager listens (NOTIFY_SOCKET set).
    [[nodiscard]] bool active() const noexcept { return active_; }
    // The keep-alive period (half of WATCHDOG_USEC); zero when the watchdog is off.
    [[nodiscard]] Duration watchdog_interval() const noexcept { return interval_; }

    // Set before ready(): called by the watchdog thread before each ping; false skips the ping.
    // IMPORTANT: runs on the watchdog thread; must be thread-safe and must not block for long.
    void set_liveness_check(std::function<bool()> alive);

    // READY=1 (with STATUS= when `status` is not empty), then starts the watchdog thread.
    // Send it once the sockets are bound and credentials resolved (or the local sink is used).
    void ready(std::string_view status = {});
    // STATUS=<text>: shown by `systemctl status`.
    void status(std::string_view text);
    // RELOADING=1 before a SIGHUP reload; send ready() again when it is done.
    void reloading();
    // STOPPING=1 (with STATUS=) at the start of the shutdown; the watchdog keeps pinging
    // during the drain.
    void stopping(std::string_view status = {});

private:
    void notify(const std::string& message) noexcept;
    void watchdog_loop();

    Logger& logger_;
    bool active_ = false;
    Duration interval_{};
    std::function<bool()> alive_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stop_ = false;
    std::thread watchdog_;
};

}  // namespace xrayd
