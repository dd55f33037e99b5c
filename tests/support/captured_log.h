// CapturedLog: a Logger sink that keeps the lines, for tests that check what was logged.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <xrayd/log/logger.h>

namespace xrayd::test {

// The lines written so far. Thread-safe.
struct CapturedLog {
    std::mutex mutex;
    std::vector<std::string> lines;

    bool contains(std::string_view text) { return count(text) > 0; }

    std::size_t count(std::string_view text) {
        std::lock_guard lock(mutex);
        std::size_t n = 0;
        for (const auto& line : lines) {
            n += line.find(text) != std::string::npos ? 1 : 0;
        }
        return n;
    }

    std::string all() {
        std::lock_guard lock(mutex);
        std::string out;
        for (const auto& line : lines) {
            out += line;
        }
        return out;
    }
};

// Appends every line to a CapturedLog, which must outlive the sink (and so its Logger).
class CaptureSink final : public LogSink {
public:
    explicit CaptureSink(CapturedLog& log) : log_(log) {}
    void write(std::string_view line) noexcept override {
        std::lock_guard lock(log_.mutex);
        log_.lines.emplace_back(line);
    }

private:
    CapturedLog& log_;
};

}  // namespace xrayd::test
