// FileSink: the log file of -f / Logging.LogPath, with the Go daemon's size rotation (spec §9.3).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

#include <xrayd/common/unique_fd.h>
#include <xrayd/log/logger.h>

namespace xrayd {

struct LogFileOptions {
    // Logging.LogRotation. Off: plain append, never rotated (external logrotate + SIGHUP).
    bool rotation = true;
    // Rotate before a write once the file holds at least this many bytes (Go: 50 MiB).
    std::uint64_t rotation_bytes = 50ull << 20;
};

// Appends lines to one file. Rotation, as seelog's rolling writer in the Go daemon: before a
// write, when the file has reached `rotation_bytes`, it is renamed to `<name>.<k>` with k = the
// largest numeric suffix present + 1 (so `xray.log.7` follows `xray.log.6`), every other
// `<name>.<digits>` is deleted (one old file kept) and a new `<name>` is started. A line is never
// split between files, so a file can exceed the size by one line.
//
// Threads: write() and reopen() must not run concurrently; the Logger calls both with its mutex
// held (LogSink contract). Ownership: owns its descriptor; the Logger owns the sink.
// Errors after start-up are not fatal: a failed write loses the line and reports the failure on
// stderr once per run of failures; a failed rotation keeps appending to the current file and
// retries after another `rotation_bytes`.
class FileSink final : public LogSink {
public:
    // Opens `path` for appending, creating missing parent directories and the file (mode
    // 0640 & ~umask; a symbolic link is refused, also at reopen and rotation). Throws
    // StartupError naming the path and the reason. Start-up only.
    [[nodiscard]] static std::unique_ptr<FileSink> open(std::filesystem::path path,
                                                        LogFileOptions options = {});

    void write(std::string_view line) noexcept override;

    // Closes and reopens `path` (SIGHUP after logrotate moved the file away): later lines go to
    // a new file at `path`. When reopening fails the old descriptor is kept, so lines still land
    // in the moved file rather than nowhere.
    void reopen() noexcept override;

    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
    // Bytes in the current file as far as this sink knows (its size at open + bytes written).
    [[nodiscard]] std::uint64_t size() const noexcept { return size_; }

private:
    FileSink(std::filesystem::path path, LogFileOptions options, UniqueFd fd,
             std::uint64_t size) noexcept;
    void rotate() noexcept;
    void report_failure(std::string_view what, int err) noexcept;

    std::filesystem::path path_;
    LogFileOptions options_;
    UniqueFd fd_;
    std::uint64_t size_;
    std::uint64_t rotate_at_;
    bool failing_ = false;
};

// Appends `line` to `path` (parent directories and file created as by FileSink::open), for
// reporting a configuration error before any logger exists (spec §2.5). False on failure.
[[nodiscard]] bool append_line_to_file(const std::filesystem::path& path,
                                       std::string_view line) noexcept;

}  // namespace xrayd
