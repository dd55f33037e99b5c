// Telemetry records: counter deltas per period, queued and sent with PutTelemetryRecords.
#include <xrayd/telemetry/telemetry.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <limits>
#include <utility>

#include <xrayd/aws/sigv4.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/http/curl.h>
#include <xrayd/proxy/upstream_url.h>
#include <xrayd/upload/retry_policy.h>

namespace xrayd {
namespace {

constexpr std::string_view request_path = "/TelemetryRecords";
constexpr std::size_t max_response_bytes = 64 * 1024;

std::int32_t delta(const CounterSnapshot& before, const CounterSnapshot& after,
                   std::uint64_t (*pick)(const CounterSnapshot&)) noexcept {
    const std::uint64_t a = pick(after);
    const std::uint64_t b = pick(before);
    const std::uint64_t d = a > b ? a - b : 0;
    return static_cast<std::int32_t>(
        std::min<std::uint64_t>(d, std::numeric_limits<std::int32_t>::max()));
}

void append_json_string(std::string& out, std::string_view text) {
    out += '"';
    for (const char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
                } else {
                    out += c;
                }
        }
    }
    out += '"';
}

// Unix seconds with 9 decimals, as X-Amzn-Xray-Timestamp wants.
std::string xray_timestamp(WallClock::time_point now) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch());
    return fmt::format("{}.{:09}", ns.count() / 1'000'000'000, ns.count() % 1'000'000'000);
}

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    auto* body = static_cast<std::string*>(user);
    const std::size_t n = size * count;
    if (body->size() + n > max_response_bytes) {
        return 0;
    }
    try {
        body->append(data, n);
    } catch (...) {
        return 0;
    }
    return n;
}

}  // namespace

TelemetryRecord make_telemetry_record(const CounterSnapshot& before, const CounterSnapshot& after,
                                      WallClock::time_point timestamp) noexcept {
    TelemetryRecord r;
    r.timestamp = timestamp;
    r.segments_received = delta(
        before, after, [](const CounterSnapshot& s) { return s[Counter::datagrams_received]; });
    r.segments_sent =
        delta(before, after, [](const CounterSnapshot& s) { return s[Counter::segments_sent]; });
    r.segments_spillover = delta(
        before, after, [](const CounterSnapshot& s) { return s.total(CounterKind::dropped); });
    r.segments_rejected = delta(
        before, after, [](const CounterSnapshot& s) { return s.total(CounterKind::rejected); });
    r.timeout =
        delta(before, after, [](const CounterSnapshot& s) { return s[Counter::backend_timeout]; });
    r.connection_refused = delta(before, after, [](const CounterSnapshot& s) {
        return s[Counter::backend_connection_refused];
    });
    r.http_4xx =
        delta(before, after, [](const CounterSnapshot& s) { return s[Counter::backend_http_4xx]; });
    r.http_5xx =
        delta(before, after, [](const CounterSnapshot& s) { return s[Counter::backend_http_5xx]; });
    r.unknown_host = delta(
        before, after, [](const CounterSnapshot& s) { return s[Counter::backend_unknown_host]; });
    r.other =
        delta(before, after, [](const CounterSnapshot& s) { return s[Counter::backend_other]; });
    return r;
}

std::string telemetry_request_body(const std::vector<TelemetryRecord>& records,
                                   std::string_view instance_id, std::string_view hostname,
                                   std::string_view resource_arn) {
    std::string out;
    out.reserve(64 + records.size() * 320);
    out += R"({"EC2InstanceId":)";
    append_json_string(out, instance_id);
    out += R"(,"Hostname":)";
    append_json_string(out, hostname);
    out += R"(,"ResourceARN":)";
    append_json_string(out, resource_arn);
    out += R"(,"TelemetryRecords":[)";
    bool first = true;
    for (const TelemetryRecord& r : records) {
        if (!first) {
            out += ',';
        }
        first = false;
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(r.timestamp.time_since_epoch())
                .count();
        fmt::format_to(std::back_inserter(out),
                       R"({{"Timestamp":{}.{:03},"SegmentsReceivedCount":{},)"
                       R"("SegmentsSentCount":{},"SegmentsSpilloverCount":{},)"
                       R"("SegmentsRejectedCount":{},"BackendConnectionErrors":{{)"
                       R"("TimeoutCount":{},"ConnectionRefusedCount":{},"HTTPCode4XXCount":{},)"
                       R"("HTTPCode5XXCount":{},"UnknownHostCount":{},"OtherCount":{}}}}})",
                       ms / 1000, ms % 1000, r.segments_received, r.segments_sent,
                       r.segments_spillover, r.segments_rejected, r.timeout, r.connection_refused,
                       r.http_4xx, r.http_5xx, r.unknown_host, r.other);
    }
    out += "]}";
    return out;
}

// The signed POST /TelemetryRecords, on one reusable easy handle (worker thread only).
struct Telemetry::Sender {
    struct Failure {
        FailureClass kind;
        std::string message;
    };

    Sender(const TelemetryOptions& opts, UpstreamUrl up, CredentialsProvider& creds)
        : options(opts),
          upstream(std::move(up)),
          credentials(creds),
          signer(opts.region, "xray"),
          easy(CurlEasy::create()) {}

    // Empty on success.
    [[nodiscard]] std::optional<Failure> send(const std::string& body) noexcept;

    const TelemetryOptions& options;
    const UpstreamUrl upstream;
    CredentialsProvider& credentials;
    SigV4Signer signer;
    CurlEasy easy;
};

std::optional<Telemetry::Sender::Failure> Telemetry::Sender::send(
    const std::string& body) noexcept {
    try {
        const std::shared_ptr<const Credentials> creds = credentials.current();
        if (!creds) {
            return Failure{
                FailureClass::other,
                fmt::format("no AWS credentials available (source: {})", credentials.source())};
        }
        const WallClock::time_point now = WallClock::now();
        const std::string timestamp = xray_timestamp(now);
        const std::string path = upstream.base_path + std::string(request_path);
        SigningRequest request;
        request.method = "POST";
        request.path = path;
        request.headers = {{"host", upstream.host},
                           {"content-type", "application/json"},
                           {"x-amzn-xray-timestamp", timestamp}};
        request.payload = body;
        const SignedHeaders signature = signer.sign(request, *creds, now);
        if (signature.authorization.empty()) {
            return Failure{FailureClass::other, "request signing failed"};
        }
        CurlSlist headers;
        bool ok =
            headers.append(fmt::format("Host: {}", upstream.host).c_str()) &&
            headers.append("Content-Type: application/json") &&
            headers.append(fmt::format("X-Amz-Date: {}", signature.amz_date).c_str()) &&
            headers.append(fmt::format("X-Amzn-Xray-Timestamp: {}", timestamp).c_str()) &&
            headers.append(fmt::format("Authorization: {}", signature.authorization).c_str()) &&
            headers.append("Expect:");
        if (ok && !signature.security_token.empty()) {
            ok = headers.append(
                fmt::format("X-Amz-Security-Token: {}", signature.security_token).c_str());
        }
        if (!ok) {
            return Failure{FailureClass::other, "out of memory building request headers"};
        }
        const std::string url = upstream.origin + path;
        std::string response;
        char error_buffer[CURL_ERROR_SIZE] = {};
        curl_easy_reset(easy.get());
        CURLcode rc = CURLE_OK;
        const auto set = [&](CURLcode r) {
            if (rc == CURLE_OK) {
                rc = r;
            }
        };
        set(easy.set(CURLOPT_URL, url.c_str()));
        set(easy.set(CURLOPT_ERRORBUFFER, error_buffer));
        set(easy.set(CURLOPT_NOSIGNAL, 1L));
        set(easy.set(CURLOPT_HTTPHEADER, headers.get()));
        set(easy.set(CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options.connect_timeout.count())));
        set(easy.set(CURLOPT_TIMEOUT_MS, static_cast<long>(options.request_timeout.count())));
        set(easy.set(CURLOPT_PROXY, options.proxy.c_str()));
        if (!options.proxy.empty() && !options.no_proxy.empty()) {
            set(easy.set(CURLOPT_NOPROXY, options.no_proxy.c_str()));
        }
        if (!options.ca_bundle.empty()) {
            set(easy.set(CURLOPT_CAINFO, options.ca_bundle.c_str()));
        }
        if (options.no_verify_ssl) {
            set(easy.set(CURLOPT_SSL_VERIFYPEER, 0L));
            set(easy.set(CURLOPT_SSL_VERIFYHOST, 0L));
        }
        if (!options.user_agent.empty()) {
            set(easy.set(CURLOPT_USERAGENT, options.user_agent.c_str()));
        }
        set(easy.set(CURLOPT_PROTOCOLS_STR, "http,https"));
        set(easy.set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size())));
        set(easy.set(CURLOPT_POSTFIELDS, body.data()));
        set(easy.set(CURLOPT_WRITEFUNCTION, &on_body));
        set(easy.set(CURLOPT_WRITEDATA, &response));
        if (rc == CURLE_OK) {
            rc = curl_easy_perform(easy.get());
        }
        long os_errno = 0;
        long status = 0;
        if (easy.info(CURLINFO_OS_ERRNO, &os_errno) != CURLE_OK) {
            os_errno = 0;
        }
        if (rc == CURLE_OK && easy.info(CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) {
            status = 0;
        }
        // Nothing of this call may point into this stack frame once it returns.
        (void)easy.set(CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
        (void)easy.set(CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
        (void)easy.set(CURLOPT_WRITEDATA, static_cast<void*>(nullptr));
        if (rc != CURLE_OK) {
            std::string message = curl_easy_strerror(rc);
            if (error_buffer[0] != '\0') {
                message += fmt::format(": {}", error_buffer);
            }
            return Failure{classify_transport_failure(rc, os_errno), std::move(message)};
        }
        if (status < 200 || status > 299) {
            return Failure{classify_http_status(status),
                           fmt::format("HTTP {}: {:.200}", status, response)};
        }
        return std::nullopt;
    } catch (...) {
        return Failure{FailureClass::other, "out of memory"};
    }
}

Telemetry::Telemetry(TelemetryOptions options, std::unique_ptr<Sender> sender, Counters& counters,
                     Logger& logger)
    : options_(std::move(options)),
      sender_(std::move(sender)),
      counters_(counters),
      logger_(logger),
      baseline_(counters.snapshot()) {}

std::unique_ptr<Telemetry> Telemetry::create(TelemetryOptions options,
                                             CredentialsProvider& credentials, Counters& counters,
                                             Logger& logger) {
    UpstreamUrl upstream = parse_upstream_url(options.endpoint);
    auto telemetry =
        std::unique_ptr<Telemetry>(new Telemetry(std::move(options), nullptr, counters, logger));
    // The sender borrows the options owned by the Telemetry object.
    telemetry->sender_ =
        std::make_unique<Sender>(telemetry->options_, std::move(upstream), credentials);
    return telemetry;
}

Telemetry::~Telemetry() {
    stop();
}

void Telemetry::rotate(WallClock::time_point now) noexcept {
    const CounterSnapshot current = counters_.snapshot();
    const TelemetryRecord record = make_telemetry_record(baseline_, current, now);
    baseline_ = current;
    if (current[Counter::datagrams_received] == 0) {
        logger_.debug("Skipped telemetry data as no segments found");
        return;
    }
    std::lock_guard lock(mutex_);
    if (queue_.size() >= telemetry_queue_capacity) {
        queue_.pop_front();
        counters_.add(Counter::telemetry_records_dropped);
        logger_.debug("Telemetry Buffers truncated");
    }
    try {
        queue_.push_back(record);
    } catch (...) {
        counters_.add(Counter::telemetry_records_dropped);
    }
}

void Telemetry::send_queued() noexcept {
    for (;;) {
        std::vector<TelemetryRecord> chunk;
        try {
            std::lock_guard lock(mutex_);
            const std::size_t n = std::min(queue_.size(), telemetry_records_per_call);
            chunk.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        } catch (...) {
            return;
        }
        if (chunk.empty()) {
            return;
        }
        std::optional<Sender::Failure> failure;
        try {
            failure = sender_->send(telemetry_request_body(
                chunk, options_.instance_id, options_.hostname, options_.resource_arn));
        } catch (...) {
            failure = Sender::Failure{FailureClass::other, "out of memory"};
        }
        if (failure) {
            // The chunk stays at the head of the queue for the next period.
            counters_.add(failure_counter(failure->kind));
            counters_.add(Counter::telemetry_send_failures);
            logger_.debug("Failed to send telemetry {} record(s). Re-queue records. {}",
                          chunk.size(), failure->message);
            return;
        }
        {
            // Only this thread removes records, and additions go to the back: the chunk is
            // still the head of the queue.
            std::lock_guard lock(mutex_);
            const std::size_t n = std::min(chunk.size(), queue_.size());
            queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        }
        counters_.add(Counter::telemetry_records_sent, chunk.size());
        logger_.debug("Send {} telemetry record(s)", chunk.size());
    }
}

void Telemetry::tick(WallClock::time_point now) noexcept {
    rotate(now);
    send_queued();
}

std::size_t Telemetry::queued() const noexcept {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

void Telemetry::start() {
    if (worker_.joinable() || stopped_) {
        return;
    }
    worker_ = std::thread([this] { run(); });
}

void Telemetry::run() noexcept {
    std::unique_lock lock(mutex_);
    for (;;) {
        const bool stop = wake_.wait_for(lock, options_.period, [this] { return stop_requested_; });
        lock.unlock();
        tick(WallClock::now());
        if (stop) {
            logger_.debug("telemetry: done!");
            return;
        }
        lock.lock();
    }
}

void Telemetry::stop() noexcept {
    if (stopped_) {
        return;
    }
    stopped_ = true;
    if (worker_.joinable()) {
        {
            std::lock_guard lock(mutex_);
            stop_requested_ = true;
        }
        wake_.notify_all();
        worker_.join();
        return;
    }
    tick(WallClock::now());
    logger_.debug("telemetry: done!");
}

}  // namespace xrayd
