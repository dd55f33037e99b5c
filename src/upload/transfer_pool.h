// TransferPool: the libcurl multi and its transfer slots, which send signed PutTraceSegments
// requests to one X-Ray target and hand back each finished attempt.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <xrayd/aws/credentials.h>
#include <xrayd/aws/sigv4.h>
#include <xrayd/common/result.h>
#include <xrayd/common/time.h>
#include <xrayd/http/curl.h>
#include <xrayd/http/response_capture.h>
#include <xrayd/http/transport.h>
#include <xrayd/log/logger.h>
#include <xrayd/xray/xray_request.h>

#include "upload_job.h"

namespace xrayd {

// Answers larger than this abort their transfer: X-Ray's are a few hundred bytes.
inline constexpr std::size_t max_response_bytes = 1 << 20;

// Each slot is one reusable easy handle (kept-alive connections live in the multi's cache, up
// to set_max_connects()), its signed header list and the job it is sending: the body goes out
// from the batch without a copy. The pool knows requests and transfers, not what an answer
// means: that is the AnswerHandler's.
//
// Threads: the pipeline thread calls everything except wakeup() (any thread).
// Lifetime: `logger` and `internal_errors` outlive the pool. Transfers still in flight at
// destruction are cancelled.
class TransferPool {
public:
    // `slots` idle slots (at least 1), requests to `target` with the transport options
    // (proxy, TLS, User-Agent), SigV4 for `region`. `internal_errors` rate-limits the log of
    // libcurl's own failures. Throws StartupError when libcurl cannot be set up.
    TransferPool(XRayTarget target, const TransportOptions& transport, std::string_view region,
                 std::size_t slots, Logger& logger, RateLimiter& internal_errors);
    ~TransferPool();
    TransferPool(const TransferPool&) = delete;
    TransferPool& operator=(const TransferPool&) = delete;

    [[nodiscard]] const XRayTarget& target() const noexcept { return target_; }
    [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }
    [[nodiscard]] std::size_t in_flight() const noexcept { return slots_.size() - idle_.size(); }
    [[nodiscard]] bool has_idle() const noexcept { return !idle_.empty(); }

    // Adds idle slots or removes idle ones until there are `target` (a busy slot is removed
    // only once its transfer has finished: call again after next_finished()). Adding stops at
    // the first slot libcurl cannot provide: logged, and tried again on the next call.
    void resize(std::size_t target) noexcept;
    // CURLMOPT_MAXCONNECTS: kept-alive connections. False when libcurl rejects it.
    [[nodiscard]] bool set_max_connects(std::size_t connections) noexcept;

    // Signs and starts a request that sends `job`'s body on an idle slot, with `timeout` for
    // the whole request, connecting included. On success the pool holds the job until
    // next_finished() hands it back; on error (what failed, for the log) `job` is left as it
    // was. IMPORTANT: only when has_idle().
    [[nodiscard]] Result<void, std::string> start(UploadJob&& job, const Credentials& credentials,
                                                  std::chrono::milliseconds timeout,
                                                  TimePoint now) noexcept;

    // Drives the transfers (curl_multi_perform). False when libcurl failed (logged).
    [[nodiscard]] bool perform() noexcept;
    // Waits up to `timeout_ms` for socket activity or wakeup() (curl_multi_poll); a failure is
    // logged.
    void poll(int timeout_ms) noexcept;
    // Ends a poll() early. Any thread.
    void wakeup() noexcept;

    // The next finished transfer, its slot idle again; nullopt when none has finished.
    [[nodiscard]] std::optional<FinishedTransfer> next_finished() noexcept;

    // Cancels every transfer in flight and hands back their jobs (the caller accounts for
    // them); empty if they could not be gathered (out of memory: they are dropped).
    [[nodiscard]] std::vector<UploadJob> abandon() noexcept;

private:
    // Not movable once configured: libcurl holds its address (callbacks, CURLOPT_PRIVATE, the
    // error buffer).
    struct Slot {
        CurlEasy easy;
        CurlSlist headers;             // must outlive the transfer
        std::optional<UploadJob> job;  // the batch in flight
        ResponseCapture capture{max_response_bytes};
        TimePoint started{};
    };

    // Adds one configured idle slot. Throws StartupError when libcurl cannot provide it.
    void add_slot();
    void configure(Slot& slot);
    FinishedTransfer finish(Slot& slot, CURLcode result) noexcept;

    XRayTarget target_;
    TransportOptions transport_;
    SigV4Signer signer_;
    Logger& logger_;
    RateLimiter& internal_errors_;
    CurlMulti multi_;
    std::vector<std::unique_ptr<Slot>> slots_;
    std::vector<Slot*> idle_;
};

}  // namespace xrayd
