// MemoryBudget: the byte limit (-m) on everything xrayd holds for segments.
#pragma once

#include <atomic>
#include <cstddef>

namespace xrayd {

// Counts bytes held for segments and batches against the configured limit. Lock-free; any
// thread. Holders release exactly what they reserved.
class MemoryBudget {
public:
    explicit MemoryBudget(std::size_t limit_bytes) noexcept : limit_(limit_bytes) {}
    MemoryBudget(const MemoryBudget&) = delete;
    MemoryBudget& operator=(const MemoryBudget&) = delete;

    // Reserves n bytes if that keeps usage within the limit. False (and nothing reserved)
    // otherwise: the caller drops the new segment and counts it.
    [[nodiscard]] bool try_reserve(std::size_t n) noexcept {
        std::size_t used = used_.load(std::memory_order_relaxed);
        do {
            if (n > limit_ || used > limit_ - n) {
                return false;
            }
        } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
        return true;
    }
    // Reserves n bytes even past the limit: for data already held that changes form (a
    // segment escaped into a batch body), which must stay counted but must not be lost.
    void force_reserve(std::size_t n) noexcept { used_.fetch_add(n, std::memory_order_relaxed); }
    void release(std::size_t n) noexcept { used_.fetch_sub(n, std::memory_order_relaxed); }

    [[nodiscard]] std::size_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

private:
    const std::size_t limit_;
    std::atomic<std::size_t> used_{0};
};

}  // namespace xrayd
