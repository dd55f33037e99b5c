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
#include <xrayd/http/transport.h>
#include <xrayd/log/logger.h>
#include <xrayd/xray/xray_request.h>

#include "otlp_job.h"

namespace xrayd::otlp {

// One finished attempt.
struct OtlpFinished {
    OtlpJob job;
    TimePoint started{};
    CURLcode result = CURLE_OK;      // CURLE_OK: X-Ray answered, with `status`
    long status = 0;                 // HTTP status
    std::int64_t retry_after_s = 0;  // Retry-After in seconds (0: none)
    long os_errno = 0;               // a transport failure's CURLINFO_OS_ERRNO
    std::string body;                // the answer (at most max_answer_bytes)
    std::string error_type;          // its x-amzn-ErrorType header, if any
    std::string failure;             // a transport failure, for the log (peer's words escaped)
};

// Answers larger than this abort their transfer: ExportTraceServiceResponses are tiny.
inline constexpr std::size_t max_answer_bytes = 64 * 1024;

// Each slot: one reusable easy handle, its signed header list and the job it sends (the body
// goes out from the job without a copy). Kept-alive connections live in the multi's cache.
// Threads: the exporter thread calls everything except wakeup() (any thread).
// Lifetime: `logger` and `internal_errors` outlive it; transfers in flight at destruction are
// cancelled.
class OtlpTransfers {
public:
    // Throws StartupError when libcurl cannot be set up.
    OtlpTransfers(XRayTarget target, const TransportOptions& transport, std::string_view region,
                  std::size_t slots, Logger& logger, RateLimiter& internal_errors);
    ~OtlpTransfers();
    OtlpTransfers(const OtlpTransfers&) = delete;
    OtlpTransfers& operator=(const OtlpTransfers&) = delete;

    [[nodiscard]] bool has_idle() const noexcept { return !idle_.empty(); }
    [[nodiscard]] std::size_t in_flight() const noexcept { return slots_.size() - idle_.size(); }

    // Signs and starts posting `job.body` (gzip, the job's encoding) on an idle slot. On error
    // (what failed, for the log) `job` is left as it was. IMPORTANT: only when has_idle().
    [[nodiscard]] Result<void, std::string> start(OtlpJob&& job, const Credentials& credentials,
                                                  std::chrono::milliseconds timeout,
                                                  TimePoint now) noexcept;

    // Drives the transfers (curl_multi_perform). False when libcurl failed (logged).
    [[nodiscard]] bool perform() noexcept;
    // Waits up to `timeout_ms` for socket activity, curl's own timers or wakeup().
    void poll(int timeout_ms) noexcept;
    void wakeup() noexcept;  // any thread

    // The next finished attempt, its slot idle again; nullopt when none has finished.
    [[nodiscard]] std::optional<OtlpFinished> next_finished() noexcept;

    // Cancels every transfer in flight and hands back their jobs.
    [[nodiscard]] std::vector<OtlpJob> abandon() noexcept;

private:
    // Not movable once configured: libcurl holds its address.
    struct Slot {
        CurlEasy easy;
        CurlSlist headers;
        std::optional<OtlpJob> job;
        std::string answer;
        std::string error_type;
        bool answer_too_large = false;
        TimePoint started{};
        char error_buffer[CURL_ERROR_SIZE]{};
    };

    static std::size_t on_body(char* data, std::size_t size, std::size_t count,
                               void* user) noexcept;
    static std::size_t on_header(char* data, std::size_t size, std::size_t count,
                                 void* user) noexcept;
    void configure(Slot& slot);
    [[nodiscard]] Result<void, std::string> sign(Slot& slot, const OtlpJob& job,
                                                 const Credentials& credentials) noexcept;
    OtlpFinished finish(Slot& slot, CURLcode result) noexcept;
    void log_internal(std::string_view what, std::string_view detail) noexcept;

    XRayTarget target_;
    TransportOptions transport_;
    SigV4Signer signer_;
    Logger& logger_;
    RateLimiter& internal_errors_;
    CurlMulti multi_;
    std::vector<std::unique_ptr<Slot>> slots_;
    std::vector<Slot*> idle_;
};

}  // namespace xrayd::otlp
