// Uploader transfers: the curl slots, starting requests and turning finished ones into outcomes.
#include "uploader_state.h"

#include <cctype>
#include <exception>
#include <string>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/log/remote_text.h>

namespace xrayd {
namespace {

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

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    auto* slot = static_cast<UploadSlot*>(user);
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
    auto* slot = static_cast<UploadSlot*>(user);
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

void Uploader::State::configure(Slot& slot) {
    // Proxy (the configured one only), TLS trust, timeouts, User-Agent, protocols, NOSIGNAL.
    check_setopt(apply_transport(slot.easy, transport),
                 "the transport options (proxy, TLS, timeouts, User-Agent)");
    check_setopt(slot.easy.set(CURLOPT_URL, endpoint.url.c_str()), "CURLOPT_URL");
    check_setopt(slot.easy.set(CURLOPT_POST, 1L), "CURLOPT_POST");
    check_setopt(slot.easy.set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS)),
                 "CURLOPT_HTTP_VERSION");
    check_setopt(slot.easy.set(CURLOPT_TCP_KEEPALIVE, 1L), "CURLOPT_TCP_KEEPALIVE");
    check_setopt(slot.easy.set(CURLOPT_WRITEFUNCTION, on_body), "CURLOPT_WRITEFUNCTION");
    check_setopt(slot.easy.set(CURLOPT_WRITEDATA, static_cast<void*>(&slot)), "CURLOPT_WRITEDATA");
    check_setopt(slot.easy.set(CURLOPT_HEADERFUNCTION, on_header), "CURLOPT_HEADERFUNCTION");
    check_setopt(slot.easy.set(CURLOPT_HEADERDATA, static_cast<void*>(&slot)),
                 "CURLOPT_HEADERDATA");
    check_setopt(slot.easy.set(CURLOPT_ERRORBUFFER, slot.error_buffer), "CURLOPT_ERRORBUFFER");
    check_setopt(slot.easy.set(CURLOPT_PRIVATE, static_cast<void*>(&slot)), "CURLOPT_PRIVATE");
}

void Uploader::State::add_slot() {
    auto slot = std::make_unique<Slot>();
    slot->easy = CurlEasy::create();
    configure(*slot);
    // Both reserve first, so the slot is never in one list and not the other.
    slots.reserve(slots.size() + 1);
    idle.reserve(slots.size() + 1);
    idle.push_back(slot.get());
    slots.push_back(std::move(slot));
}

void Uploader::State::apply_concurrency() noexcept {
    const int wanted = wanted_concurrency.load(std::memory_order_relaxed);
    if (wanted != concurrency) {
        logger.info("Upload concurrency changed from {} to {}", concurrency, wanted);
        concurrency = wanted;
        throttle.set_ceiling(wanted);
        if (multi.set(CURLMOPT_MAXCONNECTS, static_cast<long>(wanted)) != CURLM_OK) {
            logger.warn("libcurl rejected CURLMOPT_MAXCONNECTS {}; the connection cache keeps "
                        "its old size",
                        wanted);
        }
    }
    if (slots.size() != static_cast<std::size_t>(concurrency)) {
        resize_pool();
    }
}

void Uploader::State::resize_pool() noexcept {
    const auto target = static_cast<std::size_t>(concurrency);
    while (slots.size() < target) {
        try {
            add_slot();
        } catch (const std::exception& e) {
            std::uint64_t suppressed = 0;
            if (internal_limiter.allow(Clock::now(), &suppressed)) {
                logger.error("Could not add an upload slot ({} of {}): {}", slots.size(), target,
                             e.what());
            }
            return;  // tried again on the next pass
        }
    }
    // Only idle slots go; busy ones are trimmed once their transfer has finished.
    while (slots.size() > target && !idle.empty()) {
        const Slot* slot = idle.back();
        idle.pop_back();
        std::erase_if(slots, [&](const std::unique_ptr<Slot>& s) { return s.get() == slot; });
    }
}

void Uploader::State::do_work() noexcept {
    apply_concurrency();
    // Bounded: each pass either starts or finishes transfers; a few passes cover the cascade
    // of completions freeing slots for the next batches.
    for (int pass = 0; pass < 4; ++pass) {
        const TimePoint now = Clock::now();
        promote_due(now);
        start_ready(now);
        // Only then make room (drop-oldest): a batch a free slot can send right away must be
        // sent, not evicted.
        make_room();
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
        if (slots.size() > static_cast<std::size_t>(concurrency)) {
            resize_pool();  // slots freed by the completions above
        }
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

    CurlFirstError set;
    // Per transfer, so a reloaded request timeout applies from the next request on.
    const long timeout_ms = static_cast<long>(request_timeout_ms.load(std::memory_order_relaxed));
    set(slot.easy.set(CURLOPT_TIMEOUT_MS, timeout_ms));
    set(slot.easy.set(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms));
    set(slot.easy.set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size())));
    set(slot.easy.set(CURLOPT_POSTFIELDS, body.data()));
    set(slot.easy.set(CURLOPT_HTTPHEADER, slot.headers.get()));
    if (set.code() != CURLE_OK) {
        fail_now(fmt::format("libcurl rejected a request option: {}",
                             curl_easy_strerror(set.code())));
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

    if (result == CURLE_OK) {
        long status = 0;
        if (slot.easy.info(CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) {
            status = 0;
        }
        on_http_answer(slot, std::move(job), status, now);
        return;
    }
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
            // libcurl's message can quote what the peer sent (a status line, a header).
            reason = fmt::format("{}: {}", curl_easy_strerror(result),
                                 RemoteText{slot.error_buffer});
        } else {
            reason = curl_easy_strerror(result);
        }
    } catch (...) {
    }
    on_failure(std::move(job), failure, transport_failure_is_retryable(result), reason,
               Duration::zero(), now);
}

}  // namespace xrayd
