// UploadJob: a batch on its way to X-Ray and its retry bookkeeping; FinishedTransfer: what one
// attempt to send it came back with.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <xrayd/batch/batch.h>
#include <xrayd/common/time.h>

namespace xrayd {

// Plain data: whoever holds the job (JobQueues, a TransferPool slot, the AnswerHandler while it
// reads the answer) owns its batch; it moves between them and is never copied.
struct UploadJob {
    explicit UploadJob(Batch&& b) noexcept : batch(std::move(b)) {}
    Batch batch;
    unsigned failures = 0;      // failed attempts so far
    TimePoint first_failure{};  // set at the first failure: the retry budget runs from it
    TimePoint due{};            // when a waiting retry may be sent
};

// One finished attempt (TransferPool::next_finished()), handed to the AnswerHandler.
struct FinishedTransfer {
    UploadJob job;
    TimePoint started{};
    TimePoint finished{};
    CURLcode result = CURLE_OK;      // CURLE_OK: X-Ray answered, with `status`
    long status = 0;                 // the HTTP status of the answer
    std::int64_t retry_after_s = 0;  // the answer's Retry-After, in seconds (0: none)
    long os_errno = 0;               // a transport failure's CURLINFO_OS_ERRNO
    // IMPORTANT: views of the transfer slot's buffers, valid until the pool starts its next
    // transfer: read them before starting any.
    std::string_view body{};               // the answer's body
    std::string_view error_type_header{};  // its x-amzn-ErrorType header (empty when absent)
    std::string failure{};  // a transport failure, for the log (a peer's words escaped)
};

}  // namespace xrayd
