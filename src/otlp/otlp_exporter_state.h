// Private to otlp/: OtlpExporter's state, shared by its three files: otlp_exporter.cpp (the
// queue, merging and the exporter thread), otlp_exporter_answers.cpp (what each answer or
// failure means for a request) and otlp_exporter_spool.cpp (spilling to the spool, replay and
// what is left at the drain). The curl side is otlp_transfers.cpp.
#pragma once

#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include <xrayd/log/logger.h>
#include <xrayd/otlp/otlp_exporter.h>
#include <xrayd/upload/throttle_controller.h>
#include <xrayd/xray/retry_policy.h>
#include <xrayd/xray/xray_request.h>

#include "gzip_writer.h"
#include "otlp_job.h"
#include "otlp_transfers.h"

namespace xrayd::otlp {

// The order of the `waiting` heap: the job due first at its front.
inline bool due_later(const OtlpJob& a, const OtlpJob& b) noexcept {
    return a.due > b.due;
}

// How often each kind of exporter log line may repeat.
inline constexpr Duration exporter_log_interval = std::chrono::seconds(10);

struct OtlpExporter::State {
    OtlpExporterOptions options;
    CredentialsProvider& credentials;
    Counters& counters;
    Logger& logger;
    MemoryBudget& budget;
    RateLimiter internal_errors{exporter_log_interval};
    RateLimiter retry_log{exporter_log_interval};
    RateLimiter final_log{exporter_log_interval};
    RateLimiter partial_log{exporter_log_interval};
    RateLimiter split_log{exporter_log_interval};
    OtlpTransfers transfers;
    GzipWriter gzip_writer;  // exporter thread only
    ThrottleController throttle;
    JitterSource jitter;

    // Shared with offer() (receiver threads).
    std::mutex mutex;
    std::deque<OtlpItem> queued;  // accepted, not yet in a request
    std::size_t queued_spans = 0;
    std::size_t queued_bytes = 0;
    bool stopping = false;
    TimePoint deadline{};

    // Exporter thread only.
    std::deque<OtlpJob> ready;  // split client requests, and retries that are due
    // Failed, waiting for their due time: a heap whose front() is the next due (push_heap and
    // pop_heap with due_later), so that a turn looks at one job, not all of them.
    std::vector<OtlpJob> waiting;

    bool healthy = true;                 // the last answer was a success
    std::size_t replay_outstanding = 0;  // jobs read back from the spool, not yet settled

    std::atomic<std::size_t> held{0};
    std::atomic<std::size_t> in_flight{0};
    std::thread thread;
    bool drained = false;

    State(OtlpExporterOptions o, CredentialsProvider& c, Counters& k, Logger& l, MemoryBudget& b)
        : options(std::move(o)),
          credentials(c),
          counters(k),
          logger(l),
          budget(b),
          transfers(make_xray_target(options.url, ""), options.transport, options.region,
                    static_cast<std::size_t>(options.concurrency), logger, internal_errors),
          gzip_writer(options.gzip_level),
          throttle(options.concurrency),
          jitter(static_cast<std::uint64_t>(Clock::now().time_since_epoch().count())) {}

    void run() noexcept;
    void start_ready(TimePoint now, bool draining) noexcept;
    std::optional<OtlpJob> next_job(TimePoint now, bool draining) noexcept;
    bool build_body(OtlpJob& job) noexcept;
    void on_finished(OtlpFinished&& done) noexcept;
    void on_answer(OtlpFinished&& done, TimePoint now) noexcept;
    void on_failure(OtlpJob&& job, std::string_view reason, Duration retry_after,
                    TimePoint now) noexcept;
    void split(OtlpJob&& job) noexcept;
    void settle(OtlpJob& job) noexcept;
    int poll_timeout(TimePoint now, bool draining) noexcept;
    void give_up_everything() noexcept;
    void spill(OtlpJob& job) noexcept;
    void spill_for_room() noexcept;
    void maybe_replay(bool draining) noexcept;
    void release(OtlpJob& job) noexcept;
};

}  // namespace xrayd::otlp
