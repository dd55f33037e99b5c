// OtlpTransfers: the curl slots, signing OTLP requests, starting them, collecting the answers.
#include "otlp_transfers.h"

#include <array>
#include <utility>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/http/header_text.h>
#include <xrayd/log/remote_text.h>

namespace xrayd::otlp {
namespace {

void check_setopt(CURLcode rc, std::string_view option) {
    if (rc != CURLE_OK) {
        throw StartupError(fmt::format("libcurl rejected {}: {}", option, curl_easy_strerror(rc)));
    }
}

std::string_view content_type(OtlpEncoding encoding) noexcept {
    return encoding == OtlpEncoding::protobuf ? "application/x-protobuf" : "application/json";
}

}  // namespace

OtlpTransfers::OtlpTransfers(XRayTarget target, const TransportOptions& transport,
                             std::string_view region, std::size_t slots, Logger& logger,
                             RateLimiter& internal_errors)
    : target_(std::move(target)),
      transport_(transport),
      signer_(std::string(region), "xray"),
      logger_(logger),
      internal_errors_(internal_errors),
      multi_(CurlMulti::create()) {
    if (multi_.set(CURLMOPT_MAXCONNECTS, static_cast<long>(slots)) != CURLM_OK) {
        throw StartupError("libcurl rejected CURLMOPT_MAXCONNECTS");
    }
    slots_.reserve(slots);
    idle_.reserve(slots);
    for (std::size_t i = 0; i < slots; ++i) {
        auto slot = std::make_unique<Slot>();
        slot->easy = CurlEasy::create();
        configure(*slot);
        idle_.push_back(slot.get());
        slots_.push_back(std::move(slot));
    }
}

OtlpTransfers::~OtlpTransfers() {
    for (auto& slot : slots_) {
        if (slot->job) {
            (void)multi_.remove(slot->easy);
        }
    }
}

std::size_t OtlpTransfers::on_body(char* data, std::size_t size, std::size_t count,
                                   void* user) noexcept {
    auto* slot = static_cast<Slot*>(user);
    const std::size_t n = size * count;
    if (slot->answer.size() + n > max_answer_bytes) {
        slot->answer_too_large = true;
        return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    try {
        slot->answer.append(data, n);
    } catch (...) {
        return 0;
    }
    return n;
}

std::size_t OtlpTransfers::on_header(char* data, std::size_t size, std::size_t count,
                                     void* user) noexcept {
    auto* slot = static_cast<Slot*>(user);
    const std::size_t n = size * count;
    std::string_view line(data, n);
    if (line.starts_with("HTTP/")) {
        slot->error_type.clear();  // a new response (after a proxy CONNECT, say)
        return n;
    }
    constexpr std::string_view name = "x-amzn-errortype:";
    if (ascii_istarts_with(line, name)) {
        try {
            slot->error_type.assign(trim_header_text(line.substr(name.size())));
        } catch (...) {
            // Only the throttling check reads it; losing it is harmless.
        }
    }
    return n;
}

void OtlpTransfers::configure(Slot& slot) {
    check_setopt(apply_transport(slot.easy, transport_),
                 "the transport options (proxy, TLS, timeouts, User-Agent)");
    check_setopt(slot.easy.set(CURLOPT_URL, target_.url.c_str()), "CURLOPT_URL");
    check_setopt(slot.easy.set(CURLOPT_POST, 1L), "CURLOPT_POST");
    // X-Ray's OTLP endpoint speaks HTTP/1.1 only (otlp-and-adot.md); HTTP/2 where offered costs
    // nothing to ask for and lets one connection carry every request.
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

Result<void, std::string> OtlpTransfers::sign(Slot& slot, const OtlpJob& job,
                                              const Credentials& credentials) noexcept {
    try {
        const std::string_view type = content_type(job.encoding);
        const std::string length = std::to_string(job.body.size());
        // Content-Length is signed and sent by curl itself (CURLOPT_POSTFIELDSIZE_LARGE).
        SigningRequest request{"POST", target_.path, {}, {}, job.body};
        request.headers = {{"host", target_.host},
                           {"content-encoding", "gzip"},
                           {"content-length", length},
                           {"content-type", std::string(type)}};
        const SignedHeaders signed_headers = signer_.sign(request, credentials, WallClock::now());
        if (signed_headers.authorization.empty()) {
            return fail(std::string("request signing failed"));
        }
        std::array<std::string, 7> lines{
            fmt::format("Host: {}", target_.host),
            "Content-Encoding: gzip",
            fmt::format("Content-Type: {}", type),
            fmt::format("X-Amz-Date: {}", signed_headers.amz_date),
            fmt::format("Authorization: {}", signed_headers.authorization),
            "Expect:",  // no 100-continue round trip
            signed_headers.security_token.empty()
                ? std::string()
                : fmt::format("X-Amz-Security-Token: {}", signed_headers.security_token)};
        slot.headers.clear();
        for (const std::string& line : lines) {
            if (!line.empty() && !slot.headers.append(line.c_str())) {
                return fail(std::string("out of memory building request headers"));
            }
        }
        return {};
    } catch (...) {
        return fail(std::string("out of memory signing the request"));
    }
}

Result<void, std::string> OtlpTransfers::start(OtlpJob&& job, const Credentials& credentials,
                                               std::chrono::milliseconds timeout,
                                               TimePoint now) noexcept {
    Slot& slot = *idle_.back();
    if (auto signed_ok = sign(slot, job, credentials); !signed_ok) {
        return signed_ok;
    }
    CurlFirstError set;
    const auto timeout_ms = static_cast<long>(timeout.count());
    set(slot.easy.set(CURLOPT_TIMEOUT_MS, timeout_ms));
    set(slot.easy.set(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms));
    set(slot.easy.set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(job.body.size())));
    set(slot.easy.set(CURLOPT_POSTFIELDS, job.body.data()));
    set(slot.easy.set(CURLOPT_HTTPHEADER, slot.headers.get()));
    if (set.code() != CURLE_OK) {
        return fail(std::string(curl_easy_strerror(set.code())));
    }
    slot.answer.clear();
    slot.error_type.clear();
    slot.answer_too_large = false;
    slot.error_buffer[0] = '\0';
    slot.started = now;
    // The body's bytes do not move with the job: a std::string's heap buffer stays put.
    slot.job.emplace(std::move(job));
    const CURLMcode mrc = multi_.add(slot.easy);
    if (mrc != CURLM_OK) {
        job = std::move(*slot.job);
        slot.job.reset();
        return fail(std::string(curl_multi_strerror(mrc)));
    }
    idle_.pop_back();
    return {};
}

void OtlpTransfers::log_internal(std::string_view what, std::string_view detail) noexcept {
    std::uint64_t suppressed = 0;
    if (internal_errors_.allow(Clock::now(), &suppressed)) {
        logger_.error("{} failed (OTLP exporter): {}", what, detail);
    }
}

bool OtlpTransfers::perform() noexcept {
    int running = 0;
    const CURLMcode mrc = multi_.perform(&running);
    if (mrc != CURLM_OK) {
        log_internal("curl_multi_perform", curl_multi_strerror(mrc));
        return false;
    }
    return true;
}

void OtlpTransfers::poll(int timeout_ms) noexcept {
    if (const CURLMcode mrc = multi_.poll(timeout_ms); mrc != CURLM_OK) {
        log_internal("curl_multi_poll", curl_multi_strerror(mrc));
    }
}

void OtlpTransfers::wakeup() noexcept {
    (void)multi_.wakeup();  // fails only on a bad handle; no one to tell from any thread
}

std::optional<OtlpFinished> OtlpTransfers::next_finished() noexcept {
    while (CURLMsg* message = multi_.next_message()) {
        if (message->msg != CURLMSG_DONE) {
            continue;
        }
        char* private_data = nullptr;
        if (curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &private_data) != CURLE_OK ||
            private_data == nullptr) {
            continue;  // cannot happen: every handle gets CURLOPT_PRIVATE
        }
        const CURLcode result = message->data.result;  // before the handle is removed
        return finish(*reinterpret_cast<Slot*>(private_data), result);
    }
    return std::nullopt;
}

OtlpFinished OtlpTransfers::finish(Slot& slot, CURLcode result) noexcept {
    if (const CURLMcode mrc = multi_.remove(slot.easy); mrc != CURLM_OK) {
        log_internal("curl_multi_remove_handle", curl_multi_strerror(mrc));
    }
    OtlpFinished done;
    done.job = std::move(*slot.job);
    slot.job.reset();
    idle_.push_back(&slot);  // cannot throw: reserved for every slot
    done.started = slot.started;
    done.result = result;
    if (result == CURLE_OK) {
        if (slot.easy.info(CURLINFO_RESPONSE_CODE, &done.status) != CURLE_OK) {
            done.status = 0;
        }
        curl_off_t retry_after_s = 0;
        if (slot.easy.info(CURLINFO_RETRY_AFTER, &retry_after_s) != CURLE_OK) {
            retry_after_s = 0;
        }
        done.retry_after_s = retry_after_s;
        done.body.swap(slot.answer);
        done.error_type.swap(slot.error_type);
        return done;
    }
    if (slot.easy.info(CURLINFO_OS_ERRNO, &done.os_errno) != CURLE_OK) {
        done.os_errno = 0;
    }
    try {
        if (slot.answer_too_large) {
            done.failure = fmt::format("answer larger than {} bytes", max_answer_bytes);
        } else if (slot.error_buffer[0] != '\0') {
            done.failure =
                fmt::format("{}: {}", curl_easy_strerror(result), RemoteText{slot.error_buffer});
        } else {
            done.failure = curl_easy_strerror(result);
        }
    } catch (...) {
    }
    return done;
}

std::vector<OtlpJob> OtlpTransfers::abandon() noexcept {
    std::vector<OtlpJob> jobs;
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

}  // namespace xrayd::otlp
