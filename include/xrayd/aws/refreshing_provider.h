// CredentialsSource (one blocking fetch) and RefreshingCredentialsProvider, which keeps a
// source's credentials fresh from a background thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include <xrayd/aws/credentials.h>
#include <xrayd/aws/credentials_clock.h>
#include <xrayd/common/result.h>
#include <xrayd/common/time.h>
#include <xrayd/http/cancellation.h>
#include <xrayd/log/logger.h>

namespace xrayd {

// Fetches one fresh set of credentials, blocking. Called only by the refresh thread of the
// RefreshingCredentialsProvider that owns it (and by its constructor), never concurrently.
class CredentialsSource {
public:
    virtual ~CredentialsSource() = default;
    // New credentials, or an error text naming the source and the cause. IMPORTANT: the error
    // must never contain a secret (keys, tokens, response bodies).
    [[nodiscard]] virtual Result<std::shared_ptr<const Credentials>, std::string> fetch() = 0;
    // "environment", "shared profile default", "web identity", "container", "ec2 imds",
    // "assume role <arn>", ...
    [[nodiscard]] virtual std::string_view name() const noexcept = 0;
};

struct RefreshPolicy {
    // Refresh this long before expiry (or half-way when the credentials live less than twice
    // this long).
    Duration refresh_before = std::chrono::minutes(5);
    Duration min_backoff = std::chrono::seconds(1);         // first retry after a failed fetch
    Duration max_backoff = std::chrono::minutes(1);         // doubling stops here
    Duration error_log_interval = std::chrono::minutes(1);  // one failure line per interval
};

// Holds an immutable snapshot and replaces it from a background thread before it expires.
// - The constructor fetches once, synchronously (so the daemon starts with credentials or a
//   logged reason), then starts the thread; the destructor stops and joins it.
// - A failed refresh keeps the old snapshot until it expires and retries with doubling backoff
//   (min..max, never later than the refresh point); failures are logged at Error at most once
//   per error_log_interval, with the source's message.
// - current() returns nullptr once the snapshot has expired (by `clock`), or when there never
//   was one. Credentials without an expiration are never refreshed (the thread ends).
// - Once `cancel` (shutdown; may be null) has fired, a failed fetch is logged at Debug only and
//   the thread ends: the source's fetches watch the same cancellation, so none outlasts it.
// Thread-safety: current() from any thread. Lifetime: clock and logger outlive it.
class RefreshingCredentialsProvider final : public CredentialsProvider {
public:
    RefreshingCredentialsProvider(std::unique_ptr<CredentialsSource> source,
                                  CredentialsClock& clock, Logger& logger,
                                  RefreshPolicy policy = {},
                                  std::shared_ptr<const Cancellation> cancel = nullptr);
    ~RefreshingCredentialsProvider() override;
    RefreshingCredentialsProvider(const RefreshingCredentialsProvider&) = delete;
    RefreshingCredentialsProvider& operator=(const RefreshingCredentialsProvider&) = delete;

    [[nodiscard]] std::shared_ptr<const Credentials> current() noexcept override;
    [[nodiscard]] std::string_view source() const noexcept override { return source_->name(); }

    // Number of fetch attempts so far (tests).
    [[nodiscard]] std::size_t fetch_count() const noexcept;

private:
    // One fetch; returns when to try next (time_point::max(): never).
    WallClock::time_point attempt(WallClock::time_point now) noexcept;
    void run(std::stop_token stop) noexcept;

    std::unique_ptr<CredentialsSource> source_;
    CredentialsClock& clock_;
    Logger& logger_;
    RefreshPolicy policy_;
    std::shared_ptr<const Cancellation> cancel_;
    RateLimiter error_limiter_;

    mutable std::mutex mutex_;
    std::shared_ptr<const Credentials> snapshot_;
    std::size_t fetches_ = 0;
    Duration backoff_{};
    bool failing_ = false;
    std::jthread thread_;  // last: stopped and joined before the members above go
};

}  // namespace xrayd
