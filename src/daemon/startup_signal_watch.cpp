// StartupSignalWatch: see startup_signal_watch.h.
#include "startup_signal_watch.h"

#include <csignal>

#include <chrono>

#include <xrayd/common/thread_name.h>

namespace xrayd {

StartupSignalWatch::StartupSignalWatch(Cancellation& cancel)
    : cancel_(cancel), thread_([this] { watch(); }) {}

StartupSignalWatch::~StartupSignalWatch() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void StartupSignalWatch::watch() {
    name_this_thread("xrayd-startup");
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
        sigset_t pending;
        sigemptyset(&pending);
        // sigpending cannot fail with a valid pointer; on the impossible error nothing fires.
        if (sigpending(&pending) == 0 &&
            (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1)) {
            signalled_.store(true, std::memory_order_release);
            cancel_.cancel();
            return;
        }
        wake_.wait_for(lock, std::chrono::milliseconds(50), [this] { return stop_; });
    }
}

}  // namespace xrayd
