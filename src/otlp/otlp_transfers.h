// OtlpTransfers: the libcurl multi and transfer slots that post signed, gzip-compressed OTLP
// requests to X-Ray's /v1/traces and hand back each finished attempt.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <curl/curl.h>

#include <xrayd/aws/credentials.h>
#include <xrayd/aws/sigv4.h>
#include <xrayd/common/result.h>
#include <xrayd/common/time.h>
#include <xrayd/http/curl.h>
#include <xrayd/http/curl_slot_pool.h>
#include <xrayd/http/transport.h>
#include <xrayd/log/logger.h>
#include <xrayd/xray/xray_request.h>

#include "otlp_job.h"

namespace xrayd::otlp {

// One finished attempt.
using OtlpFinished = FinishedAttempt<OtlpJob>;

// Answers larger than this abort their transfer: ExportTraceServiceResponses are tiny.
inline constexpr std::size_t max_answer_bytes = 64 * 1024;

// The slots (CurlSlotPool) with the OTLP request's signing: each gzip body is signed for
// `target` (content-encoding and content-type included) just before it starts.
// Threads: the exporter thread calls everything except wakeup() (any thread).
// Lifetime: `logger` and `internal_errors` outlive it; transfers in flight at destruction are
// cancelled.
class OtlpTransfers {
public:
    // Throws StartupError when libcurl cannot be set up.
    OtlpTransfers(XRayTarget target, const TransportOptions& transport, std::string_view region,
                  std::size_t slots, Logger& logger, RateLimiter& internal_errors)
        : target_(std::move(target)),
          signer_(std::string(region), "xray"),
          slots_(target_.url, transport, slots, max_answer_bytes, "OTLP exporter", logger,
                 internal_errors) {}

    [[nodiscard]] bool has_idle() const noexcept { return slots_.has_idle(); }
    [[nodiscard]] std::size_t in_flight() const noexcept { return slots_.in_flight(); }

    // Signs and starts posting `job.body` (gzip, the job's encoding) on an idle slot. On error
    // (what failed, for the log) `job` is left as it was. IMPORTANT: only when has_idle().
    [[nodiscard]] Result<void, std::string> start(OtlpJob&& job, const Credentials& credentials,
                                                  std::chrono::milliseconds timeout,
                                                  TimePoint now) noexcept;

    [[nodiscard]] bool perform() noexcept { return slots_.perform(); }
    void poll(int timeout_ms) noexcept { slots_.poll(timeout_ms); }
    void wakeup() noexcept { slots_.wakeup(); }  // any thread
    [[nodiscard]] std::optional<OtlpFinished> next_finished() noexcept {
        return slots_.next_finished();
    }
    [[nodiscard]] std::vector<OtlpJob> abandon() noexcept { return slots_.abandon(); }

private:
    XRayTarget target_;
    SigV4Signer signer_;
    CurlSlotPool<OtlpJob> slots_;
};

}  // namespace xrayd::otlp
