// Tests of the Logger (Go daemon's line format, levels), RateLimiter and the rotating FileSink.
#include <xrayd/log/logger.h>

#include <doctest/doctest.h>

#include "go_time.h"
#include "scoped_environment.h"
#include "temp_dir.h"

using xrayd::test::go_time_length;
using xrayd::test::read_file;
using xrayd::test::TempDir;

#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <xrayd/common/startup_error.h>
#include <xrayd/log/log_file.h>
#include <xrayd/log/remote_text.h>

namespace xrayd {
namespace {
// An argument that counts how often it is formatted.
struct CountedArg {
    int* count;
};
}  // namespace
}  // namespace xrayd

template <>
struct fmt::formatter<xrayd::CountedArg> : fmt::formatter<int> {
    template <typename Context>
    auto format(const xrayd::CountedArg& arg, Context& ctx) const {
        ++*arg.count;
        return fmt::formatter<int>::format(*arg.count, ctx);
    }
};

namespace xrayd {
namespace {

namespace fs = std::filesystem;

// Collects lines; the Logger holds its mutex around write(), so no locking here.
class CaptureSink final : public LogSink {
public:
    explicit CaptureSink(std::vector<std::string>& lines) : lines_(lines) {}
    void write(std::string_view line) noexcept override { lines_.emplace_back(line); }
    void reopen() noexcept override { ++reopens; }
    int reopens = 0;

private:
    std::vector<std::string>& lines_;
};

// Sets TZ for one test and restores it afterwards, telling libc both times.
class ScopedTz {
public:
    explicit ScopedTz(const char* tz)
        : env_(std::in_place, {std::pair<const char*, const char*>("TZ", tz)}) {
        ::tzset();
    }
    ~ScopedTz() {
        env_.reset();
        ::tzset();
    }
    ScopedTz(const ScopedTz&) = delete;
    ScopedTz& operator=(const ScopedTz&) = delete;

private:
    std::optional<test::ScopedEnvironment> env_;
};

std::vector<std::string> dir_names(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) {
        names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

// 2026-01-01T10:00:00Z
const WallClock::time_point fixed_time = WallClock::from_time_t(1767261600);

}  // namespace

TEST_CASE("every level's line is '<time> [<Level>] <message>' with Go's time layout") {
    std::vector<std::string> lines;
    Logger logger(LogLevel::trace, std::make_unique<CaptureSink>(lines));
    logger.trace("t {}", 1);
    logger.debug("d {}", "x");
    logger.info("i");
    logger.warn("w {} {}", 2, 3.5);
    logger.error("e");
    logger.log(LogLevel::critical, "c");
    REQUIRE(lines.size() == 6);
    const std::vector<std::string> expected{"[Trace] t 1",    "[Debug] d x", "[Info] i",
                                            "[Warn] w 2 3.5", "[Error] e",   "[Critical] c"};
    for (std::size_t i = 0; i < lines.size(); ++i) {
        CAPTURE(lines[i]);
        const std::size_t time = go_time_length(lines[i]);
        REQUIRE(time > 0);
        CHECK(lines[i].substr(time) == " " + expected[i] + "\n");
    }
}

TEST_CASE("the time is local: 'Z' in UTC, the signed offset elsewhere") {
    {
        ScopedTz tz("UTC0");
        CHECK(format_log_prefix(fixed_time, LogLevel::info) == "2026-01-01T10:00:00Z [Info] ");
    }
    {
        ScopedTz tz("XYZ-3");  // POSIX: three hours east of UTC
        CHECK(format_log_prefix(fixed_time, LogLevel::warn) == "2026-01-01T13:00:00+03:00 [Warn] ");
    }
    {
        ScopedTz tz("ABC+5:30");  // five and a half hours west
        CHECK(format_log_prefix(fixed_time, LogLevel::error) ==
              "2026-01-01T04:30:00-05:30 [Error] ");
    }
    {
        ScopedTz tz("GMT0");  // a zero offset that is not called UTC still prints Z, as Go does
        CHECK(format_log_prefix(fixed_time + std::chrono::milliseconds{999}, LogLevel::debug) ==
              "2026-01-01T10:00:00Z [Debug] ");
    }
}

TEST_CASE("level names parse as the Go daemon's, case-sensitively") {
    CHECK(parse_log_level("dev") == LogLevel::trace);
    CHECK(parse_log_level("debug") == LogLevel::debug);
    CHECK(parse_log_level("info") == LogLevel::info);
    CHECK(parse_log_level("prod") == LogLevel::info);
    CHECK(parse_log_level("warn") == LogLevel::warn);
    CHECK(parse_log_level("error") == LogLevel::error);
    CHECK_FALSE(parse_log_level("Debug").has_value());
    CHECK_FALSE(parse_log_level("trace").has_value());
    CHECK_FALSE(parse_log_level("").has_value());
    CHECK(level_label(LogLevel::critical) == "Critical");
}

TEST_CASE("lines below the level are dropped and the level can change at run time") {
    std::vector<std::string> lines;
    Logger logger(LogLevel::warn, std::make_unique<CaptureSink>(lines));
    logger.debug("no");
    logger.info("no");
    logger.warn("yes");
    logger.error("yes");
    CHECK(lines.size() == 2);
    CHECK_FALSE(logger.enabled(LogLevel::info));
    logger.set_level(LogLevel::debug);
    CHECK(logger.level() == LogLevel::debug);
    logger.debug("now yes");
    logger.trace("still no");
    CHECK(lines.size() == 3);
}

TEST_CASE("arguments are not formatted when the level is disabled") {
    int formatted = 0;
    std::vector<std::string> lines;
    Logger logger(LogLevel::info, std::make_unique<CaptureSink>(lines));
    logger.debug("{}", CountedArg{&formatted});
    CHECK(formatted == 0);
    CHECK(lines.empty());
    logger.info("{}", CountedArg{&formatted});
    CHECK(formatted == 1);
    CHECK(lines.size() == 1);
}

TEST_CASE("set_sink redirects lines and reopen reaches the sink") {
    std::vector<std::string> first;
    std::vector<std::string> second;
    Logger logger(LogLevel::info, std::make_unique<CaptureSink>(first));
    logger.info("a");
    auto sink = std::make_unique<CaptureSink>(second);
    CaptureSink* raw = sink.get();
    logger.set_sink(std::move(sink));
    logger.info("b");
    logger.reopen();
    CHECK(first.size() == 1);
    CHECK(second.size() == 1);
    CHECK(raw->reopens == 1);
}

TEST_CASE("lines from several threads are never interleaved") {
    std::vector<std::string> lines;
    Logger logger(LogLevel::info, std::make_unique<CaptureSink>(lines));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&logger, t] {
            for (int i = 0; i < 500; ++i) {
                logger.info("thread {} line {} {}", t, i, std::string(100, 'x'));
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    REQUIRE(lines.size() == 2000);
    for (const std::string& line : lines) {
        CHECK(line.back() == '\n');
        CHECK(std::count(line.begin(), line.end(), '\n') == 1);
    }
}

TEST_CASE("RateLimiter lets one event through per interval and counts the rest") {
    RateLimiter limiter(std::chrono::seconds{10});
    const TimePoint t0 = TimePoint{} + std::chrono::hours{1};
    std::uint64_t suppressed = 99;
    CHECK(limiter.allow(t0, &suppressed));
    CHECK(suppressed == 0);
    CHECK_FALSE(limiter.allow(t0));
    CHECK_FALSE(limiter.allow(t0 + std::chrono::seconds{5}));
    CHECK_FALSE(limiter.allow(t0 + std::chrono::milliseconds{9999}));
    CHECK(limiter.allow(t0 + std::chrono::seconds{10}, &suppressed));
    CHECK(suppressed == 3);
    CHECK(limiter.allow(t0 + std::chrono::seconds{60}, &suppressed));
    CHECK(suppressed == 0);
    CHECK(limiter.allow(t0 + std::chrono::seconds{70}));  // no out-pointer needed
}

TEST_CASE("RateLimiter admits exactly one of many concurrent callers at the same instant") {
    RateLimiter limiter(std::chrono::seconds{1});
    const TimePoint now = TimePoint{} + std::chrono::hours{2};
    std::atomic<int> allowed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) {
                if (limiter.allow(now)) {
                    allowed.fetch_add(1);
                }
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    CHECK(allowed.load() == 1);
    std::uint64_t suppressed = 0;
    CHECK(limiter.allow(now + std::chrono::seconds{1}, &suppressed));
    CHECK(suppressed == 3999);
}

TEST_CASE("FileSink creates parent directories and appends to an existing file") {
    TempDir dir;
    const fs::path path = dir.path() / "a/b/xray.log";
    {
        auto sink = FileSink::open(path);
        sink->write("one\n");
    }
    {
        auto sink = FileSink::open(path);
        CHECK(sink->size() == 4);
        sink->write("two\n");
    }
    CHECK(read_file(path) == "one\ntwo\n");
}

TEST_CASE("FileSink creates the log file 0640, not 0644, whatever a permissive umask allows") {
    TempDir dir;
    const mode_t old = ::umask(0);
    auto sink = FileSink::open(dir.path() / "m.log");
    ::umask(old);
    struct stat st {};
    REQUIRE(::stat((dir.path() / "m.log").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0640);
}

TEST_CASE("FileSink refuses a symbolic link as the log file, at open and at reopen") {
    TempDir dir;
    const fs::path target = dir.path() / "elsewhere";
    std::ofstream(target) << "precious\n";
    const fs::path link = dir.path() / "xray.log";
    fs::create_symlink(target, link);
    std::string message;
    try {
        (void)FileSink::open(link);
    } catch (const StartupError& e) {
        message = e.what();
    }
    CHECK(message.find("cannot open log file " + link.string() + ": it is a symbolic link") == 0);
    CHECK(read_file(target) == "precious\n");

    // A link planted after start-up (then SIGHUP): the old file keeps the lines.
    const fs::path real = dir.path() / "real.log";
    auto sink = FileSink::open(real);
    fs::rename(real, dir.path() / "moved.log");
    fs::create_symlink(target, real);
    sink->reopen();
    sink->write("line\n");
    CHECK(read_file(target) == "precious\n");
    CHECK(read_file(dir.path() / "moved.log") == "line\n");
}

TEST_CASE("FileSink::open failure is a StartupError naming the path") {
    TempDir dir;
    const fs::path blocker = dir.path() / "file";
    std::ofstream(blocker) << "x";
    const fs::path bad = blocker / "sub/xray.log";  // a parent that is a regular file
    try {
        (void)FileSink::open(bad);
        FAIL("expected StartupError");
    } catch (const StartupError& e) {
        CHECK(std::string(e.what()).find(bad.string()) != std::string::npos);
        CHECK(e.exit_code() == 1);
    }
}

TEST_CASE("rotation at the size keeps exactly one old file with the next numeric suffix") {
    TempDir dir;
    const fs::path path = dir.path() / "xray.log";
    // Leftovers from earlier runs: the next roll must be .8, and .3 and .7 must go.
    std::ofstream(dir.path() / "xray.log.3") << "old";
    std::ofstream(dir.path() / "xray.log.7") << "old";
    std::ofstream(dir.path() / "xray.log.x") << "not a roll";
    std::ofstream(dir.path() / "other.log.9") << "not ours";

    auto sink = FileSink::open(path, LogFileOptions{true, 1024});
    const std::string line(100, 'a');
    for (int i = 0; i < 11; ++i) {  // 1100 bytes: crosses 1 KiB on the 11th line
        sink->write(line + "\n");
    }
    CHECK(fs::file_size(path) == 11 * 101);  // the check is before a write: no split line
    sink->write("next\n");
    CHECK(dir_names(dir.path()) ==
          std::vector<std::string>{"other.log.9", "xray.log", "xray.log.8", "xray.log.x"});
    CHECK(fs::file_size(dir.path() / "xray.log.8") == 11 * 101);
    CHECK(read_file(path) == "next\n");

    for (int i = 0; i < 11; ++i) {
        sink->write(line + "\n");
    }
    sink->write("after second\n");
    CHECK(dir_names(dir.path()) ==
          std::vector<std::string>{"other.log.9", "xray.log", "xray.log.9", "xray.log.x"});
    CHECK(read_file(dir.path() / "xray.log.9").rfind("next\n", 0) == 0);
    CHECK(read_file(path) == "after second\n");
}

TEST_CASE("a file already over the size at start-up rolls before the first write") {
    TempDir dir;
    const fs::path path = dir.path() / "x.log";
    std::ofstream(path) << std::string(2000, 'z');
    auto sink = FileSink::open(path, LogFileOptions{true, 1024});
    sink->write("fresh\n");
    CHECK(dir_names(dir.path()) == std::vector<std::string>{"x.log", "x.log.1"});
    CHECK(read_file(path) == "fresh\n");
}

TEST_CASE("with rotation off the file only grows") {
    TempDir dir;
    const fs::path path = dir.path() / "x.log";
    auto sink = FileSink::open(path, LogFileOptions{false, 16});
    for (int i = 0; i < 10; ++i) {
        sink->write("0123456789\n");
    }
    CHECK(dir_names(dir.path()) == std::vector<std::string>{"x.log"});
    CHECK(fs::file_size(path) == 110);
}

TEST_CASE("reopen after an external rename writes to a new file at the path") {
    TempDir dir;
    const fs::path path = dir.path() / "x.log";
    auto sink = FileSink::open(path);
    sink->write("before\n");
    fs::rename(path, dir.path() / "x.log.moved");
    sink->write("still old fd\n");  // without reopen the line follows the moved file
    sink->reopen();
    sink->write("after\n");
    CHECK(read_file(dir.path() / "x.log.moved") == "before\nstill old fd\n");
    CHECK(read_file(path) == "after\n");
    CHECK(sink->size() == 6);
}

TEST_CASE("a Logger with a FileSink writes complete lines to the file") {
    TempDir dir;
    const fs::path path = dir.path() / "x.log";
    Logger logger(LogLevel::info, FileSink::open(path));
    logger.info("hello {}", "file");
    logger.reopen();
    logger.warn("second");
    const std::string text = read_file(path);
    const std::size_t first = go_time_length(text);
    REQUIRE(first > 0);
    CHECK(text.substr(first, 19) == " [Info] hello file\n");
    const std::string_view rest = std::string_view(text).substr(first + 19);
    const std::size_t second = go_time_length(rest);
    REQUIRE(second > 0);
    CHECK(rest.substr(second) == " [Warn] second\n");
}

TEST_CASE("append_line_to_file creates directories and appends") {
    TempDir dir;
    const fs::path path = dir.path() / "n/e/w.log";
    CHECK(append_line_to_file(path, "a\n"));
    CHECK(append_line_to_file(path, "b\n"));
    CHECK(read_file(path) == "a\nb\n");
    CHECK_FALSE(append_line_to_file(dir.path(), "x\n"));  // a directory cannot be appended to
}

TEST_CASE("rotation at the real 50 MiB size keeps one old file") {
    TempDir dir;
    const fs::path path = dir.path() / "xray.log";
    auto sink = FileSink::open(path);  // default options: rotation at 50 MiB
    const std::string chunk = std::string(64 * 1024 - 1, 'q') + "\n";
    for (int i = 0; i < 800; ++i) {  // exactly 50 MiB
        sink->write(chunk);
    }
    CHECK(fs::file_size(path) == 50ull << 20);
    CHECK(dir_names(dir.path()) == std::vector<std::string>{"xray.log"});
    sink->write("over\n");
    CHECK(dir_names(dir.path()) == std::vector<std::string>{"xray.log", "xray.log.1"});
    CHECK(fs::file_size(dir.path() / "xray.log.1") == 50ull << 20);
    CHECK(read_file(path) == "over\n");
}

TEST_CASE("RemoteText escapes CR, LF, ESC and backslashes so a peer cannot forge a log line") {
    const std::string forged =
        fmt::format("{}", RemoteText{"bad\r\n2026-01-01T00:00:00Z [Info] ok\x1b[2J\\"});
    CHECK(forged == "bad\\x0d\\x0a2026-01-01T00:00:00Z [Info] ok\\x1b[2J\\\\");
    CHECK(forged.find('\n') == std::string::npos);
    CHECK(forged.find('\r') == std::string::npos);
    CHECK(forged.find('\x1b') == std::string::npos);
    // UTF-8 and printable ASCII pass unchanged; DEL and NUL do not.
    CHECK(escape_remote_text("h\xc3\xa9 ok") == "h\xc3\xa9 ok");
    CHECK(escape_remote_text(std::string_view("a\x7f\0b", 4)) == "a\\x7f\\x00b");
}

TEST_CASE("RemoteText cuts long remote text and says how much was left out") {
    const std::string long_text(2000, 'x');
    const std::string shown = escape_remote_text(long_text, 100);
    CHECK(shown == std::string(100, 'x') + "...(1900 more bytes)");
    CHECK(fmt::format("{}", RemoteText{long_text, 10}) == "xxxxxxxxxx...(1990 more bytes)");
    CHECK(escape_remote_text("short", 100) == "short");
}

}  // namespace xrayd
