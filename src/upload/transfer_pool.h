// TransferPool: the libcurl multi and its transfer slots, which send signed PutTraceSegments
// requests to one X-Ray target and hand back each finished attempt.
#pragma once

#include <chrono>
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
#include <xrayd/http/curl_slot_pool.h>
#include <xrayd/http/transport.h>
#include <xrayd/log/logger.h>
#include <xrayd/xray/xray_request.h>

#include "upload_job.h"

namespace xrayd {

// Answers larger than this abort their transfer: X-Ray's are a few hundred bytes.
inline constexpr std::size_t max_response_bytes = 1 << 20;

// The slots (CurlSlotPool) with X-Ray's signing: each request is signed for `target` just
// before it starts, into its slot's header list, and the body goes out from the batch without a
// copy. The pool knows requests and transfers, not what an answer means: that is the
// AnswerHandler's.
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
                 std::size_t slots, Logger& logger, RateLimiter& internal_errors)
        : target_(std::move(target)),
          signer_(std::string(region), "xray"),
          slots_(target_.url, transport, slots, max_response_bytes, "uploads", logger,
                 internal_errors) {}

    [[nodiscard]] const XRayTarget& target() const noexcept { return target_; }
    [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }
    [[nodiscard]] std::size_t in_flight() const noexcept { return slots_.in_flight(); }
    [[nodiscard]] bool has_idle() const noexcept { return slots_.has_idle(); }

    // See CurlSlotPool::resize and set_max_connects.
    void resize(std::size_t target) noexcept { slots_.resize(target); }
    [[nodiscard]] bool set_max_connects(std::size_t connections) noexcept {
        return slots_.set_max_connects(connections);
    }

    // Signs and starts a request that sends `job`'s body on an idle slot, with `timeout` for
    // the whole request, connecting included. On success the pool holds the job until
    // next_finished() hands it back; on error (what failed, for the log) `job` is left as it
    // was. IMPORTANT: only when has_idle().
    [[nodiscard]] Result<void, std::string> start(UploadJob&& job, const Credentials& credentials,
                                                  std::chrono::milliseconds timeout,
                                                  TimePoint now) noexcept {
        const std::string_view body = job.batch.body();
        if (auto headers = build_signed_headers(signer_, target_, body, credentials,
                                                WallClock::now(), slots_.next_headers());
            !headers) {
            return headers;
        }
        return slots_.start(std::move(job), body, timeout, now);
    }

    [[nodiscard]] bool perform() noexcept { return slots_.perform(); }
    // See CurlSlotPool::poll.
    void poll(int timeout_ms, bool answers_may_wait = false) noexcept {
        slots_.poll(timeout_ms, answers_may_wait);
    }
    void wakeup() noexcept { slots_.wakeup(); }  // any thread
    [[nodiscard]] std::optional<FinishedTransfer> next_finished() noexcept {
        return slots_.next_finished();
    }
    [[nodiscard]] std::vector<UploadJob> abandon() noexcept { return slots_.abandon(); }

private:
    XRayTarget target_;
    SigV4Signer signer_;
    CurlSlotPool<UploadJob> slots_;
};

}  // namespace xrayd
