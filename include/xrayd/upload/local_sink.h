// LocalSink: writes each batch body as one line to a file or stdout, instead of uploading.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include <xrayd/batch/batch_sink.h>
#include <xrayd/common/event_fd.h>
#include <xrayd/common/time.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/flow/event_loop.h>
#include <xrayd/log/logger.h>
#include <xrayd/stats/counters.h>

namespace xrayd {

// Appends `<batch body>\n` per batch to `path` (created 0600 if missing; a symbolic link is
// refused) or to stdout for "-". Counts segments_sent and batches_sent. A failed write keeps
// the batch to retry on the next run_once(): nothing is lost silently. Whole lines or nothing:
// a file gets the part of a line a failed write left cut off again (the line is written whole
// later); on a pipe the line is finished by the next attempt, at the latest by abandon().
//
// Threads: one pipeline thread calls everything, except wakeup() (any thread).
// Lifetime: `counters` and `logger` outlive the sink.
class LocalSink final : public BatchSink, public EventLoop {
public:
    // Throws StartupError when the file cannot be opened or the wake-up eventfd not created.
    [[nodiscard]] static std::unique_ptr<LocalSink> create(std::string path, Counters& counters,
                                                           Logger& logger);

    void submit(Batch&& batch) noexcept override;
    using EventLoop::run_once;
    void run_once(Duration max_wait, Answers answers) noexcept override;
    void wakeup() noexcept override;
    [[nodiscard]] std::size_t held_segments() const noexcept override { return held_; }
    [[nodiscard]] std::size_t abandon() noexcept override;

private:
    // Throws StartupError when the wake-up eventfd cannot be created.
    LocalSink(std::string path, UniqueFd out, Counters& counters, Logger& logger);
    // Writes queued batches until done or a write fails. True when the queue is empty.
    bool flush() noexcept;
    // Writes the rest of the head batch's line (partial writes continued; a full non-blocking
    // pipe waited for up to `patience`). 0 or the errno.
    int write_head_line(Duration patience) noexcept;
    // After a failed write: takes back the part of the head line written, where possible.
    void untear_head_line() noexcept;
    void wait(Duration max_wait) noexcept;
    // Logs (rate-limited) an eventfd failure: `error` is its errno, 0 for none.
    void log_wake_failure(std::string_view what, int error) noexcept;

    std::string path_;
    UniqueFd out_;
    bool regular_file_;      // out_ can be truncated back to a line start
    off_t line_start_ = -1;  // offset of the head line in a regular file
    EventFd wake_;
    Counters& counters_;
    Logger& logger_;
    std::deque<Batch> queue_;
    std::size_t head_written_ = 0;  // bytes of the head batch's line already written
    std::size_t held_ = 0;
    RateLimiter error_limiter_;
};

}  // namespace xrayd
