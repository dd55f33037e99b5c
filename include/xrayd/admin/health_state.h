// HealthState: what /readyz decides from and the gauges /metrics exports, fed by the daemon.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include <xrayd/common/time.h>
#include <xrayd/stats/counters.h>

namespace xrayd {

// X(name, help). Exported as xrayd_<name>; the periodic summary shows some of them.
#define XRAYD_GAUGES(X)                                                                     \
    X(queue_depth, "segments waiting in the hand-off queue between receivers and batcher")  \
    X(memory_in_use_bytes, "bytes held for segments and batches (counted against -m)")      \
    X(memory_limit_bytes, "the buffer memory limit (-m) in bytes")                          \
    X(held_segments, "segments in batches not yet accepted by X-Ray (batcher and uploads)") \
    X(uploads_in_flight, "PutTraceSegments requests in flight")                             \
    X(receivers_running, "receiver threads receiving (started minus failed)")               \
    X(spool_segments, "segments in the disk spool and not in memory (spooled)")             \
    X(spool_bytes, "bytes of the disk spool's files, counted against --spool-max-bytes")    \
    X(spool_files, "files in the disk spool")                                               \
    X(otlp_held_spans, "OTLP spans accepted and not yet sent, refused or given up")         \
    X(otlp_uploads_in_flight, "OTLP requests to X-Ray in flight")                           \
    X(otlp_spool_spans, "OTLP spans in the disk spool and not in memory (spooled)")         \
    X(otlp_spool_bytes, "bytes of the OTLP spool's files (a quarter of --spool-max-bytes)") \
    X(otlp_spool_files, "requests (files) in the OTLP spool")

enum class Gauge : std::size_t {
#define XRAYD_GAUGE_ENUM(name, help) name,
    XRAYD_GAUGES(XRAYD_GAUGE_ENUM)
#undef XRAYD_GAUGE_ENUM
};

struct GaugeInfo {
    std::string_view name;
    std::string_view help;
};

inline constexpr std::array gauge_infos = {
#define XRAYD_GAUGE_INFO(name, help) GaugeInfo{#name, help},
    XRAYD_GAUGES(XRAYD_GAUGE_INFO)
#undef XRAYD_GAUGE_INFO
};

inline constexpr std::size_t gauge_count = gauge_infos.size();

// The two kinds of upload /readyz watches: PutTraceSegments (or the local sink) and OTLP.
enum class UploadPath : std::size_t { segments, otlp };

// The answer of /readyz.
struct Readiness {
    bool ready = false;
    // Why not ready; while ready, what is degraded ("" when nothing is).
    std::string reason;
};

// Health inputs and gauges. Every member is an atomic: any thread may set, any thread may read
// (the admin listener reads on its own thread). Lifetime: outlives the AdminServer reading it.
//
// Ready = listening && credentials usable && uploads (of segments, and of OTLP spans when the
// OTLP receiver runs) not failing for longer than the threshold && at least one receiver thread
// running. A receiver that failed (Receiver::failed()) leaves
// the daemon ready but degraded: the kernel gives its traffic to the others, so nothing is
// lost, but an operator should look (the reason says so, /metrics has receivers_running and
// receivers_failed); with none left nothing is received and /readyz fails.
// "Failing" starts at the first upload_failed() after a success (or after start) and ends at the
// next upload_succeeded(); a daemon that uploads nothing (no traffic) is not failing.
class HealthState {
public:
    // True once the UDP socket(s) are bound and the receivers run; false again at shutdown.
    void set_listening(bool listening) noexcept {
        listening_.store(listening, std::memory_order_relaxed);
    }
    // True when credentials resolved (or the local sink is in use, which needs none); false when
    // the provider reports it has none that work.
    void set_credentials_usable(bool usable) noexcept {
        credentials_.store(usable, std::memory_order_relaxed);
    }
    // Receiver threads started, and how many of them stopped on a fatal error.
    void set_receivers(std::size_t started, std::size_t failed) noexcept {
        receivers_started_.store(started, std::memory_order_relaxed);
        receivers_failed_.store(failed, std::memory_order_relaxed);
        set(Gauge::receivers_running,
            static_cast<std::int64_t>(started - std::min(started, failed)));
    }
    // A PutTraceSegments request (or local sink write), or an OTLP one, succeeded.
    void upload_succeeded(UploadPath path = UploadPath::segments) noexcept;
    // Such a request failed (after which it may be retried).
    void upload_failed(TimePoint now, UploadPath path = UploadPath::segments) noexcept;

    void set(Gauge g, std::int64_t value) noexcept {
        gauges_[static_cast<std::size_t>(g)].store(value, std::memory_order_relaxed);
    }
    [[nodiscard]] std::int64_t get(Gauge g) const noexcept {
        return gauges_[static_cast<std::size_t>(g)].load(std::memory_order_relaxed);
    }

    [[nodiscard]] bool listening() const noexcept {
        return listening_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] bool credentials_usable() const noexcept {
        return credentials_.load(std::memory_order_relaxed);
    }
    // How long uploads of `path` have been failing at `now`; zero when they are not.
    [[nodiscard]] Duration failing_for(TimePoint now,
                                       UploadPath path = UploadPath::segments) const noexcept;

    [[nodiscard]] Readiness readiness(TimePoint now, Duration failure_threshold) const;

private:
    static constexpr Clock::rep not_failing = INT64_MIN;

    std::atomic<bool> listening_{false};
    std::atomic<bool> credentials_{false};
    std::atomic<std::size_t> receivers_started_{0};
    std::atomic<std::size_t> receivers_failed_{0};
    std::array<std::atomic<Clock::rep>, 2> failing_since_{{{not_failing}, {not_failing}}};
    std::array<std::atomic<std::int64_t>, gauge_count> gauges_{};
};

// Feeds a HealthState's upload inputs from the counters, so the uploaders need no hook: more
// segments sent since the previous update() is a success; otherwise more failed requests
// (backend_* counters) is a failure at `now`; neither (no traffic) changes nothing. The same
// for OTLP spans (otlp_spans_sent, otlp_upload_failures), as UploadPath::otlp.
// Thread-safe (a mutex): call it from the admin refresh callback and/or the main loop.
class UploadHealthTracker {
public:
    void update(const CounterSnapshot& counters, TimePoint now, HealthState& health);

private:
    struct Seen {
        std::uint64_t sent = 0;
        std::uint64_t failures = 0;
    };
    static void update_path(Seen& seen, std::uint64_t sent, std::uint64_t failures, UploadPath path,
                            TimePoint now, HealthState& health) noexcept;

    std::mutex mutex_;
    Seen segments_;
    Seen otlp_;
};

}  // namespace xrayd
