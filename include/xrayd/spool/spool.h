// Spool: the spool's files — segments appended to disk, read back oldest first, files deleted
// once everything read from them is settled, within a disk quota (issue #15).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <xrayd/common/time.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/log/logger.h>
#include <xrayd/queue/backpressure.h>
#include <xrayd/spool/spool_directory.h>
#include <xrayd/spool/spool_options.h>
#include <xrayd/stats/counters.h>

namespace xrayd::spool {

// X-Ray refuses trace ids whose time is more than 30 days old and keeps traces no longer, so a
// segment spooled longer than that cannot be delivered: it is dropped as expired.
inline constexpr std::chrono::hours default_max_age{24 * 30};

// Spool files are named by their number, 8 hex digits, and this suffix: "0000002a.xrs".
inline constexpr std::string_view file_suffix = ".xrs";

struct SpoolOptions {
    std::string dir;  // must exist (SpoolDirectory::open checks and locks it)
    std::uint64_t max_bytes = std::uint64_t{1} << 30;  // quota of every spool file together
    SpoolSync sync = SpoolSync::interval;
    // At the quota (or on ENOSPC): drop-newest refuses the new records, drop-oldest deletes the
    // oldest files (their records not yet read back are dropped) to make room.
    Backpressure at_quota = Backpressure::drop_newest;
    // A file is closed and a new one started past this size. 0: max_bytes / 8, between 64 KiB
    // and 8 MiB, so that deleting delivered files frees the quota in small steps.
    std::uint64_t file_bytes = 0;
    std::chrono::nanoseconds max_age = default_max_age;
    Duration sync_interval = std::chrono::seconds(1);
};

// One segment read back: views into the spool's read buffer, valid until the next read().
struct SpooledSegment {
    std::string_view document;
    std::string_view id;
    std::string_view trace_id;
    std::uint64_t arrival_unix_ns = 0;
};

// What a read() consumer says about each segment it is offered.
enum class Take : std::uint8_t {
    taken,  // the segment is the consumer's now; offer the next one
    stop,   // no room for it (memory, batch size): it stays unread, ask again later
};

// The figures /metrics and the summaries show. Any thread may read them.
struct SpoolGauges {
    std::atomic<std::uint64_t> segments{0};  // on disk and not held in memory: "spooled"
    std::atomic<std::uint64_t> bytes{0};     // every spool file's size, the quota's measure
    std::atomic<std::uint64_t> files{0};
};

// Counters it keeps: spool_recovered (found at start), spool_written, spool_replayed,
// dropped_spool_full, dropped_spool_error, dropped_spool_expired, dropped_spool_corrupt and
// spool_corrupt_regions. At every moment between calls, the segments it was given (appended or
// recovered) = replayed + dropped by it + gauges().segments.
//
// Threads: the pipeline thread calls everything except gauges(). Never throws after open().
class Spool {
public:
    // Opens and locks the directory, then scans its spool files oldest first: cuts a torn tail,
    // counts damaged stretches, skips (and leaves in place) a file of another format version
    // with a warning, deletes files with no record left. Logs what it found. Throws
    // StartupError when the directory cannot be used (see SpoolDirectory::open) or a file
    // cannot be read.
    [[nodiscard]] static std::unique_ptr<Spool> open(SpoolOptions options, Counters& counters,
                                                     Logger& logger);
    ~Spool();
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    // Appends one segment. It reaches the file at the next flush() (or sooner, when a megabyte
    // is waiting); until then a kill loses it. False when it was refused: the quota is reached
    // under drop-newest, or an earlier write failed in this flush period (counted
    // dropped_spool_full / dropped_spool_error).
    [[nodiscard]] bool append(std::string_view document, std::string_view id,
                              std::string_view trace_id, std::uint64_t arrival_unix_ns) noexcept;

    // Writes what append() gathered to the file, and fsyncs as the sync policy says. Segments a
    // failed write loses are counted (dropped_spool_full on ENOSPC/EDQUOT, else
    // dropped_spool_error), the file cut back to its last whole record, and the failure logged
    // at most once per interval.
    void flush(TimePoint now) noexcept;

    // Offers the oldest unread segments, in order, from one file, to `take` until it says stop,
    // `max` were taken, or the file's readable part ends. Returns the file's number (the origin
    // of what was taken; 0 when nothing was offered). Expired segments are counted and skipped
    // without being offered. `take` is any callable Take(const SpooledSegment&).
    template <typename F>
    [[nodiscard]] std::uint32_t read(std::size_t max, F&& take) noexcept {
        return read_impl(max, &take,
                         [](void* f, const SpooledSegment& s) { return (*static_cast<F*>(f))(s); });
    }

    // Segments read from file `origin` reached an outcome; the file goes when it is fully read,
    // no longer written and nothing read from it is outstanding.
    void settle(std::uint32_t origin, std::size_t segments) noexcept;
    // Segments read from `origin` are let go unsettled (shutdown): they count as spooled again.
    void unread(std::uint32_t origin, std::size_t segments) noexcept;
    // Segments handed to the spool that could not even be appended (the caller ran out of
    // memory reading them out of a batch): counted as dropped_spool_error.
    void count_lost(std::size_t segments) noexcept {
        counters_.add(Counter::dropped_spool_error, segments);
    }

    // Segments on disk not yet read back in this run.
    [[nodiscard]] std::uint64_t unread_segments() const noexcept {
        return gauges_.segments.load(std::memory_order_relaxed);
    }
    // The next time flush() has work to do by the clock (the sync interval); nullopt when none.
    [[nodiscard]] std::optional<TimePoint> deadline() const noexcept;

    [[nodiscard]] const SpoolGauges& gauges() const noexcept { return gauges_; }
    [[nodiscard]] const std::string& path() const noexcept { return dir_.path(); }

private:
    struct File;
    using Offer = Take (*)(void*, const SpooledSegment&);

    Spool(SpoolOptions options, SpoolDirectory dir, Counters& counters, Logger& logger) noexcept;
    void scan();
    [[nodiscard]] std::uint32_t read_impl(std::size_t max, void* consumer, Offer offer) noexcept;
    [[nodiscard]] bool make_room(std::uint64_t bytes) noexcept;
    [[nodiscard]] bool start_file() noexcept;
    void finish_writing() noexcept;
    void delete_file(std::size_t index, bool count_unread_as_full) noexcept;
    void maybe_delete(std::size_t index) noexcept;
    [[nodiscard]] File* find(std::uint32_t number) noexcept;
    // Logs a failure of the files (write, read, sync, delete) at most once per interval: the
    // text `what` formats, then errno `err`'s. Never throws (out of memory, nothing is logged).
    template <typename... Args>
    void log_write_failure(int err, fmt::format_string<Args...> what, Args&&... args) noexcept;
    void publish() noexcept;

    SpoolOptions options_;
    SpoolDirectory dir_;
    Counters& counters_;
    Logger& logger_;
    SpoolGauges gauges_;
    std::deque<File> files_;  // oldest first; the last one may be the file being written
    std::uint32_t next_number_ = 1;
    std::string pending_;  // records append() gathered for the write file
    std::uint64_t pending_records_ = 0;
    std::uint64_t unread_ = 0;    // records on disk (or pending) not read back
    std::uint64_t returned_ = 0;  // records read back, then let go unsettled (unread())
    std::uint64_t bytes_ = 0;     // every file's size plus pending_
    // After a failed write, appends are refused (and counted under this) until the next
    // flush() tries again.
    std::optional<Counter> write_failed_;
    bool needs_sync_ = false;  // bytes written since the last fsync
    TimePoint next_sync_{};
    RateLimiter failure_log_{std::chrono::seconds(10)};
    RateLimiter full_log_{std::chrono::seconds(10)};
    std::uint64_t full_since_log_ = 0;
    std::string read_buffer_;
};

}  // namespace xrayd::spool
