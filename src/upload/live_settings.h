// LiveSettings: the uploader settings a reload changes while it runs.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>

#include <xrayd/common/time.h>

namespace xrayd {

// Written from any thread (SIGHUP reload), read by the pipeline thread. Each value stands
// alone, so relaxed atomics suffice: a reader sees the old value or the new one, and a stale
// read only delays the change to the next read (the next pass, failure or request).
class LiveSettings {
public:
    LiveSettings(int concurrency, Duration retry_budget,
                 std::chrono::milliseconds request_timeout) noexcept
        : concurrency_(concurrency),
          retry_budget_(retry_budget.count()),
          request_timeout_ms_(request_timeout.count()) {}

    // Below 1 is taken as 1.
    void set_concurrency(int concurrency) noexcept {
        concurrency_.store(std::max(concurrency, 1), std::memory_order_relaxed);
    }
    // Non-positive values are ignored.
    void set_retry_budget(Duration budget) noexcept {
        if (budget > Duration::zero()) {
            retry_budget_.store(budget.count(), std::memory_order_relaxed);
        }
    }
    void set_request_timeout(std::chrono::milliseconds timeout) noexcept {
        if (timeout > std::chrono::milliseconds::zero()) {
            request_timeout_ms_.store(timeout.count(), std::memory_order_relaxed);
        }
    }

    [[nodiscard]] int concurrency() const noexcept {
        return concurrency_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] Duration retry_budget() const noexcept {
        return Duration(retry_budget_.load(std::memory_order_relaxed));
    }
    [[nodiscard]] std::chrono::milliseconds request_timeout() const noexcept {
        return std::chrono::milliseconds(request_timeout_ms_.load(std::memory_order_relaxed));
    }

private:
    std::atomic<int> concurrency_;
    std::atomic<Duration::rep> retry_budget_;
    std::atomic<std::chrono::milliseconds::rep> request_timeout_ms_;
};

}  // namespace xrayd
