// RefreshingCredentialsProvider: an immutable snapshot replaced from a background thread.
#include <xrayd/aws/refreshing_provider.h>

#include <algorithm>
#include <exception>
#include <utility>

#include <fmt/format.h>

#include <xrayd/common/thread_name.h>

namespace xrayd {

RefreshingCredentialsProvider::RefreshingCredentialsProvider(
    std::unique_ptr<CredentialsSource> source, CredentialsClock& clock, Logger& logger,
    RefreshPolicy policy, std::shared_ptr<const Cancellation> cancel)
    : source_(std::move(source)),
      clock_(clock),
      logger_(logger),
      policy_(policy),
      cancel_(std::move(cancel)),
      error_limiter_(policy.error_log_interval),
      backoff_(policy.min_backoff) {
    const WallClock::time_point next = attempt(clock_.now());
    if (next != WallClock::time_point::max()) {
        thread_ = std::jthread([this, next](const std::stop_token& stop) {
            name_this_thread("xrayd-creds");
            WallClock::time_point when = next;
            while (clock_.sleep_until(when, stop)) {
                when = attempt(clock_.now());
                if (when == WallClock::time_point::max()) {
                    return;
                }
            }
        });
    }
}

RefreshingCredentialsProvider::~RefreshingCredentialsProvider() {
    if (thread_.joinable()) {
        thread_.request_stop();
        thread_.join();
    }
}

std::shared_ptr<const Credentials> RefreshingCredentialsProvider::current() noexcept {
    std::shared_ptr<const Credentials> snapshot;
    {
        std::lock_guard lock(mutex_);
        snapshot = snapshot_;
    }
    if (snapshot && snapshot->expiration && clock_.now() >= *snapshot->expiration) {
        return nullptr;
    }
    return snapshot;
}

std::size_t RefreshingCredentialsProvider::fetch_count() const noexcept {
    std::lock_guard lock(mutex_);
    return fetches_;
}

WallClock::time_point RefreshingCredentialsProvider::attempt(WallClock::time_point now) noexcept {
    Result<std::shared_ptr<const Credentials>, std::string> r = fail(std::string("not fetched"));
    try {
        r = source_->fetch();
    } catch (const std::exception& e) {
        r = fail(fmt::format("{}: {}", source_->name(), e.what()));
    } catch (...) {
        r = fail(fmt::format("{}: unknown error", source_->name()));
    }
    std::shared_ptr<const Credentials> old;
    std::lock_guard lock(mutex_);
    ++fetches_;
    if (r) {
        old = std::exchange(snapshot_, std::move(r).value());  // freed (wiped) after unlock
        if (failing_ || fetches_ == 1) {
            logger_.info("Using AWS credentials from {}", source_->name());
        }
        failing_ = false;
        backoff_ = policy_.min_backoff;
        if (!snapshot_->expiration) {
            return WallClock::time_point::max();
        }
        const WallClock::time_point expires = *snapshot_->expiration;
        const auto life = expires - now;
        WallClock::time_point at = expires - policy_.refresh_before;
        if (life < 2 * policy_.refresh_before) {
            at = now + life / 2;
        }
        return std::max(at,
                        now + std::chrono::duration_cast<WallClock::duration>(policy_.min_backoff));
    }
    if (is_cancelled(cancel_.get())) {
        logger_.debug("Credentials refresh from {} ended by shutdown: {}", source_->name(),
                      r.error());
        return WallClock::time_point::max();
    }
    failing_ = true;
    std::uint64_t suppressed = 0;
    if (error_limiter_.allow(Clock::now(), &suppressed)) {
        if (snapshot_ && snapshot_->expiration && now < *snapshot_->expiration) {
            logger_.error("Unable to refresh AWS credentials ({}); keeping the current ones "
                          "until they expire",
                          r.error());
        } else {
            logger_.error("Unable to retrieve AWS credentials: {}", r.error());
        }
    }
    WallClock::time_point at = now + std::chrono::duration_cast<WallClock::duration>(backoff_);
    backoff_ = std::min(backoff_ * 2, policy_.max_backoff);
    return at;
}

}  // namespace xrayd
