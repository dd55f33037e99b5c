// Logger, sinks and the rate limiter.
#include <xrayd/log/logger.h>

#include <unistd.h>
#include <cerrno>
#include <ctime>

#include <xrayd/common/fd_io.h>

namespace xrayd {

std::string_view level_label(LogLevel level) noexcept {
    switch (level) {
    case LogLevel::trace: return "Trace";
    case LogLevel::debug: return "Debug";
    case LogLevel::info: return "Info";
    case LogLevel::warn: return "Warn";
    case LogLevel::error: return "Error";
    case LogLevel::critical: return "Critical";
    }
    return "Unknown";
}

std::optional<LogLevel> parse_log_level(std::string_view name) noexcept {
    if (name == "dev") {
        return LogLevel::trace;
    }
    if (name == "debug") {
        return LogLevel::debug;
    }
    if (name == "info" || name == "prod") {  // Go: prod == Info
        return LogLevel::info;
    }
    if (name == "warn") {
        return LogLevel::warn;
    }
    if (name == "error") {
        return LogLevel::error;
    }
    return std::nullopt;
}

void FdSink::write(std::string_view line) noexcept {
    (void)write_all(fd_, line);  // nowhere left to report a failing log destination
}

std::string format_log_prefix(WallClock::time_point when, LogLevel level) {
    std::time_t t = WallClock::to_time_t(when);
    std::tm tm{};
    localtime_r(&t, &tm);
    // Go's "Z07:00": "Z" for UTC, else the signed offset.
    std::string zone = "Z";
    if (tm.tm_gmtoff != 0) {
        const long off = tm.tm_gmtoff < 0 ? -tm.tm_gmtoff : tm.tm_gmtoff;
        zone = fmt::format("{}{:02}:{:02}", tm.tm_gmtoff < 0 ? '-' : '+', off / 3600,
                           (off % 3600) / 60);
    }
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{} [{}] ", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, zone,
                       level_label(level));
}

Logger::Logger(LogLevel level, std::unique_ptr<LogSink> sink)
    : level_(level), sink_(std::move(sink)) {}

void Logger::set_sink(std::unique_ptr<LogSink> sink) {
    std::lock_guard lock(mutex_);
    sink_ = std::move(sink);
}

void Logger::reopen() noexcept {
    std::lock_guard lock(mutex_);
    if (sink_) {
        sink_->reopen();
    }
}

void Logger::write_line(LogLevel level, std::string_view message) noexcept {
    try {
        std::string line = format_log_prefix(WallClock::now(), level);
        line.append(message);
        line.push_back('\n');
        std::lock_guard lock(mutex_);
        if (sink_) {
            sink_->write(line);
        }
    } catch (...) {
        // Allocation failure: drop the line rather than the process.
    }
}

bool RateLimiter::allow(TimePoint now, std::uint64_t* suppressed) noexcept {
    const Clock::rep now_rep = now.time_since_epoch().count();
    Clock::rep next = next_allowed_.load(std::memory_order_relaxed);
    while (now_rep >= next) {
        if (next_allowed_.compare_exchange_weak(next, now_rep + interval_.count(),
                                                std::memory_order_relaxed)) {
            const std::uint64_t n = suppressed_.exchange(0, std::memory_order_relaxed);
            if (suppressed != nullptr) {
                *suppressed = n;
            }
            return true;
        }
    }
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return false;
}

}  // namespace xrayd
