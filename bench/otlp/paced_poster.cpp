// PacedPoster: the pacing loop on curl_multi_poll, a body buffer per transfer refreshed in place.
#include "bench/otlp/paced_poster.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <xrayd/common/startup_error.h>

namespace xrayd::bench {

namespace {

constexpr std::size_t max_answer_bytes = 64 * 1024;  // an ExportTraceServiceResponse is tiny
constexpr std::int64_t late_after_ns = 5'000'000;
constexpr int max_poll_ms = 100;

std::int64_t now_ns(clockid_t clock) noexcept {
    timespec ts{};
    (void)clock_gettime(clock, &ts);  // cannot fail for these two clocks
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// CURLOPT_WRITEFUNCTION: keeps the first max_answer_bytes of the answer. The buffer's capacity
// was reserved at creation, so append never allocates (and cannot throw) here.
std::size_t keep_answer(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    auto& answer = *static_cast<std::string*>(user);
    const std::size_t n = size * count;
    answer.append(data, std::min(n, max_answer_bytes - answer.size()));
    return n;
}

// ExportTraceServiceResponse.partial_success.rejected_spans (fields 1 and 1 of
// trace_service.proto); 0 when absent or unreadable.
std::uint64_t rejected_spans_protobuf(std::string_view answer) {
    using Wfl = google::protobuf::internal::WireFormatLite;
    google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(answer.data()),
                                              static_cast<int>(answer.size()));
    for (std::uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
        if (tag != Wfl::MakeTag(1, Wfl::WIRETYPE_LENGTH_DELIMITED)) {
            if (!Wfl::SkipField(&in, tag)) {
                return 0;
            }
            continue;
        }
        std::uint32_t length = 0;
        if (!in.ReadVarint32(&length)) {
            return 0;
        }
        const auto limit = in.PushLimit(static_cast<int>(length));
        for (std::uint32_t inner = in.ReadTag(); inner != 0; inner = in.ReadTag()) {
            std::uint64_t rejected = 0;
            if (inner == Wfl::MakeTag(1, Wfl::WIRETYPE_VARINT)) {
                return in.ReadVarint64(&rejected) ? rejected : 0;
            }
            if (!Wfl::SkipField(&in, inner)) {
                return 0;
            }
        }
        in.PopLimit(limit);
    }
    return 0;
}

// The same from an OTLP/JSON answer: {"partialSuccess":{"rejectedSpans":"3",...}} (the number
// quoted or not).
std::uint64_t rejected_spans_json(std::string_view answer) {
    constexpr std::string_view key = "\"rejectedSpans\"";
    const std::size_t at = answer.find(key);
    if (at == std::string_view::npos) {
        return 0;
    }
    std::size_t i = at + key.size();
    while (i < answer.size() && (answer[i] == ':' || answer[i] == ' ' || answer[i] == '"')) {
        ++i;
    }
    std::uint64_t value = 0;
    for (; i < answer.size() && answer[i] >= '0' && answer[i] <= '9'; ++i) {
        value = value * 10 + static_cast<std::uint64_t>(answer[i] - '0');
    }
    return value;
}

}  // namespace

struct PacedPoster::Transfer {
    CurlEasy easy;
    std::string body;    // the template's copy, refreshed per request
    std::string wire;    // its gzip form
    std::string answer;  // capacity max_answer_bytes
    bool busy = false;
};

PacedPoster::PacedPoster(const PosterOptions& options, const RequestTemplate& request)
    : options_(options), request_(request) {}

std::unique_ptr<PacedPoster> PacedPoster::create(const PosterOptions& options,
                                                 const RequestTemplate& request) {
    std::unique_ptr<PacedPoster> poster(new PacedPoster(options, request));
    const bool json = request.encoding() == BodyEncoding::json;
    if (!poster->headers_.append(json ? "Content-Type: application/json"
                                      : "Content-Type: application/x-protobuf") ||
        !poster->headers_.append("Expect:") ||  // no 100-continue round trip
        (options.gzip && !poster->headers_.append("Content-Encoding: gzip"))) {
        throw StartupError("otlp-loadgen: out of memory for the request headers");
    }
    if (options.gzip) {
        poster->gzip_ = GzipWriter::create(options.gzip_level);
        if (!poster->gzip_) {
            throw StartupError("otlp-loadgen: zlib's deflateInit2 failed");
        }
    }
    poster->multi_ = CurlMulti::create();
    const auto connections = static_cast<long>(std::max<std::size_t>(1, options.connections));
    if (poster->multi_.set(CURLMOPT_MAX_HOST_CONNECTIONS, connections) != CURLM_OK) {
        throw StartupError("otlp-loadgen: CURLMOPT_MAX_HOST_CONNECTIONS failed");
    }
    for (long i = 0; i < connections; ++i) {
        auto t = std::make_unique<Transfer>();
        t->easy = CurlEasy::create();
        t->body = request.text();
        t->answer.reserve(max_answer_bytes);
        CurlFirstError set;
        set(t->easy.set(CURLOPT_URL, poster->options_.url.c_str()));
        set(t->easy.set(CURLOPT_POST, 1L));
        set(t->easy.set(CURLOPT_HTTPHEADER, poster->headers_.get()));
        set(t->easy.set(CURLOPT_USERAGENT, "xrayd-otlp-loadgen"));
        set(t->easy.set(CURLOPT_NOSIGNAL, 1L));
        set(t->easy.set(CURLOPT_TIMEOUT_MS, options.timeout_ms));
        set(t->easy.set(CURLOPT_WRITEFUNCTION, &keep_answer));
        set(t->easy.set(CURLOPT_WRITEDATA, static_cast<void*>(&t->answer)));
        set(t->easy.set(CURLOPT_PRIVATE, static_cast<void*>(t.get())));
        if (set.code() != CURLE_OK) {
            throw StartupError(std::string("otlp-loadgen: curl_easy_setopt: ") +
                               curl_easy_strerror(set.code()));
        }
        poster->transfers_.push_back(std::move(t));
    }
    return poster;
}

PacedPoster::~PacedPoster() {
    for (const auto& t : transfers_) {
        if (t->busy) {
            (void)multi_.remove(t->easy);  // curl's rule: removed before the handle is freed
        }
    }
}

void PacedPoster::begin(Transfer& t, std::uint64_t number) {
    request_.refresh(t.body, number, static_cast<std::uint64_t>(now_ns(CLOCK_REALTIME)));
    const std::string* payload = &t.body;
    if (options_.gzip) {
        if (!gzip_.compress(t.body, t.wire)) {
            throw StartupError("otlp-loadgen: deflate failed");  // zlib's own bug: stop
        }
        payload = &t.wire;
    }
    t.answer.clear();
    CurlFirstError set;
    set(t.easy.set(CURLOPT_POSTFIELDS, payload->data()));
    set(t.easy.set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload->size())));
    if (set.code() != CURLE_OK || multi_.add(t.easy) != CURLM_OK) {
        throw StartupError("otlp-loadgen: could not start a transfer");
    }
    t.busy = true;
    ++tally_.requests;
    tally_.spans_sent += request_.spans();
    tally_.body_bytes += t.body.size();
    tally_.wire_bytes += payload->size();
}

void PacedPoster::finish(Transfer& t, CURLcode result) {
    (void)multi_.remove(t.easy);  // only fails for a handle not in the multi
    t.busy = false;
    const std::uint64_t spans = request_.spans();
    long status = 0;
    if (result != CURLE_OK || t.easy.info(CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) {
        status = 0;
    }
    ++tally_.by_status[status];
    if (status == 200) {
        const std::uint64_t rejected = std::min<std::uint64_t>(
            spans, request_.encoding() == BodyEncoding::json ? rejected_spans_json(t.answer)
                                                             : rejected_spans_protobuf(t.answer));
        tally_.spans_rejected += rejected;
        tally_.spans_accepted += spans - rejected;
        return;
    }
    if (status == 503 || status == 429) {
        tally_.spans_refused += spans;
        return;
    }
    tally_.spans_failed += spans;
    if (tally_.first_error.empty()) {
        tally_.first_error = status == 0 ? std::string(curl_easy_strerror(result))
                                         : "HTTP " + std::to_string(status) + ": " + t.answer;
    }
}

void PacedPoster::collect() {
    for (CURLMsg* message = multi_.next_message(); message != nullptr;
         message = multi_.next_message()) {
        if (message->msg != CURLMSG_DONE) {
            continue;
        }
        // Read before finish(): removing the handle frees the message.
        const CURLcode result = message->data.result;
        void* owner = nullptr;
        if (curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &owner) != CURLE_OK ||
            owner == nullptr) {
            continue;  // not one of ours: cannot happen
        }
        finish(*static_cast<Transfer*>(owner), result);
    }
}

PostTally PacedPoster::run() {
    const double per_request = static_cast<double>(request_.spans());
    const auto total = static_cast<std::uint64_t>(
        std::llround(options_.spans_per_second * options_.duration_s / per_request));
    const double interval_ns = per_request / options_.spans_per_second * 1e9;
    const std::int64_t start = now_ns(CLOCK_MONOTONIC);
    const auto due = [&](std::uint64_t number) {
        return start + static_cast<std::int64_t>(static_cast<double>(number) * interval_ns);
    };
    const auto idle = [this] {
        return std::find_if(transfers_.begin(), transfers_.end(),
                            [](const auto& t) { return !t->busy; });
    };
    std::int64_t last_begin = start;
    std::uint64_t next = 0;
    for (;;) {
        for (auto free = idle(); next < total && free != transfers_.end(); free = idle()) {
            const std::int64_t now = now_ns(CLOCK_MONOTONIC);
            const std::int64_t lag = now - due(next);
            if (lag < 0) {
                break;
            }
            tally_.late_requests += lag > late_after_ns ? 1 : 0;
            tally_.max_lag_ms = std::max(tally_.max_lag_ms, static_cast<double>(lag) / 1e6);
            begin(**free, next++);
            last_begin = now;
        }
        int running = 0;
        if (multi_.perform(&running) != CURLM_OK) {
            throw StartupError("otlp-loadgen: curl_multi_perform failed");
        }
        collect();
        const bool busy = std::any_of(transfers_.begin(), transfers_.end(),
                                      [](const auto& t) { return t->busy; });
        if (next == total && !busy) {
            break;
        }
        const bool can_begin = next < total && idle() != transfers_.end();
        // Sleep until the next request is due (when a transfer is free for it) or a transfer
        // has news; curl_multi_poll also wakes for libcurl's own timers. After collect(), so a
        // transfer that just finished is seen free.
        int wait_ms = max_poll_ms;
        if (can_begin) {
            const std::int64_t until = due(next) - now_ns(CLOCK_MONOTONIC);
            wait_ms = static_cast<int>(
                std::clamp<std::int64_t>((until + 999'999) / 1'000'000, 0, max_poll_ms));
        }
        if (multi_.poll(wait_ms) != CURLM_OK) {
            throw StartupError("otlp-loadgen: curl_multi_poll failed");
        }
    }
    const std::int64_t end = now_ns(CLOCK_MONOTONIC);
    tally_.send_window_s = static_cast<double>(last_begin - start) / 1e9;
    tally_.elapsed_s = static_cast<double>(end - start) / 1e9;
    return tally_;
}

}  // namespace xrayd::bench
