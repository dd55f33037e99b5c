// TransferPool: the curl slots, starting signed requests and collecting finished ones.
#include "transfer_pool.h"

#include <exception>
#include <utility>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>

namespace xrayd {
namespace {

void check_setopt(CURLcode rc, std::string_view option) {
    if (rc != CURLE_OK) {
        throw StartupError(fmt::format("libcurl rejected {}: {}", option, curl_easy_strerror(rc)));
    }
}

}  // namespace

TransferPool::TransferPool(XRayTarget target, const TransportOptions& transport,
                           std::string_view region, std::size_t slots, Logger& logger,
                           RateLimiter& internal_errors)
    : target_(std::move(target)),
      transport_(transport),
      signer_(std::string(region), "xray"),
      logger_(logger),
      internal_errors_(internal_errors),
      multi_(CurlMulti::create()) {
    if (!set_max_connects(slots)) {
        throw StartupError("libcurl rejected CURLMOPT_MAXCONNECTS");
    }
    for (std::size_t i = 0; i < slots; ++i) {
        add_slot();
    }
}

TransferPool::~TransferPool() {
    for (auto& slot : slots_) {
        if (slot->job) {
            (void)multi_.remove(slot->easy);
        }
    }
}

void TransferPool::configure(Slot& slot) {
    // Proxy (the configured one only), TLS trust, timeouts, User-Agent, protocols, NOSIGNAL.
    check_setopt(apply_transport(slot.easy, transport_),
                 "the transport options (proxy, TLS, timeouts, User-Agent)");
    check_setopt(slot.easy.set(CURLOPT_URL, target_.url.c_str()), "CURLOPT_URL");
    check_setopt(slot.easy.set(CURLOPT_POST, 1L), "CURLOPT_POST");
    check_setopt(slot.easy.set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS)),
                 "CURLOPT_HTTP_VERSION");
    check_setopt(slot.easy.set(CURLOPT_TCP_KEEPALIVE, 1L), "CURLOPT_TCP_KEEPALIVE");
    check_setopt(slot.capture.attach(slot.easy), "the answer's callbacks and error buffer");
    check_setopt(slot.easy.set(CURLOPT_PRIVATE, static_cast<void*>(&slot)), "CURLOPT_PRIVATE");
}

void TransferPool::add_slot() {
    auto slot = std::make_unique<Slot>();
    slot->easy = CurlEasy::create();
    configure(*slot);
    // Both reserve first, so the slot is never in one list and not the other.
    slots_.reserve(slots_.size() + 1);
    idle_.reserve(slots_.size() + 1);
    idle_.push_back(slot.get());
    slots_.push_back(std::move(slot));
}

void TransferPool::resize(std::size_t target) noexcept {
    while (slots_.size() < target) {
        try {
            add_slot();
        } catch (const std::exception& e) {
            std::uint64_t suppressed = 0;
            if (internal_errors_.allow(Clock::now(), &suppressed)) {
                logger_.error("Could not add an upload slot ({} of {}): {}", slots_.size(), target,
                              e.what());
            }
            return;  // tried again on the next call
        }
    }
    // Only idle slots go; busy ones are trimmed once their transfer has finished.
    while (slots_.size() > target && !idle_.empty()) {
        const Slot* slot = idle_.back();
        idle_.pop_back();
        std::erase_if(slots_, [&](const std::unique_ptr<Slot>& s) { return s.get() == slot; });
    }
}

bool TransferPool::set_max_connects(std::size_t connections) noexcept {
    return multi_.set(CURLMOPT_MAXCONNECTS, static_cast<long>(connections)) == CURLM_OK;
}

Result<void, std::string> TransferPool::start(UploadJob&& job, const Credentials& credentials,
                                              std::chrono::milliseconds timeout,
                                              TimePoint now) noexcept {
    Slot& slot = *idle_.back();
    const std::string_view body = job.batch.body();
    Result<void, std::string> headers =
        build_signed_headers(signer_, target_, body, credentials, WallClock::now(), slot.headers);
    if (!headers) {
        return headers;
    }
    CurlFirstError set;
    // Per transfer, so a reloaded request timeout applies from the next request on.
    const auto timeout_ms = static_cast<long>(timeout.count());
    set(slot.easy.set(CURLOPT_TIMEOUT_MS, timeout_ms));
    set(slot.easy.set(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms));
    set(slot.easy.set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size())));
    set(slot.easy.set(CURLOPT_POSTFIELDS, body.data()));
    set(slot.easy.set(CURLOPT_HTTPHEADER, slot.headers.get()));
    try {
        if (set.code() != CURLE_OK) {
            return fail(fmt::format("libcurl rejected a request option: {}",
                                    curl_easy_strerror(set.code())));
        }
        slot.capture.reset();
        slot.started = now;
        slot.job.emplace(std::move(job));
        const CURLMcode mrc = multi_.add(slot.easy);
        if (mrc != CURLM_OK) {
            job = std::move(*slot.job);
            slot.job.reset();
            return fail(
                fmt::format("libcurl could not start the transfer: {}", curl_multi_strerror(mrc)));
        }
    } catch (...) {
        // Formatting a reason ran out of memory; the job is back in `job` (emplace cannot
        // throw: UploadJob's move is noexcept).
        return fail(std::string());
    }
    idle_.pop_back();
    return {};
}

bool TransferPool::perform() noexcept {
    int running = 0;
    const CURLMcode mrc = multi_.perform(&running);
    if (mrc == CURLM_OK) {
        return true;
    }
    std::uint64_t suppressed = 0;
    if (internal_errors_.allow(Clock::now(), &suppressed)) {
        logger_.error("curl_multi_perform failed: {}", curl_multi_strerror(mrc));
    }
    return false;
}

void TransferPool::poll(int timeout_ms) noexcept {
    const CURLMcode mrc = multi_.poll(timeout_ms);
    if (mrc != CURLM_OK) {
        std::uint64_t suppressed = 0;
        if (internal_errors_.allow(Clock::now(), &suppressed)) {
            logger_.error("curl_multi_poll failed: {}", curl_multi_strerror(mrc));
        }
    }
}

void TransferPool::wakeup() noexcept {
    // Fails only on a bad handle; there is no one to tell from an arbitrary thread.
    (void)multi_.wakeup();
}

std::optional<FinishedTransfer> TransferPool::next_finished() noexcept {
    while (CURLMsg* message = multi_.next_message()) {
        if (message->msg != CURLMSG_DONE) {
            continue;
        }
        char* private_data = nullptr;
        if (curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &private_data) != CURLE_OK ||
            private_data == nullptr) {
            continue;  // not ours: cannot happen, every handle gets CURLOPT_PRIVATE
        }
        const CURLcode result = message->data.result;
        // `message` is invalid once the handle is removed: take what is needed first.
        return finish(*reinterpret_cast<Slot*>(private_data), result);
    }
    return std::nullopt;
}

FinishedTransfer TransferPool::finish(Slot& slot, CURLcode result) noexcept {
    const TimePoint now = Clock::now();
    const CURLMcode mrc = multi_.remove(slot.easy);
    if (mrc != CURLM_OK) {
        std::uint64_t suppressed = 0;
        if (internal_errors_.allow(now, &suppressed)) {
            logger_.error("libcurl could not remove a finished transfer: {}",
                          curl_multi_strerror(mrc));
        }
    }
    FinishedTransfer done{std::move(*slot.job)};
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

std::vector<UploadJob> TransferPool::abandon() noexcept {
    std::vector<UploadJob> jobs;
    for (auto& slot : slots_) {
        if (slot->job) {
            (void)multi_.remove(slot->easy);
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

}  // namespace xrayd
