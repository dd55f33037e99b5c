// Logger: the Go daemon's line format (`2026-11-22T10:00:00Z [Info] msg`), level-checked before
// formatting, safe to call from any thread and from noexcept code.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

#include <xrayd/common/time.h>

namespace xrayd {

// Ordered from most to least verbose, as seelog's levels.
enum class LogLevel { trace, debug, info, warn, error, critical };

// The level's name as it appears in a log line: "Trace", "Debug", "Info", ...
[[nodiscard]] std::string_view level_label(LogLevel level) noexcept;

// Parses the Go daemon's level names (`dev`, `debug`, `info`, `warn`, `error`, `prod`),
// case-sensitively as Go does. nullopt for anything else.
[[nodiscard]] std::optional<LogLevel> parse_log_level(std::string_view name) noexcept;

// Where finished lines go. write() receives one whole line including its trailing '\n' and is
// called with the logger's mutex held, so a sink needs no locking of its own.
class LogSink {
public:
    virtual ~LogSink() = default;
    virtual void write(std::string_view line) noexcept = 0;
    // Reopens the destination (SIGHUP after an external rotation). Default: nothing to reopen.
    virtual void reopen() noexcept {}
};

// Writes to a file descriptor it does not own (stdout, stderr).
class FdSink final : public LogSink {
public:
    explicit FdSink(int fd) noexcept : fd_(fd) {}
    void write(std::string_view line) noexcept override;

private:
    int fd_;
};

// Formats `<local time, second precision, Go's 2006-01-02T15:04:05Z07:00> [<Level>] <message>`.
[[nodiscard]] std::string format_log_prefix(WallClock::time_point when, LogLevel level);

// Thread-safe. The level can change at run time (SIGHUP reload). Lifetime: outlives every
// module that holds a reference to it (the daemon owns it).
class Logger {
public:
    explicit Logger(LogLevel level = LogLevel::info,
                    std::unique_ptr<LogSink> sink = std::make_unique<FdSink>(1));

    [[nodiscard]] bool enabled(LogLevel level) const noexcept {
        return level >= level_.load(std::memory_order_relaxed);
    }
    void set_level(LogLevel level) noexcept { level_.store(level, std::memory_order_relaxed); }
    [[nodiscard]] LogLevel level() const noexcept { return level_.load(std::memory_order_relaxed); }

    // Replaces the sink (start-up, once the configuration names a file).
    void set_sink(std::unique_ptr<LogSink> sink);
    void reopen() noexcept;

    template <typename... Args>
    void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) noexcept {
        if (!enabled(level)) {
            return;
        }
        try {
            write_line(level, fmt::vformat(format, fmt::make_format_args(args...)));
        } catch (...) {
            // Formatting can only fail on allocation; a lost log line must not take the
            // data plane down.
        }
    }

    template <typename... Args>
    void trace(fmt::format_string<Args...> f, Args&&... a) noexcept {
        log(LogLevel::trace, f, std::forward<Args>(a)...);
    }
    template <typename... Args>
    void debug(fmt::format_string<Args...> f, Args&&... a) noexcept {
        log(LogLevel::debug, f, std::forward<Args>(a)...);
    }
    template <typename... Args>
    void info(fmt::format_string<Args...> f, Args&&... a) noexcept {
        log(LogLevel::info, f, std::forward<Args>(a)...);
    }
    template <typename... Args>
    void warn(fmt::format_string<Args...> f, Args&&... a) noexcept {
        log(LogLevel::warn, f, std::forward<Args>(a)...);
    }
    template <typename... Args>
    void error(fmt::format_string<Args...> f, Args&&... a) noexcept {
        log(LogLevel::error, f, std::forward<Args>(a)...);
    }

private:
    void write_line(LogLevel level, std::string_view message) noexcept;

    std::atomic<LogLevel> level_;
    std::mutex mutex_;
    std::unique_ptr<LogSink> sink_;
};

// Lets one event through per interval; the rest are counted so the next line can say how many
// were suppressed. Thread-safe and lock-free: receiver threads share one per reason.
class RateLimiter {
public:
    explicit RateLimiter(Duration interval) noexcept : interval_(interval) {}

    // True when the caller may log now. On true, *suppressed (if given) receives the number of
    // events refused since the last allowed one.
    [[nodiscard]] bool allow(TimePoint now, std::uint64_t* suppressed = nullptr) noexcept;

private:
    Duration interval_;
    std::atomic<Clock::rep> next_allowed_{0};
    std::atomic<std::uint64_t> suppressed_{0};
};

}  // namespace xrayd
