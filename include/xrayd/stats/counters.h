// Counters: every counter of the daemon, declared once. Telemetry records, the exit summary,
// /metrics and the "every counter is exported" test all iterate this one list.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace xrayd {

// What a counter means for the accounting identity
//   received = sent + rejected + dropped + held + spooled
// (spooled: segments on disk in the spool and not in memory, a gauge of the spool).
enum class CounterKind {
    received,  // segments (datagrams) that entered the daemon
    sent,      // left the daemon successfully
    rejected,  // refused as invalid, by us or by X-Ray
    dropped,   // valid, but lost for lack of room or time
    info,      // outside the identity (requests, retries, kernel drops, backend errors)
    // The same four outcomes for OTLP spans (otlp module), which have an identity of their own:
    //   otlp_received = otlp_sent + otlp_rejected + otlp_dropped + otlp held.
    // Counters of the two rejected/dropped kinds are named otlp_spans_<outcome>_<reason>:
    // /metrics exports them as xrayd_otlp_spans_<outcome>_total{reason="<reason>"}.
    otlp_received,
    otlp_sent,
    otlp_rejected,
    otlp_dropped,
};

// X(name, kind, help). Names are snake_case and stable: they appear in logs and metrics.
#define XRAYD_COUNTERS(X)                                                                         \
    X(datagrams_received, received, "UDP datagrams read from the socket(s)")                      \
    X(rejected_missing_header, rejected, "datagram has no newline after the header")              \
    X(rejected_bad_header, rejected, "header is not {\"format\":\"json\",\"version\":1}")         \
    X(rejected_missing_body, rejected, "header without a segment document")                       \
    X(rejected_bad_json, rejected, "segment document is not one valid JSON object")               \
    X(rejected_invalid_segment, rejected,                                                         \
      "segment document lacks or has an invalid required field")                                  \
    X(rejected_too_large, rejected, "datagram larger than the receive slot")                      \
    X(rejected_bad_otlp_udp, rejected, "T1S/T1U document whose payload is not base64 OTLP")       \
    X(rejected_by_xray, rejected, "segments X-Ray returned in UnprocessedTraceSegments")          \
    X(rejected_request_invalid, rejected, "segments in requests X-Ray refused as invalid (400)")  \
    X(rejected_request_denied, rejected, "segments in requests X-Ray refused: auth (401/403)")    \
    X(rejected_request_too_large, rejected, "segments in requests X-Ray refused as too large")    \
    X(rejected_request_other, rejected, "segments in requests refused with another final 4xx")    \
    X(dropped_buffer_full, dropped, "segments dropped because the memory limit was reached")      \
    X(dropped_queue_full, dropped, "segments dropped because the hand-off queue was full")        \
    X(dropped_gave_up, dropped, "segments given up after retrying past the retry budget")         \
    X(segments_sent, sent, "segments accepted by X-Ray (or written to the local sink)")           \
    X(kernel_drops, info, "datagrams the kernel dropped before xrayd read them (SO_MEMINFO)")     \
    X(receivers_failed, info, "receiver threads stopped by a fatal epoll/io_uring error")         \
    X(ring_buffers_exhausted, info, "times the io_uring buffer ring ran empty (none lost)")       \
    X(batches_sent, info, "PutTraceSegments batches accepted")                                    \
    X(upload_requests, info, "PutTraceSegments requests made, retries included")                  \
    X(upload_retries, info, "PutTraceSegments requests scheduled again after a failure")          \
    X(backend_timeout, info, "X-Ray requests that timed out")                                     \
    X(backend_connection_refused, info, "X-Ray requests whose connection was refused")            \
    X(backend_http_4xx, info, "X-Ray responses with an HTTP 4xx status")                          \
    X(backend_http_5xx, info, "X-Ray responses with an HTTP 5xx status")                          \
    X(backend_unknown_host, info, "X-Ray requests whose host name did not resolve")               \
    X(backend_other, info, "X-Ray requests that failed for another reason")                       \
    X(proxy_forwarded, info, "sampling proxy requests relayed to X-Ray (any status)")             \
    X(proxy_upstream_error, info, "proxy requests X-Ray could not be reached for (502/504)")      \
    X(proxy_not_allowed, info, "sampling proxy requests refused: path or method not allowed")     \
    X(proxy_too_large, info, "sampling proxy requests refused: body over the limit (413)")        \
    X(proxy_no_credentials, info, "proxy requests refused: no credentials or signing failed")     \
    X(listener_bad_request_head, info, "proxy/admin request heads refused (400/431): malformed")  \
    X(listener_head_timeout, info, "proxy/admin connections cut: head not whole in time (408)")   \
    X(listener_connections_shed, info, "proxy/admin connections closed or refused at the limits") \
    X(telemetry_records_sent, info, "telemetry records accepted by PutTelemetryRecords")          \
    X(telemetry_records_dropped, info, "telemetry records dropped from the full queue of 30")     \
    X(telemetry_send_failures, info, "PutTelemetryRecords calls that failed (records re-queued)") \
    X(dropped_oldest, dropped, "segments of the oldest held batches given up (drop-oldest)")      \
    X(unprocessed_retried, info, "unprocessed segments with a transient error code sent again")   \
    X(upload_throttled, info, "PutTraceSegments answers that were throttled")                     \
    X(received_otlp_udp, info, "accepted OTLP-over-UDP (T1S/T1U) documents, forwarded verbatim")  \
    X(spool_recovered, received, "segments found in the disk spool at start (an earlier run's)")  \
    X(spool_written, info, "segments written to the disk spool")                                  \
    X(spool_replayed, info, "segments read back from the disk spool to be sent")                  \
    X(dropped_spool_full, dropped, "segments the disk spool had no room for (quota or ENOSPC)")   \
    X(dropped_spool_error, dropped, "segments lost to a disk spool write error (EIO, ...)")       \
    X(dropped_spool_expired, dropped, "spooled segments older than X-Ray accepts, dropped")       \
    X(dropped_spool_corrupt, dropped, "spooled segments that could not be read back (damaged)")   \
    X(spool_corrupt_regions, info, "damaged stretches of spool files skipped")                    \
    X(spool_maybe_duplicates, info,                                                               \
      "segments spooled at shutdown while in flight: may arrive twice")                           \
    X(otlp_requests, info, "OTLP/HTTP requests to /v1/traces (any answer)")                       \
    X(otlp_requests_invalid, info, "OTLP/HTTP requests refused as malformed (400)")               \
    X(otlp_requests_too_large, info, "OTLP/HTTP requests refused: body over the limit (413)")     \
    X(otlp_spans_received, otlp_received,                                                         \
      "spans in valid OTLP/HTTP requests (refused ones included)")                                \
    X(otlp_spans_sent, otlp_sent, "OTLP spans accepted by X-Ray")                                 \
    X(otlp_spans_rejected_too_large, otlp_rejected,                                               \
      "OTLP spans refused: over X-Ray's 200 KB per span")                                         \
    X(otlp_spans_rejected_by_xray, otlp_rejected,                                                 \
      "OTLP spans X-Ray refused in a partial success (rejected_spans)")                           \
    X(otlp_spans_rejected_request_invalid, otlp_rejected,                                         \
      "OTLP spans in requests X-Ray refused as invalid (400)")                                    \
    X(otlp_spans_rejected_request_denied, otlp_rejected,                                          \
      "OTLP spans in requests X-Ray refused: auth (401/403)")                                     \
    X(otlp_spans_rejected_request_too_large, otlp_rejected,                                       \
      "OTLP spans in requests X-Ray refused as too large (413)")                                  \
    X(otlp_spans_rejected_request_other, otlp_rejected,                                           \
      "OTLP spans in requests X-Ray refused with another final 4xx")                              \
    X(otlp_spans_dropped_buffer_full, otlp_dropped,                                               \
      "OTLP spans answered 503: memory full (the SDKs retry them)")                               \
    X(otlp_spans_dropped_oldest, otlp_dropped,                                                    \
      "OTLP spans of the oldest queued requests given up (drop-oldest)")                          \
    X(otlp_spans_dropped_gave_up, otlp_dropped,                                                   \
      "OTLP spans given up after retrying past the retry budget")                                 \
    X(otlp_upload_requests, info, "OTLP requests posted to X-Ray, retries included")              \
    X(otlp_upload_retries, info, "OTLP requests scheduled again after a failure")                 \
    X(otlp_upload_failures, info, "OTLP requests that failed (transport, 4xx, 5xx)")              \
    X(otlp_upload_throttled, info, "OTLP requests X-Ray throttled (429)")                         \
    X(otlp_requests_split, info, "merged OTLP requests refused whole and sent again one by one")  \
    X(otlp_spans_spool_recovered, otlp_received,                                                  \
      "OTLP spans found in the disk spool at start (an earlier run's)")                           \
    X(otlp_spans_spooled, info, "OTLP spans written to the disk spool")                           \
    X(otlp_spans_replayed, info, "OTLP spans read back from the disk spool and settled")          \
    X(otlp_spans_dropped_spool_full, otlp_dropped,                                                \
      "OTLP spans the disk spool had no room for (quota or ENOSPC)")                              \
    X(otlp_spans_dropped_spool_error, otlp_dropped,                                               \
      "OTLP spans lost to a disk spool write or read error")                                      \
    X(otlp_spans_dropped_spool_expired, otlp_dropped,                                             \
      "spooled OTLP spans older than X-Ray's OTLP endpoint takes (14 days)")                      \
    X(otlp_spool_corrupt_files, info, "damaged OTLP spool files set aside (.bad)")                \
    X(otlp_spans_spool_maybe_duplicates, info,                                                    \
      "OTLP spans spooled at shutdown while in flight: may arrive twice")

enum class Counter : std::size_t {
#define XRAYD_COUNTER_ENUM(name, kind, help) name,
    XRAYD_COUNTERS(XRAYD_COUNTER_ENUM)
#undef XRAYD_COUNTER_ENUM
};

struct CounterInfo {
    std::string_view name;
    CounterKind kind;
    std::string_view help;
};

inline constexpr std::array counter_infos = {
#define XRAYD_COUNTER_INFO(name, kind, help) CounterInfo{#name, CounterKind::kind, help},
    XRAYD_COUNTERS(XRAYD_COUNTER_INFO)
#undef XRAYD_COUNTER_INFO
};

inline constexpr std::size_t counter_count = counter_infos.size();

[[nodiscard]] constexpr const CounterInfo& info(Counter c) noexcept {
    return counter_infos[static_cast<std::size_t>(c)];
}

// A consistent-enough copy of every counter, for reports.
struct CounterSnapshot {
    std::array<std::uint64_t, counter_count> values{};

    [[nodiscard]] std::uint64_t operator[](Counter c) const noexcept {
        return values[static_cast<std::size_t>(c)];
    }
    // Sum of every counter of one kind.
    [[nodiscard]] std::uint64_t total(CounterKind kind) const noexcept;
};

// The live counters. Any thread may add; readers take snapshots. Relaxed atomics: counters
// order nothing. Each counter sits on its own cache line so receiver threads that bump
// different counters do not share lines.
class Counters {
public:
    void add(Counter c, std::uint64_t n = 1) noexcept {
        cells_[static_cast<std::size_t>(c)].value.fetch_add(n, std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t get(Counter c) const noexcept {
        return cells_[static_cast<std::size_t>(c)].value.load(std::memory_order_relaxed);
    }
    [[nodiscard]] CounterSnapshot snapshot() const noexcept;

private:
    struct alignas(64) Cell {
        std::atomic<std::uint64_t> value{0};
    };
    std::array<Cell, counter_count> cells_{};
};

}  // namespace xrayd
