// Uploader: PutTraceSegments over libcurl multi, with retries.
#include <xrayd/upload/uploader.h>

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <random>
#include <span>
#include <string_view>
#include <vector>

#include <xrayd/aws/sigv4.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/http/curl.h>
#include <xrayd/upload/resend.h>
#include <xrayd/upload/retry_policy.h>
#include <xrayd/upload/throttle_controller.h>
#include <xrayd/upload/xray_request.h>
#include <xrayd/upload/xray_response.h>

namespace xrayd {
namespace {

constexpr std::string_view request_path = "/TraceSegments";
constexpr std::size_t max_response_bytes = 1 << 20;  // X-Ray answers are a few hundred bytes
constexpr Duration failure_log_interval = std::chrono::seconds(10);

bool starts_with_nocase(std::string_view text, std::string_view prefix) noexcept {
    if (text.size() < prefix.size()) {
        return false;
    }
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) {
            return false;
        }
    }
    return true;
}

double seconds_between(TimePoint from, TimePoint to) noexcept {
    return std::chrono::duration<double>(to - from).count();
}

int to_poll_timeout(Duration wait) noexcept {
    if (wait <= Duration::zero()) {
        return 0;
    }
    // Round up so a wait for a due time does not wake just before it, over and over.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    return static_cast<int>(std::min<std::int64_t>(ms, 60'000));
}

// A batch and its retry bookkeeping.
struct Job {
    explicit Job(Batch&& b) noexcept : batch(std::move(b)) {}
    Batch batch;
    unsigned failures = 0;
    TimePoint first_failure{};
    TimePoint due{};
};

// One transfer slot: a reusable easy handle (kept-alive connections live in the multi's
// cache) and what the current attempt needs to stay alive.
struct Slot {
    CurlEasy easy;
    CurlSlist headers;          // must outlive the transfer
    std::optional<Job> job;     // the batch in flight: its body is sent without copying
    std::string response;
    std::string error_type_header;  // x-amzn-ErrorType
    bool response_too_large = false;
    TimePoint started{};
    char error_buffer[CURL_ERROR_SIZE]{};
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    auto* slot = static_cast<Slot*>(user);
    const std::size_t n = size * count;
    if (slot->response.size() + n > max_response_bytes) {
        slot->response_too_large = true;
        return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    try {
        slot->response.append(data, n);
    } catch (...) {
        return 0;
    }
    return n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    auto* slot = static_cast<Slot*>(user);
    const std::size_t n = size * count;
    std::string_view line(data, n);
    if (line.starts_with("HTTP/")) {
        slot->error_type_header.clear();  // a new response (after a proxy CONNECT, say)
        return n;
    }
    constexpr std::string_view name = "x-amzn-errortype:";
    if (starts_with_nocase(line, name)) {
        line.remove_prefix(name.size());
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
            line.remove_prefix(1);
        }
        while (!line.empty() && (line.back() == '\r' || line.back() == '\n' ||
                                 line.back() == ' ')) {
            line.remove_suffix(1);
        }
        try {
            slot->error_type_header.assign(line);
        } catch (...) {
            // Only used for the retry decision's throttling check; losing it is harmless.
        }
    }
    return n;
}

void check_setopt(CURLcode rc, std::string_view option) {
    if (rc != CURLE_OK) {
        throw StartupError(fmt::format("libcurl rejected {}: {}", option, curl_easy_strerror(rc)));
    }
}

}  // namespace

struct Uploader::State {
    State(UploaderOptions opts, XRayTarget ep, CredentialsProvider& creds, Counters& ctrs,
          Logger& log, MemoryBudget* mem, std::uint64_t seed)
        : options(std::move(opts)),
          endpoint(std::move(ep)),
          credentials(creds),
          counters(ctrs),
          logger(log),
          budget(mem),
          signer(options.region, "xray"),
          throttle(options.concurrency, options.throttle_successes_per_increase),
          jitter(seed) {}

    ~State() {
        for (auto& slot : slots) {
            if (slot->job) {
                (void)multi.remove(slot->easy);
            }
        }
    }

    void configure(Slot& slot);
    void do_work() noexcept;
    void promote_due(TimePoint now) noexcept;
    void start_ready(TimePoint now) noexcept;
    bool drain_completions() noexcept;
    void start(Slot& slot, Job&& job, TimePoint now) noexcept;
    void complete(Slot& slot, CURLcode result) noexcept;
    void on_success(Job&& job, TimePoint started, TimePoint now, std::string_view body) noexcept;
    void resend_unprocessed(Job&& job, std::span<const std::size_t> indexes,
                            TimePoint now) noexcept;
    void on_throttled(TimePoint started, TimePoint now, std::string_view reason) noexcept;
    void on_not_throttled() noexcept;
    void make_room() noexcept;
    [[nodiscard]] std::size_t in_flight() const noexcept { return slots.size() - idle.size(); }
    void on_failure(Job&& job, FailureClass failure, bool retryable, std::string_view reason,
                    Duration retry_after, TimePoint now) noexcept;
    void release(std::size_t segments) noexcept { held -= std::min(held, segments); }
    void log_failure(RateLimiter& limiter, std::string_view reason,
                     std::string_view outcome) noexcept;
    Duration next_wait(Duration max_wait, TimePoint now) const noexcept;

    UploaderOptions options;
    XRayTarget endpoint;
    CredentialsProvider& credentials;
    Counters& counters;
    Logger& logger;
    MemoryBudget* budget;  // nullable
    SigV4Signer signer;
    ThrottleController throttle;
    CurlMulti multi;
    std::vector<std::unique_ptr<Slot>> slots;
    std::vector<Slot*> idle;
    std::deque<Job> fresh;        // submitted, never tried
    std::deque<Job> retry_ready;  // due retries: they go before fresh batches
    std::vector<Job> waiting;     // failed, waiting for their due time
    std::size_t held = 0;
    simdjson::dom::parser parser;
    std::vector<UnprocessedSegment> unprocessed;
    std::vector<std::size_t> resend_indexes;
    std::vector<char> matched;             // per segment of the batch being answered
    simdjson::dom::parser resend_parser;  // request bodies: kept apart from the small answers
    JitterSource jitter;
    RateLimiter retry_limiter{failure_log_interval};
    RateLimiter final_limiter{failure_log_interval};
    RateLimiter internal_limiter{failure_log_interval};
    RateLimiter evict_limiter{failure_log_interval};
    std::uint64_t evicted_since_log = 0;
};

void Uploader::State::configure(Slot& slot) {
    const UploaderOptions& o = options;
    check_setopt(slot.easy.set(CURLOPT_URL, endpoint.url.c_str()), "CURLOPT_URL");
    check_setopt(slot.easy.set(CURLOPT_PROTOCOLS_STR, "http,https"), "CURLOPT_PROTOCOLS_STR");
    check_setopt(slot.easy.set(CURLOPT_POST, 1L), "CURLOPT_POST");
    check_setopt(slot.easy.set(CURLOPT_NOSIGNAL, 1L), "CURLOPT_NOSIGNAL");
    check_setopt(slot.easy.set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS)),
                 "CURLOPT_HTTP_VERSION");
    check_setopt(slot.easy.set(CURLOPT_TIMEOUT_MS, static_cast<long>(o.request_timeout.count())),
                 "CURLOPT_TIMEOUT_MS");
    check_setopt(slot.easy.set(CURLOPT_CONNECTTIMEOUT_MS,
                               static_cast<long>(o.request_timeout.count())),
                 "CURLOPT_CONNECTTIMEOUT_MS");
    check_setopt(slot.easy.set(CURLOPT_TCP_KEEPALIVE, 1L), "CURLOPT_TCP_KEEPALIVE");
    check_setopt(slot.easy.set(CURLOPT_WRITEFUNCTION, on_body), "CURLOPT_WRITEFUNCTION");
    check_setopt(slot.easy.set(CURLOPT_WRITEDATA, static_cast<void*>(&slot)), "CURLOPT_WRITEDATA");
    check_setopt(slot.easy.set(CURLOPT_HEADERFUNCTION, on_header), "CURLOPT_HEADERFUNCTION");
    check_setopt(slot.easy.set(CURLOPT_HEADERDATA, static_cast<void*>(&slot)),
                 "CURLOPT_HEADERDATA");
    check_setopt(slot.easy.set(CURLOPT_ERRORBUFFER, slot.error_buffer), "CURLOPT_ERRORBUFFER");
    check_setopt(slot.easy.set(CURLOPT_PRIVATE, static_cast<void*>(&slot)), "CURLOPT_PRIVATE");
    if (!o.user_agent.empty()) {
        check_setopt(slot.easy.set(CURLOPT_USERAGENT, o.user_agent.c_str()), "CURLOPT_USERAGENT");
    }
    if (!o.ca_bundle.empty()) {
        check_setopt(slot.easy.set(CURLOPT_CAINFO, o.ca_bundle.c_str()), "CURLOPT_CAINFO");
    }
    if (o.no_verify_ssl) {
        check_setopt(slot.easy.set(CURLOPT_SSL_VERIFYPEER, 0L), "CURLOPT_SSL_VERIFYPEER");
        check_setopt(slot.easy.set(CURLOPT_SSL_VERIFYHOST, 0L), "CURLOPT_SSL_VERIFYHOST");
    }
    // An empty string disables curl's own reading of http_proxy/https_proxy: the configured
    // proxy is the only one.
    check_setopt(slot.easy.set(CURLOPT_PROXY, o.proxy.c_str()), "CURLOPT_PROXY");
    if (!o.no_proxy.empty()) {
        check_setopt(slot.easy.set(CURLOPT_NOPROXY, o.no_proxy.c_str()), "CURLOPT_NOPROXY");
    }
}

void Uploader::State::log_failure(RateLimiter& limiter, std::string_view reason,
                                  std::string_view outcome) noexcept {
    std::uint64_t suppressed = 0;
    if (!limiter.allow(Clock::now(), &suppressed)) {
        return;
    }
    if (suppressed > 0) {
        logger.error("Sending segment batch failed with: {} ({}; {} similar failures not logged)",
                     reason, outcome, suppressed);
    } else {
        logger.error("Sending segment batch failed with: {} ({})", reason, outcome);
    }
}

void Uploader::State::promote_due(TimePoint now) noexcept {
    const bool any_due = std::any_of(waiting.begin(), waiting.end(),
                                     [&](const Job& job) { return job.due <= now; });
    if (!any_due) {
        return;
    }
    // Oldest due first, so retries keep their relative order.
    std::stable_sort(waiting.begin(), waiting.end(),
                     [](const Job& a, const Job& b) { return a.due < b.due; });
    std::size_t moved = 0;
    try {
        while (moved < waiting.size() && waiting[moved].due <= now) {
            retry_ready.push_back(std::move(waiting[moved]));
            ++moved;
        }
    } catch (...) {
        // Out of memory: the rest stay waiting and are promoted on a later pass.
    }
    waiting.erase(waiting.begin(), waiting.begin() + static_cast<std::ptrdiff_t>(moved));
}

void Uploader::State::start_ready(TimePoint now) noexcept {
    const auto limit = static_cast<std::size_t>(throttle.limit());
    while (!idle.empty() && in_flight() < limit && (!retry_ready.empty() || !fresh.empty())) {
        std::deque<Job>& from = retry_ready.empty() ? fresh : retry_ready;
        Job job = std::move(from.front());
        from.pop_front();
        Slot* slot = idle.back();
        idle.pop_back();
        start(*slot, std::move(job), now);
    }
}

void Uploader::State::start(Slot& slot, Job&& job, TimePoint now) noexcept {
    auto fail_now = [&](std::string_view reason) {
        idle.push_back(&slot);
        on_failure(std::move(job), FailureClass::other, true, reason, Duration::zero(), now);
    };

    const std::shared_ptr<const Credentials> creds = credentials.current();
    if (!creds) {
        fail_now(fmt::format("no AWS credentials available (source: {})", credentials.source()));
        return;
    }
    const std::string_view body = job.batch.body();
    const Result<void, std::string> headers =
        build_signed_headers(signer, endpoint, body, *creds, WallClock::now(), slot.headers);
    if (!headers) {
        fail_now(headers.error());
        return;
    }

    const CURLcode rc1 = slot.easy.set(CURLOPT_POSTFIELDSIZE_LARGE,
                                       static_cast<curl_off_t>(body.size()));
    const CURLcode rc2 = slot.easy.set(CURLOPT_POSTFIELDS, body.data());
    const CURLcode rc3 = slot.easy.set(CURLOPT_HTTPHEADER, slot.headers.get());
    if (rc1 != CURLE_OK || rc2 != CURLE_OK || rc3 != CURLE_OK) {
        const CURLcode rc = rc1 != CURLE_OK ? rc1 : rc2 != CURLE_OK ? rc2 : rc3;
        fail_now(fmt::format("libcurl rejected a request option: {}", curl_easy_strerror(rc)));
        return;
    }
    slot.response.clear();
    slot.error_type_header.clear();
    slot.response_too_large = false;
    slot.error_buffer[0] = '\0';
    slot.started = now;
    slot.job.emplace(std::move(job));
    const CURLMcode mrc = multi.add(slot.easy);
    if (mrc != CURLM_OK) {
        Job back = std::move(*slot.job);
        slot.job.reset();
        idle.push_back(&slot);
        on_failure(std::move(back), FailureClass::other, true,
                   fmt::format("libcurl could not start the transfer: {}",
                               curl_multi_strerror(mrc)),
                   Duration::zero(), now);
        return;
    }
    counters.add(Counter::upload_requests);
}

bool Uploader::State::drain_completions() noexcept {
    bool any = false;
    while (CURLMsg* message = multi.next_message()) {
        if (message->msg != CURLMSG_DONE) {
            continue;
        }
        char* private_data = nullptr;
        if (curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &private_data) !=
                CURLE_OK ||
            private_data == nullptr) {
            continue;  // not ours: cannot happen, every handle gets CURLOPT_PRIVATE
        }
        const CURLcode result = message->data.result;
        // `message` is invalid once the handle is removed: take what is needed first.
        complete(*reinterpret_cast<Slot*>(private_data), result);
        any = true;
    }
    return any;
}

void Uploader::State::complete(Slot& slot, CURLcode result) noexcept {
    const TimePoint now = Clock::now();
    const CURLMcode mrc = multi.remove(slot.easy);
    if (mrc != CURLM_OK) {
        std::uint64_t suppressed = 0;
        if (internal_limiter.allow(now, &suppressed)) {
            logger.error("libcurl could not remove a finished transfer: {}",
                         curl_multi_strerror(mrc));
        }
    }
    Job job = std::move(*slot.job);
    slot.job.reset();
    idle.push_back(&slot);

    if (result != CURLE_OK) {
        long os_errno = 0;
        if (slot.easy.info(CURLINFO_OS_ERRNO, &os_errno) != CURLE_OK) {
            os_errno = 0;
        }
        const FailureClass failure = classify_transport_failure(result, os_errno);
        std::string reason;
        try {
            if (slot.response_too_large) {
                reason = fmt::format("response larger than {} bytes", max_response_bytes);
            } else if (slot.error_buffer[0] != '\0') {
                reason = fmt::format("{}: {}", curl_easy_strerror(result), slot.error_buffer);
            } else {
                reason = curl_easy_strerror(result);
            }
        } catch (...) {
        }
        on_failure(std::move(job), failure, transport_failure_is_retryable(result), reason,
                   Duration::zero(), now);
        return;
    }

    long status = 0;
    if (slot.easy.info(CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) {
        status = 0;
    }
    if (status >= 200 && status <= 299) {
        on_success(std::move(job), slot.started, now, slot.response);
        return;
    }
    curl_off_t retry_after_s = 0;
    if (slot.easy.info(CURLINFO_RETRY_AFTER, &retry_after_s) != CURLE_OK || retry_after_s < 0) {
        retry_after_s = 0;
    }
    const XRayError error = parse_error_response(parser, slot.response, slot.error_type_header);
    std::string reason;
    try {
        reason = fmt::format("HTTP {}", status);
        if (!error.type.empty()) {
            reason += fmt::format(" {}", error.type);
        }
        if (!error.message.empty()) {
            reason += fmt::format(": {}", error.message);
        }
    } catch (...) {
    }
    if (status == 429 || is_throttling_error(error.type)) {
        on_throttled(slot.started, now, reason);
    }
    on_failure(std::move(job), classify_http_status(status),
               http_failure_is_retryable(status, error.type), reason,
               std::chrono::seconds(retry_after_s), now);
}

void Uploader::State::on_success(Job&& job, TimePoint started, TimePoint now,
                                 std::string_view body) noexcept {
    const std::size_t count = job.batch.segment_count();
    const double seconds = seconds_between(started, now);
    const Result<void, ResponseErrc> parsed = parse_unprocessed_segments(parser, body, unprocessed);
    if (!parsed) {
        // X-Ray accepted the request; an unreadable answer cannot name any rejection.
        std::uint64_t suppressed = 0;
        if (internal_limiter.allow(now, &suppressed)) {
            logger.warn("Could not read the PutTraceSegments response ({}): {:.200}",
                        to_string(parsed.error()), body);
        }
    }
    counters.add(Counter::batches_sent);
    if (unprocessed.empty()) {
        counters.add(Counter::segments_sent, count);
        release(count);
        on_not_throttled();
        logger.info("Successfully sent batch of {} segments ({:1.3f} seconds)", count, seconds);
        return;
    }
    logger.info("Sent batch of {} segments but had {} Unprocessed segments ({:1.3f} seconds)",
                count, unprocessed.size(), seconds);

    // Match each unprocessed item to its document (by id, each document once) and sort the
    // transient ones out for a re-send.
    const auto refs = job.batch.segments();
    resend_indexes.clear();
    bool throttled = false;
    std::size_t final_items = 0;
    try {
        matched.assign(count, 0);
        for (const UnprocessedSegment& item : unprocessed) {
            std::size_t index = count;
            if (item.has_id) {
                for (std::size_t i = 0; i < count; ++i) {
                    if (matched[i] == 0 && refs[i].id_view() == item.id) {
                        index = i;
                        break;
                    }
                }
            }
            if (index < count) {
                matched[index] = 1;
            }
            throttled = throttled || unprocessed_is_throttled(item.error_code);
            const std::string_view trace_id =
                index < count ? refs[index].trace_id_view() : std::string_view();
            const std::string_view id = item.has_id ? std::string_view(item.id) : "<none>";
            if (budget != nullptr && index < count && unprocessed_is_retryable(item.error_code)) {
                resend_indexes.push_back(index);
                std::uint64_t suppressed = 0;
                if (retry_limiter.allow(now, &suppressed)) {
                    logger.warn("Unprocessed segment will be sent again: id={} trace_id={} "
                                "error_code={} message={}",
                                id, trace_id, item.error_code, item.message);
                }
                continue;
            }
            ++final_items;
            logger.error("Unprocessed segment: id={} trace_id={} error_code={} message={}", id,
                         trace_id, item.error_code, item.message);
        }
    } catch (...) {
        // Out of memory matching: whatever is not yet sorted out is final.
        final_items = unprocessed.size() - resend_indexes.size();
    }
    if (throttled) {
        on_throttled(started, now, "UnprocessedTraceSegments throttled");
    } else {
        on_not_throttled();
    }
    const std::size_t resend = resend_indexes.size();
    const std::size_t rejected = std::min(final_items, count - resend);
    counters.add(Counter::segments_sent, count - rejected - resend);
    counters.add(Counter::rejected_by_xray, rejected);
    release(count - resend);
    if (resend > 0) {
        resend_unprocessed(std::move(job), resend_indexes, now);
    }
}

void Uploader::State::resend_unprocessed(Job&& job, std::span<const std::size_t> indexes,
                                         TimePoint now) noexcept {
    const std::size_t wanted = indexes.size();
    Result<RebuiltBatch, RebuildErrc> rebuilt =
        rebuild_batch(resend_parser, job.batch, indexes, *budget);
    if (!rebuilt) {
        // Cannot happen for a body Batch built; the segments cannot be re-sent: final.
        counters.add(Counter::rejected_by_xray, wanted);
        release(wanted);
        logger.error("Could not re-send {} unprocessed segments: {}", wanted,
                     to_string(rebuilt.error()));
        return;
    }
    RebuiltBatch& out = rebuilt.value();
    if (out.lost > 0) {
        counters.add(Counter::dropped_buffer_full, out.lost);
        release(out.lost);
        logger.error("Memory limit reached: {} unprocessed segments could not be kept to be "
                     "sent again",
                     out.lost);
    }
    const std::size_t kept = out.batch.segment_count();
    if (kept == 0) {
        return;
    }
    Job retry(std::move(out.batch));
    retry.failures = job.failures;
    retry.first_failure = job.failures == 0 ? now : job.first_failure;
    if (decide_retry(retry.first_failure, now, options.retry_budget) == RetryDecision::give_up) {
        counters.add(Counter::dropped_gave_up, kept);
        release(kept);
        logger.error("Gave up on {} unprocessed segments after retrying past the retry budget",
                     kept);
        return;
    }
    const Duration delay = backoff_delay(retry.failures, options.retry_base, options.retry_cap,
                                         jitter.next_unit(), Duration::zero());
    ++retry.failures;
    retry.due = now + delay;
    try {
        waiting.push_back(std::move(retry));
    } catch (...) {
        counters.add(Counter::dropped_gave_up, kept);
        release(kept);
        logger.error("Out of memory queueing unprocessed segments for retry: {} dropped", kept);
        return;
    }
    counters.add(Counter::unprocessed_retried, kept);
}

void Uploader::State::on_throttled(TimePoint started, TimePoint now,
                                   std::string_view reason) noexcept {
    counters.add(Counter::upload_throttled);
    const int before = throttle.limit();
    if (throttle.on_throttled(started, now) == ThrottleEvent::started) {
        logger.info("X-Ray is throttling PutTraceSegments ({}): requests in flight cut from {} "
                    "to {}; they grow back as requests succeed",
                    reason, before, throttle.limit());
    }
}

void Uploader::State::on_not_throttled() noexcept {
    if (throttle.on_success() != ThrottleEvent::ended) {
        return;
    }
    const ThrottleEpisode& e = throttle.episode();
    logger.info("X-Ray throttling ended after {:.1f} s: {} requests throttled, {} succeeded; "
                "requests in flight went down to {} and are back to {}",
                seconds_between(e.started, Clock::now()), e.throttled, e.succeeded,
                e.lowest_limit, throttle.ceiling());
}

void Uploader::State::make_room() noexcept {
    if (options.backpressure != Backpressure::drop_oldest || budget == nullptr) {
        return;
    }
    const std::size_t limit = budget->limit();
    const std::size_t headroom = std::min(
        limit, options.drop_oldest_headroom > 0 ? options.drop_oldest_headroom : limit / 8);
    std::size_t evicted = 0;
    while (budget->used() + headroom > limit) {
        // The batch holding the oldest segment among those not in flight.
        const Job* oldest = nullptr;
        auto consider = [&](const auto& jobs) {
            for (const Job& job : jobs) {
                if (oldest == nullptr ||
                    job.batch.oldest_received() < oldest->batch.oldest_received()) {
                    oldest = &job;
                }
            }
        };
        consider(waiting);
        consider(retry_ready);
        consider(fresh);
        if (oldest == nullptr) {
            break;  // everything held is in flight: new segments are refused at ingest
        }
        const std::size_t count = oldest->batch.segment_count();
        auto erase_from = [&](auto& jobs) {
            for (auto it = jobs.begin(); it != jobs.end(); ++it) {
                if (&*it == oldest) {
                    jobs.erase(it);
                    return true;
                }
            }
            return false;
        };
        if (!erase_from(waiting) && !erase_from(retry_ready)) {
            (void)erase_from(fresh);
        }
        counters.add(Counter::dropped_oldest, count);
        release(count);
        evicted += count;
    }
    if (evicted == 0) {
        return;
    }
    evicted_since_log += evicted;
    std::uint64_t suppressed = 0;
    if (evict_limiter.allow(Clock::now(), &suppressed)) {
        logger.warn("Memory limit reached (using {} of {} bytes): dropped the {} oldest segments "
                    "held to make room (drop-oldest; consider increasing -m)",
                    budget->used(), limit, std::exchange(evicted_since_log, 0));
    }
}

void Uploader::State::on_failure(Job&& job, FailureClass failure, bool retryable,
                                 std::string_view reason, Duration retry_after,
                                 TimePoint now) noexcept {
    counters.add(failure_counter(failure));
    const std::size_t count = job.batch.segment_count();
    if (!retryable) {
        counters.add(Counter::rejected_request, count);
        release(count);
        try {
            log_failure(final_limiter, reason,
                        fmt::format("not retryable; {} segments rejected", count));
        } catch (...) {
        }
        return;
    }
    if (job.failures == 0) {
        job.first_failure = now;
    }
    if (decide_retry(job.first_failure, now, options.retry_budget) == RetryDecision::give_up) {
        counters.add(Counter::dropped_gave_up, count);
        release(count);
        try {
            log_failure(final_limiter, reason,
                        fmt::format("gave up after {} attempts; {} segments dropped",
                                    job.failures + 1, count));
        } catch (...) {
        }
        return;
    }
    const Duration delay = backoff_delay(job.failures, options.retry_base, options.retry_cap,
                                         jitter.next_unit(), retry_after);
    ++job.failures;
    job.due = now + delay;
    try {
        waiting.push_back(std::move(job));
    } catch (...) {
        counters.add(Counter::dropped_gave_up, count);
        release(count);
        logger.error("Out of memory queueing a batch for retry: {} segments dropped", count);
        return;
    }
    counters.add(Counter::upload_retries);
    try {
        log_failure(retry_limiter, reason,
                    fmt::format("retrying in {:.3f} s",
                                std::chrono::duration<double>(delay).count()));
    } catch (...) {
    }
}

Duration Uploader::State::next_wait(Duration max_wait, TimePoint now) const noexcept {
    Duration wait = max_wait;
    if (!idle.empty() && in_flight() < static_cast<std::size_t>(throttle.limit()) &&
        (!retry_ready.empty() || !fresh.empty())) {
        return Duration::zero();
    }
    for (const Job& job : waiting) {
        wait = std::min(wait, job.due - now);
    }
    return std::max(wait, Duration::zero());
}

void Uploader::State::do_work() noexcept {
    // Bounded: each pass either starts or finishes transfers; a few passes cover the cascade
    // of completions freeing slots for the next batches.
    for (int pass = 0; pass < 4; ++pass) {
        const TimePoint now = Clock::now();
        make_room();
        promote_due(now);
        start_ready(now);
        int running = 0;
        const CURLMcode mrc = multi.perform(&running);
        if (mrc != CURLM_OK) {
            std::uint64_t suppressed = 0;
            if (internal_limiter.allow(now, &suppressed)) {
                logger.error("curl_multi_perform failed: {}", curl_multi_strerror(mrc));
            }
            return;
        }
        if (!drain_completions()) {
            return;
        }
    }
}

Uploader::Uploader(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}

Uploader::~Uploader() = default;

std::unique_ptr<Uploader> Uploader::create(UploaderOptions options,
                                           CredentialsProvider& credentials, Counters& counters,
                                           Logger& logger, MemoryBudget* budget) {
    if (options.concurrency < 1) {
        throw StartupError(fmt::format("uploader concurrency must be at least 1, not {}",
                                       options.concurrency));
    }
    if (options.request_timeout <= std::chrono::milliseconds::zero()) {
        throw StartupError("uploader request timeout must be positive");
    }
    if (options.retry_budget < Duration::zero()) {
        throw StartupError("uploader retry budget must not be negative");
    }
    XRayTarget endpoint = make_xray_target(options.endpoint, request_path);
    std::uint64_t seed = static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
    try {
        std::random_device device;
        seed ^= (static_cast<std::uint64_t>(device()) << 32) | device();
    } catch (...) {
        // No entropy device: the clock alone still spreads jitter across daemons.
    }
    auto state = std::make_unique<State>(std::move(options), std::move(endpoint), credentials,
                                         counters, logger, budget, seed);
    state->multi = CurlMulti::create();
    const auto slots = static_cast<std::size_t>(state->options.concurrency);
    if (state->multi.set(CURLMOPT_MAXCONNECTS, static_cast<long>(slots)) != CURLM_OK) {
        throw StartupError("libcurl rejected CURLMOPT_MAXCONNECTS");
    }
    state->slots.reserve(slots);
    state->idle.reserve(slots);
    for (std::size_t i = 0; i < slots; ++i) {
        auto slot = std::make_unique<Slot>();
        slot->easy = CurlEasy::create();
        state->configure(*slot);
        state->idle.push_back(slot.get());
        state->slots.push_back(std::move(slot));
    }
    logger.debug("Using X-Ray endpoint: {} (concurrency {}, retry budget {} s, {})",
                 state->endpoint.url, slots,
                 std::chrono::duration_cast<std::chrono::seconds>(state->options.retry_budget)
                     .count(),
                 to_string(state->options.backpressure));
    return std::unique_ptr<Uploader>(new Uploader(std::move(state)));
}

void Uploader::submit(Batch&& batch) noexcept {
    if (!batch.sealed()) {
        batch.seal();  // contract says sealed; sealing here keeps the body well-formed
    }
    if (batch.empty()) {
        return;
    }
    const std::size_t count = batch.segment_count();
    try {
        state_->fresh.emplace_back(std::move(batch));
    } catch (...) {
        state_->counters.add(Counter::dropped_gave_up, count);
        state_->logger.error("Out of memory queueing a batch: {} segments dropped", count);
        return;
    }
    state_->held += count;
}

void Uploader::run_once(Duration max_wait) noexcept {
    State& s = *state_;
    s.do_work();
    const Duration wait = s.next_wait(max_wait, Clock::now());
    const CURLMcode mrc = s.multi.poll(to_poll_timeout(wait));
    if (mrc != CURLM_OK) {
        std::uint64_t suppressed = 0;
        if (s.internal_limiter.allow(Clock::now(), &suppressed)) {
            s.logger.error("curl_multi_poll failed: {}", curl_multi_strerror(mrc));
        }
    }
    s.do_work();
}

void Uploader::wakeup() noexcept {
    // Fails only on a bad handle; there is no one to tell from an arbitrary thread.
    (void)state_->multi.wakeup();
}

std::size_t Uploader::held_segments() const noexcept { return state_->held; }

int Uploader::in_flight_limit() const noexcept { return state_->throttle.limit(); }

std::size_t Uploader::abandon() noexcept {
    State& s = *state_;
    for (auto& slot : s.slots) {
        if (slot->job) {
            (void)s.multi.remove(slot->easy);
            slot->job.reset();
            s.idle.push_back(slot.get());
        }
    }
    s.fresh.clear();
    s.retry_ready.clear();
    s.waiting.clear();
    return std::exchange(s.held, 0);
}

}  // namespace xrayd
