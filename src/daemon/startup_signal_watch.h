// StartupSignalWatch: lets SIGTERM/SIGINT cancel the credential fetches of start-up, before the
// daemon's signal loop runs. Private to src/daemon.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <xrayd/http/cancellation.h>

namespace xrayd {

// While alive, a thread looks every 50 ms at the process's pending signals (sigpending) and
// fires `cancel` once SIGTERM or SIGINT is pending. It only looks: the signal stays pending for
// the signalfd that Daemon::run() reads, so a start-up that still completes shuts down as usual.
// Why: the first credential fetch runs synchronously in the constructor (a credential_process
// may take up to its 60 s timeout), and ECS or Kubernetes would SIGKILL a process that ignores
// SIGTERM that long. Construct and destroy on the main thread; `cancel` must outlive it.
class StartupSignalWatch {
public:
    explicit StartupSignalWatch(Cancellation& cancel);
    ~StartupSignalWatch();
    StartupSignalWatch(const StartupSignalWatch&) = delete;
    StartupSignalWatch& operator=(const StartupSignalWatch&) = delete;

    // True once a shutdown signal was seen (and the cancellation fired).
    [[nodiscard]] bool signalled() const noexcept {
        return signalled_.load(std::memory_order_acquire);
    }

private:
    void watch();

    Cancellation& cancel_;
    std::atomic<bool> signalled_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stop_ = false;
    std::thread thread_;  // last: started once every member above exists
};

}  // namespace xrayd
