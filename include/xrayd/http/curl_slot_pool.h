// CurlSlotPool: a libcurl multi and its transfer slots, each a reusable easy handle that POSTs a
// job's body to one URL and hands the job back with the answer. The uploader (PutTraceSegments)
// and the OTLP exporter each wrap one with their own signing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <curl/curl.h>
#include <fmt/format.h>

#include <xrayd/common/result.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/common/time.h>
#include <xrayd/http/curl.h>
#include <xrayd/http/curl_epoll.h>
#include <xrayd/http/response_capture.h>
#include <xrayd/http/transport.h>
#include <xrayd/log/logger.h>

namespace xrayd {

// One finished attempt, with the job that was sent.
template <typename Job>
struct FinishedAttempt {
    Job job;
    TimePoint started{};
    TimePoint finished{};
    CURLcode result = CURLE_OK;      // CURLE_OK: the server answered, with `status`
    long status = 0;                 // the HTTP status of the answer
    std::int64_t retry_after_s = 0;  // the answer's Retry-After, in seconds (0: none)
    long os_errno = 0;               // a transport failure's CURLINFO_OS_ERRNO
    // IMPORTANT: views of the slot's buffers, valid until the pool starts its next transfer:
    // read them before starting any.
    std::string_view body{};               // the answer's body
    std::string_view error_type_header{};  // its x-amzn-ErrorType header (empty when absent)
    std::string failure{};  // a transport failure, for the log (a peer's words escaped)
};

// The transfers run on epoll and curl_multi_socket_action (CurlEpoll). Kept-alive
// connections live in the multi's cache (set_max_connects()); each slot keeps its
// header list, which the caller fills (signs) before start(). The pool knows transfers, not what
// an answer means. `Job` must be nothrow-movable; start() sends `body` from the job without a
// copy, so the bytes must not move with the job (a std::string's or a pooled block's heap).
//
// Threads: one thread calls everything except wakeup() (any thread).
// Lifetime: `logger` and `internal_errors` outlive the pool. Transfers still in flight at
// destruction are cancelled.
template <typename Job>
class CurlSlotPool {
public:
    // `slots` idle slots (at least 1) posting to `url` with the transport options (proxy, TLS,
    // User-Agent), answers up to `max_answer_bytes`. Throws StartupError when libcurl, epoll or
    // the eventfd cannot be set up. `what` names the pool in log lines ("OTLP exporter").
    CurlSlotPool(std::string url, const TransportOptions& transport, std::size_t slots,
                 std::size_t max_answer_bytes, std::string_view what, Logger& logger,
                 RateLimiter& internal_errors)
        : url_(std::move(url)),
          transport_(transport),
          max_answer_bytes_(max_answer_bytes),
          loop_(what, logger, internal_errors) {
        if (!set_max_connects(slots)) {
            throw StartupError("libcurl rejected CURLMOPT_MAXCONNECTS");
        }
        for (std::size_t i = 0; i < slots; ++i) {
            add_slot();
        }
    }
    ~CurlSlotPool() {
        for (auto& slot : slots_) {
            if (slot->job) {
                (void)loop_.multi().remove(slot->easy);
            }
        }
    }
    CurlSlotPool(const CurlSlotPool&) = delete;
    CurlSlotPool& operator=(const CurlSlotPool&) = delete;

    [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }
    [[nodiscard]] std::size_t in_flight() const noexcept { return slots_.size() - idle_.size(); }
    [[nodiscard]] bool has_idle() const noexcept { return !idle_.empty(); }

    // Adds idle slots or removes idle ones until there are `target` (a busy slot is removed
    // only once its transfer has finished: call again after next_finished()). Adding stops at
    // the first slot libcurl cannot provide: logged, and tried again on the next call.
    void resize(std::size_t target) noexcept {
        while (slots_.size() < target) {
            try {
                add_slot();
            } catch (const std::exception& e) {
                log_internal(fmt::format("adding a slot ({} of {})", slots_.size(), target),
                             e.what());
                return;
            }
        }
        while (slots_.size() > target && !idle_.empty()) {
            const Slot* slot = idle_.back();
            idle_.pop_back();
            std::erase_if(slots_, [&](const std::unique_ptr<Slot>& s) { return s.get() == slot; });
        }
    }
    // CURLMOPT_MAXCONNECTS: kept-alive connections. False when libcurl rejects it.
    [[nodiscard]] bool set_max_connects(std::size_t connections) noexcept {
        return loop_.multi().set(CURLMOPT_MAXCONNECTS, static_cast<long>(connections)) == CURLM_OK;
    }

    // The header list the next start() sends (the idle slot's): the caller rewrites it (it is
    // not in use by any transfer). IMPORTANT: only when has_idle().
    [[nodiscard]] CurlSlist& next_headers() noexcept { return idle_.back()->headers; }

    // Starts POSTing `body` (which the job owns) with next_headers() and `timeout` for the
    // whole request, connecting included. On success the pool holds the job until
    // next_finished() hands it back; on error (what failed, for the log) `job` is left as it
    // was. IMPORTANT: only when has_idle().
    [[nodiscard]] Result<void, std::string> start(Job&& job, std::string_view body,
                                                  std::chrono::milliseconds timeout,
                                                  TimePoint now) noexcept {
        Slot& slot = *idle_.back();
        CurlFirstError set;
        // Per transfer, so a reloaded request timeout applies from the next request on.
        const auto timeout_ms = static_cast<long>(timeout.count());
        set(slot.easy.set(CURLOPT_TIMEOUT_MS, timeout_ms));
        set(slot.easy.set(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms));
        set(slot.easy.set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size())));
        set(slot.easy.set(CURLOPT_POSTFIELDS, body.data()));
        set(slot.easy.set(CURLOPT_HTTPHEADER, slot.headers.get()));
        if (set.code() != CURLE_OK) {
            return failed("libcurl rejected a request option: ", curl_easy_strerror(set.code()));
        }
        slot.capture.reset();
        slot.started = now;
        slot.body_bytes = static_cast<curl_off_t>(body.size());
        slot.job.emplace(std::move(job));
        if (const CURLMcode mrc = loop_.multi().add(slot.easy); mrc != CURLM_OK) {
            job = std::move(*slot.job);
            slot.job.reset();
            return failed("libcurl could not start the transfer: ", curl_multi_strerror(mrc));
        }
        idle_.pop_back();
        return {};
    }

    // Drives what needs no socket event: begins the transfers start() added (so a new request
    // goes out now, not at the next wake-up) and ends those past their timeouts. Call it after
    // start(). False when libcurl failed (logged).
    [[nodiscard]] bool perform() noexcept { return loop_.run_timers(); }
    // Waits up to `timeout_ms` for socket activity, curl's own timers or wakeup(), and drives
    // the transfers whose sockets are ready: completions are then in next_finished(). A failure
    // is logged. `answers_may_wait`: the caller needs no answer before the wait ends anyway
    // (it has a free slot for its next request and the timeout bounds the delay), so answers
    // arriving do not end the wait, once every request in flight is sent whole
    // (CurlEpoll::wait).
    void poll(int timeout_ms, bool answers_may_wait = false) noexcept {
        loop_.wait(timeout_ms, answers_may_wait && requests_sent());
    }
    // Ends a poll() early, or makes the next one return at once. Any thread.
    void wakeup() noexcept { loop_.wakeup(); }

    // Whether every transfer in flight has handed its whole body to the connection: all that
    // is left of each is to wait for its answer. False while one connects, shakes hands or
    // sends (HTTP/2 flow control included), or when libcurl cannot tell.
    [[nodiscard]] bool requests_sent() const noexcept {
        for (const auto& slot : slots_) {
            curl_off_t sent = 0;
            if (slot->job &&
                (curl_easy_getinfo(slot->easy.get(), CURLINFO_SIZE_UPLOAD_T, &sent) != CURLE_OK ||
                 sent < slot->body_bytes)) {
                return false;
            }
        }
        return true;
    }

    // The next finished transfer, its slot idle again; nullopt when none has finished.
    [[nodiscard]] std::optional<FinishedAttempt<Job>> next_finished() noexcept {
        while (CURLMsg* message = loop_.multi().next_message()) {
            if (message->msg != CURLMSG_DONE) {
                continue;
            }
            char* private_data = nullptr;
            if (curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &private_data) !=
                    CURLE_OK ||
                private_data == nullptr) {
                continue;  // cannot happen: every handle gets CURLOPT_PRIVATE
            }
            const CURLcode result = message->data.result;  // before the handle is removed
            return finish(*reinterpret_cast<Slot*>(private_data), result);
        }
        return std::nullopt;
    }

    // Cancels every transfer in flight and hands back their jobs (the caller accounts for
    // them); a job that cannot be gathered (out of memory) is dropped.
    [[nodiscard]] std::vector<Job> abandon() noexcept {
        std::vector<Job> jobs;
        for (auto& slot : slots_) {
            if (slot->job) {
                (void)loop_.multi().remove(slot->easy);
                try {
                    jobs.push_back(std::move(*slot->job));
                } catch (...) {
                }
                slot->job.reset();
                idle_.push_back(slot.get());
            }
        }
        return jobs;
    }

private:
    // Not movable once configured: libcurl holds its address (callbacks, CURLOPT_PRIVATE, the
    // error buffer).
    struct Slot {
        explicit Slot(std::size_t max_answer_bytes) : capture(max_answer_bytes) {}
        CurlEasy easy;
        CurlSlist headers;  // must outlive the transfer
        std::optional<Job> job;
        ResponseCapture capture;
        TimePoint started{};
        curl_off_t body_bytes = 0;  // of the request in flight
    };

    static void check_setopt(CURLcode rc, std::string_view option) {
        if (rc != CURLE_OK) {
            throw StartupError(
                fmt::format("libcurl rejected {}: {}", option, curl_easy_strerror(rc)));
        }
    }

    // Adds one configured idle slot. Throws StartupError when libcurl cannot provide it.
    void add_slot() {
        auto slot = std::make_unique<Slot>(max_answer_bytes_);
        slot->easy = CurlEasy::create();
        // Proxy (the configured one only), TLS trust, timeouts, User-Agent, protocols, NOSIGNAL.
        check_setopt(apply_transport(slot->easy, transport_),
                     "the transport options (proxy, TLS, timeouts, User-Agent)");
        check_setopt(slot->easy.set(CURLOPT_URL, url_.c_str()), "CURLOPT_URL");
        check_setopt(slot->easy.set(CURLOPT_POST, 1L), "CURLOPT_POST");
        // HTTP/2 where the server offers it (ALPN), else HTTP/1.1 kept alive.
        check_setopt(
            slot->easy.set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS)),
            "CURLOPT_HTTP_VERSION");
        check_setopt(slot->easy.set(CURLOPT_TCP_KEEPALIVE, 1L), "CURLOPT_TCP_KEEPALIVE");
        check_setopt(slot->capture.attach(slot->easy), "the answer's callbacks and error buffer");
        check_setopt(loop_.attach(slot->easy), "the socket open and close callbacks");
        check_setopt(slot->easy.set(CURLOPT_PRIVATE, static_cast<void*>(slot.get())),
                     "CURLOPT_PRIVATE");
        // Both reserve first, so the slot is never in one list and not the other.
        slots_.reserve(slots_.size() + 1);
        idle_.reserve(slots_.size() + 1);
        idle_.push_back(slot.get());
        slots_.push_back(std::move(slot));
    }

    FinishedAttempt<Job> finish(Slot& slot, CURLcode result) noexcept {
        const TimePoint now = Clock::now();
        if (const CURLMcode mrc = loop_.multi().remove(slot.easy); mrc != CURLM_OK) {
            log_internal("removing a finished transfer", curl_multi_strerror(mrc));
        }
        FinishedAttempt<Job> done{std::move(*slot.job)};
        slot.job.reset();
        idle_.push_back(&slot);  // cannot throw: reserved for every slot in add_slot()
        done.started = slot.started;
        done.finished = now;
        done.result = result;
        const TransferInfo info = read_transfer_info(slot.easy, result);
        done.status = info.status;
        done.retry_after_s = info.retry_after_s;
        done.os_errno = info.os_errno;
        if (result == CURLE_OK) {
            done.body = slot.capture.body();
            done.error_type_header = slot.capture.error_type();
        } else {
            done.failure = slot.capture.failure(result);
        }
        return done;
    }

    // `prefix` + `detail` as a start() error; empty when formatting runs out of memory.
    static Result<void, std::string> failed(std::string_view prefix,
                                            std::string_view detail) noexcept {
        try {
            return fail(std::string(prefix).append(detail));
        } catch (...) {
            return fail(std::string());
        }
    }

    void log_internal(std::string_view what, std::string_view detail) noexcept {
        loop_.log_failure(what, detail);
    }

    std::string url_;
    TransportOptions transport_;
    std::size_t max_answer_bytes_;
    // Before the slots, so destroyed after them: ~CurlSlotPool takes their handles out of its
    // multi first.
    CurlEpoll loop_;
    std::vector<std::unique_ptr<Slot>> slots_;
    std::vector<Slot*> idle_;
};

}  // namespace xrayd
