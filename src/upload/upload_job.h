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
#include <xrayd/http/curl_slot_pool.h>

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
using FinishedTransfer = FinishedAttempt<UploadJob>;

}  // namespace xrayd
