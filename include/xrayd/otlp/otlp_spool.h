// OtlpSpool: the disk spool of the OTLP exporter (issues #15 and #16): client requests that
// memory cannot keep — held past the retry budget, pushed out when memory runs short, held at
// the shutdown deadline — kept one file each and sent again, oldest first, once X-Ray answers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <xrayd/common/time.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/log/logger.h>
#include <xrayd/otlp/otlp_request.h>
#include <xrayd/queue/backpressure.h>
#include <xrayd/spool/spool_options.h>
#include <xrayd/stats/counters.h>

namespace xrayd::otlp {

// X-Ray's OTLP endpoint takes spans up to 14 days old (otlp-and-adot.md): older ones cannot be
// delivered and are dropped as expired.
inline constexpr std::chrono::hours otlp_max_age{24 * 14};

// A spool file is one request: "<16 hex digits>.otlp", the digits its number (oldest first).
inline constexpr std::string_view otlp_file_suffix = ".otlp";

struct OtlpSpoolOptions {
    std::string dir;  // created (0700) if missing; its parent must exist
    std::uint64_t max_bytes = std::uint64_t{256} << 20;  // quota of every file together
    spool::SpoolSync sync = spool::SpoolSync::interval;  // none: never fsync; else after each
    // At the quota (or on ENOSPC): drop-newest refuses the new request, drop-oldest deletes the
    // oldest files not being sent to make room. Both count otlp_spans_dropped_spool_full.
    Backpressure at_quota = Backpressure::drop_newest;
    std::chrono::nanoseconds max_age = otlp_max_age;
};

// One request read back, the caller's until settle() or unread() of its number.
struct SpooledRequest {
    std::uint64_t number = 0;
    OtlpEncoding encoding = OtlpEncoding::protobuf;
    std::size_t spans = 0;
    std::uint64_t arrival_unix_ns = 0;
    std::string body;  // an ExportTraceServiceRequest holding only accepted spans
};

// The figures /metrics and the summaries show. Any thread may read them.
struct OtlpSpoolGauges {
    std::atomic<std::uint64_t> spans{0};  // on disk and not read back: OTLP "spooled"
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<std::uint64_t> files{0};
};

// File layout (little-endian): "xrotlp1\n", encoding u8 (0 protobuf, 1 JSON), 3 zero bytes,
// spans u32, arrival u64 (Unix ns), body length u32, CRC-32 (zlib) of the body u32, the body. A
// file is written under a temporary name and renamed, so a crash leaves whole files only; a
// file that does not check out (damaged, cut short, another format) is counted
// (otlp_spool_corrupt_files) and moved aside to "<name>.bad", never fatal.
//
// Counters: otlp_spans_spool_recovered (found at open: OTLP received), otlp_spans_spooled,
// otlp_spans_replayed (read back and settled), otlp_spans_dropped_spool_full (refused or
// deleted for room), otlp_spans_dropped_spool_error, otlp_spans_dropped_spool_expired. With
// nothing read back and unsettled, the spans handed to write() and recovered = replayed +
// dropped by it + gauges().spans.
//
// Threads: one thread (the exporter's) calls everything except gauges(). Never throws after
// open().
class OtlpSpool {
public:
    // Creates the directory if needed and scans it: counts what earlier runs left, deletes
    // expired files, sets damaged ones aside, removes temporary files of an interrupted write.
    // Throws StartupError when the directory cannot be created or read.
    [[nodiscard]] static std::unique_ptr<OtlpSpool> open(OtlpSpoolOptions options,
                                                         Counters& counters, Logger& logger);
    ~OtlpSpool();
    OtlpSpool(const OtlpSpool&) = delete;
    OtlpSpool& operator=(const OtlpSpool&) = delete;

    // Writes one request (its accepted spans, `body` as OtlpBatch builds it) to a file of its
    // own. True when written (otlp_spans_spooled); false when refused or failed, its spans then
    // counted as dropped_spool_full or dropped_spool_error.
    [[nodiscard]] bool write(OtlpEncoding encoding, std::string_view body, std::size_t spans,
                             std::uint64_t arrival_unix_ns) noexcept;

    // The oldest request not read back yet (otlp_spans_replayed); nullopt when none. Expired
    // and damaged files met on the way are counted and removed.
    [[nodiscard]] std::optional<SpooledRequest> read_oldest() noexcept;
    // Request `number` reached an outcome: its file is deleted.
    void settle(std::uint64_t number) noexcept;
    // Request `number` is let go unsent (shutdown): its file stays, counted as spooled again.
    void unread(std::uint64_t number) noexcept;

    [[nodiscard]] bool has_unread() const noexcept;
    [[nodiscard]] const OtlpSpoolGauges& gauges() const noexcept;
    [[nodiscard]] const std::string& path() const noexcept;

private:
    struct State;  // src/otlp/otlp_spool.cpp
    explicit OtlpSpool(std::unique_ptr<State> state) noexcept;
    std::unique_ptr<State> state_;
};

}  // namespace xrayd::otlp
