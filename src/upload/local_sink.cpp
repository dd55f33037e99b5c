// LocalSink: batch bodies as lines in a file or on stdout.
#include <xrayd/upload/local_sink.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include <xrayd/common/startup_error.h>

namespace xrayd {
namespace {

constexpr Duration error_log_interval = std::chrono::seconds(10);
// How long abandon() waits for a full pipe to take the rest of a line begun.
constexpr Duration abandon_patience = std::chrono::seconds(1);

bool is_regular_file(int fd) noexcept {
    struct stat st {};
    return ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

std::unique_ptr<LocalSink> LocalSink::create(std::string path, Counters& counters, Logger& logger) {
    UniqueFd out;
    if (path == "-") {
        out.reset(::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0));
    } else {
        // 0600: the batches are the traces themselves. O_NOFOLLOW: a link planted in the
        // directory must not point xrayd's writes at another file.
        out.reset(
            ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    }
    if (!out) {
        const int error = errno;
        throw StartupError(fmt::format(
            "Cannot open local output '{}': {}", path,
            error == ELOOP ? "it is a symbolic link, which xrayd does not follow (give the "
                             "path of the file itself)"
                           : std::strerror(error)));
    }
    return std::unique_ptr<LocalSink>(
        new LocalSink(std::move(path), std::move(out), counters, logger));
}

LocalSink::LocalSink(std::string path, UniqueFd out, Counters& counters, Logger& logger)
    : path_(std::move(path)),
      out_(std::move(out)),
      regular_file_(is_regular_file(out_.get())),
      wake_("local sink"),
      counters_(counters),
      logger_(logger),
      error_limiter_(error_log_interval) {}

void LocalSink::submit(Batch&& batch) noexcept {
    if (!batch.sealed()) {
        batch.seal();
    }
    if (batch.empty()) {
        return;
    }
    const std::size_t count = batch.segment_count();
    try {
        queue_.push_back(std::move(batch));
    } catch (...) {
        counters_.add(Counter::dropped_gave_up, count);
        logger_.error("Out of memory queueing a batch: {} segments dropped", count);
        return;
    }
    held_ += count;
}

int LocalSink::write_head_line(Duration patience) noexcept {
    const TimePoint give_up = Clock::now() + patience;
    static constexpr char newline = '\n';
    const std::string_view body = queue_.front().body();
    const std::size_t line_size = body.size() + 1;
    if (head_written_ == 0 && regular_file_) {
        // Where this line starts, to take a part of it back if the rest cannot be written.
        line_start_ = ::lseek(out_.get(), 0, SEEK_END);
    }
    while (head_written_ < line_size) {
        iovec parts[2];
        int n_parts = 0;
        if (head_written_ < body.size()) {
            parts[n_parts++] = {const_cast<char*>(body.data() + head_written_),
                                body.size() - head_written_};
        }
        parts[n_parts++] = {const_cast<char*>(&newline), 1};
        const ssize_t n = ::writev(out_.get(), parts, n_parts);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            const int error = errno;
            if ((error == EAGAIN || error == EWOULDBLOCK) && Clock::now() < give_up) {
                // A non-blocking pipe is full: wait (bounded) for its reader.
                const auto left =
                    std::chrono::ceil<std::chrono::milliseconds>(give_up - Clock::now());
                pollfd pfd{out_.get(), POLLOUT, 0};
                (void)::poll(&pfd, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 1)));
                continue;
            }
            untear_head_line();
            return error;
        }
        head_written_ += static_cast<std::size_t>(n);  // a short write: the loop goes on
    }
    return 0;
}

void LocalSink::untear_head_line() noexcept {
    // Whole lines or nothing: a file gets the part written cut off again, so the batch is
    // written whole later (or never); a pipe cannot take it back, and its line is finished by
    // the next attempt.
    if (head_written_ > 0 && regular_file_ && line_start_ >= 0 &&
        ::ftruncate(out_.get(), line_start_) == 0) {
        head_written_ = 0;
    }
}

bool LocalSink::flush() noexcept {
    while (!queue_.empty()) {
        const Batch& batch = queue_.front();
        {
            const int error = write_head_line(Duration::zero());
            if (error != 0) {
                std::uint64_t suppressed = 0;
                if (error_limiter_.allow(Clock::now(), &suppressed)) {
                    logger_.error("Writing batch of {} segments to {} failed: {} (will retry; "
                                  "{} similar failures not logged)",
                                  batch.segment_count(), path_, std::strerror(error), suppressed);
                }
                return false;
            }
        }
        const std::size_t count = batch.segment_count();
        counters_.add(Counter::segments_sent, count);
        counters_.add(Counter::batches_sent);
        held_ -= std::min(held_, count);
        logger_.info("Wrote batch of {} segments to {}", count, path_);
        queue_.pop_front();
        head_written_ = 0;
    }
    return true;
}

void LocalSink::wait(Duration max_wait) noexcept {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(max_wait).count();
    pollfd pfd{wake_.fd(), POLLIN, 0};
    const int timeout = static_cast<int>(std::clamp<std::int64_t>(ms, 0, 60'000));
    if (::poll(&pfd, 1, timeout) > 0 && (pfd.revents & POLLIN) != 0) {
        log_wake_failure("draining wake-ups (eventfd read)", wake_.drain());
    }
}

void LocalSink::log_wake_failure(std::string_view what, int error) noexcept {
    std::uint64_t suppressed = 0;
    if (error != 0 && error_limiter_.allow(Clock::now(), &suppressed)) {
        logger_.error("Local sink: {} failed: {}", what, std::strerror(error));
    }
}

void LocalSink::run_once(Duration max_wait, Answers /*answers: a pipe answers nothing*/) noexcept {
    if (!flush()) {
        // Wait before trying the failed write again rather than spinning on it.
        wait(max_wait);
        return;
    }
    wait(max_wait);
    (void)flush();
}

void LocalSink::wakeup() noexcept {
    log_wake_failure("waking (eventfd write)", wake_.signal());
}

std::size_t LocalSink::abandon() noexcept {
    if (!queue_.empty() && head_written_ > 0) {
        // A line begun (on a pipe, where it cannot be taken back): finish it rather than leave
        // half a JSON line for the reader, waiting a little for a full pipe to drain.
        if (write_head_line(abandon_patience) == 0) {
            const std::size_t count = queue_.front().segment_count();
            counters_.add(Counter::segments_sent, count);
            counters_.add(Counter::batches_sent);
            held_ -= std::min(held_, count);
        } else if (head_written_ > 0) {
            logger_.error("Could not finish the line of a batch to {}: it is cut short", path_);
        }
    }
    queue_.clear();
    head_written_ = 0;
    return std::exchange(held_, 0);
}

}  // namespace xrayd
