// Cancellation: a one-way "give up now" flag with a pollable fd, so that blocking control-plane
// calls (credential fetches over HTTP, credential_process) end promptly at shutdown.
#pragma once

#include <atomic>
#include <memory>

#include <xrayd/common/unique_fd.h>

namespace xrayd {

// Thread-safe: cancel() from any thread (the signal-handling main thread), cancelled() and fd()
// from the threads that wait. Shared (shared_ptr) by the daemon and every client it is given
// to; it lives as long as its last holder.
class Cancellation {
public:
    // Throws StartupError when the eventfd cannot be created.
    [[nodiscard]] static std::shared_ptr<Cancellation> create();

    // Sets the flag and makes fd() readable for good. Idempotent; never blocks.
    void cancel() noexcept;
    [[nodiscard]] bool cancelled() const noexcept {
        return cancelled_.load(std::memory_order_acquire);
    }
    // An eventfd that polls readable (POLLIN) once cancel() ran. IMPORTANT: poll it, never read
    // it: reading would clear it for every other waiter.
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }

    Cancellation(const Cancellation&) = delete;
    Cancellation& operator=(const Cancellation&) = delete;

private:
    explicit Cancellation(UniqueFd fd) noexcept : fd_(std::move(fd)) {}
    UniqueFd fd_;
    std::atomic<bool> cancelled_{false};
};

// True when `cancel` is non-null and cancelled.
[[nodiscard]] inline bool is_cancelled(const Cancellation* cancel) noexcept {
    return cancel != nullptr && cancel->cancelled();
}

}  // namespace xrayd
