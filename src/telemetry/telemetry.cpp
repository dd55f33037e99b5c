// Telemetry records: counter deltas per period, queued and sent with PutTelemetryRecords.
#include <xrayd/telemetry/telemetry.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include <xrayd/aws/sigv4.h>
#include <xrayd/common/json_text.h>
#include <xrayd/common/thread_name.h>
#include <xrayd/http/exchange.h>
#include <xrayd/http/transport.h>
#include <xrayd/log/remote_text.h>
#include <xrayd/xray/retry_policy.h>
#include <xrayd/xray/xray_request.h>

namespace xrayd {
namespace {

constexpr std::string_view request_path = "/TelemetryRecords";
std::int32_t delta(const CounterSnapshot& before, const CounterSnapshot& after,
                   std::uint64_t (*pick)(const CounterSnapshot&)) noexcept {
    const std::uint64_t a = pick(after);
    const std::uint64_t b = pick(before);
    const std::uint64_t d = a > b ? a - b : 0;
    return static_cast<std::int32_t>(
        std::min<std::uint64_t>(d, std::numeric_limits<std::int32_t>::max()));
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

namespace {

// The transport settings of the telemetry calls.
TransportOptions transport_of(const TelemetryOptions& options) {
    TransportOptions t = options.transport;
    t.connect_timeout = options.connect_timeout;
    t.total_timeout = options.request_timeout;
    return t;
}

}  // namespace

// The signed POST /TelemetryRecords on one HttpExchange (worker thread only), framed and signed
// like an upload (make_xray_target, build_signed_headers).
struct Telemetry::Sender {
    struct Failure {
        FailureClass kind;
        std::string message;
    };

    Sender(const TelemetryOptions& opts, XRayTarget tgt, CredentialsProvider& creds)
        : transport(transport_of(opts)),
          target(std::move(tgt)),
          credentials(creds),
          signer(opts.region, "xray"),
          shutdown(Cancellation::create()) {}

    // Empty on success. `timeout`: the call's total timeout.
    [[nodiscard]] std::optional<Failure> send(const std::string& body,
                                              std::chrono::milliseconds timeout) noexcept;

    const TransportOptions transport;
    const XRayTarget target;
    CredentialsProvider& credentials;
    SigV4Signer signer;
    HttpExchange exchange;
    CurlSlist headers;  // rewritten in place by build_signed_headers in the steady state
    // Fires at the shutdown deadline (stop(deadline)): a call in progress is cut there.
    const std::shared_ptr<Cancellation> shutdown;
};

std::optional<Telemetry::Sender::Failure> Telemetry::Sender::send(
    const std::string& body, std::chrono::milliseconds timeout) noexcept {
    try {
        const std::shared_ptr<const Credentials> creds = credentials.current();
        if (!creds) {
            return Failure{
                FailureClass::other,
                fmt::format("no AWS credentials available (source: {})", credentials.source())};
        }
        auto signed_headers =
            build_signed_headers(signer, target, body, *creds, WallClock::now(), headers);
        if (!signed_headers) {
            return Failure{FailureClass::other, signed_headers.error()};
        }
        TransportOptions call_transport = transport;
        call_transport.total_timeout = timeout;
        ExchangeRequest request;
        request.method = "POST";
        request.url = target.url;
        request.headers = &headers;
        request.body = body;  // the length build_signed_headers signed
        request.transport = &call_transport;
        auto answer = exchange.perform(request, shutdown.get());
        if (!answer) {
            const HttpError& e = answer.error();
            const FailureClass kind = e.curl_code == CURLE_OK
                                          ? FailureClass::other
                                          : classify_transport_failure(e.curl_code, e.os_errno);
            return Failure{kind, fmt::format("{}", RemoteText{e.message})};
        }
        const long status = answer.value().status;
        if (status < 200 || status > 299) {
            return Failure{
                classify_http_status(status),
                fmt::format("HTTP {}: {}", status, RemoteText{answer.value().body, 200})};
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
    XRayTarget target = make_xray_target(options.endpoint, request_path);
    auto telemetry =
        std::unique_ptr<Telemetry>(new Telemetry(std::move(options), nullptr, counters, logger));
    telemetry->sender_ =
        std::make_unique<Sender>(telemetry->options_, std::move(target), credentials);
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

void Telemetry::send_queued(std::chrono::milliseconds timeout) noexcept {
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
            failure =
                sender_->send(telemetry_request_body(chunk, options_.instance_id, options_.hostname,
                                                     options_.resource_arn),
                              timeout);
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
    send_queued(options_.request_timeout);
}

void Telemetry::final_tick() noexcept {
    rotate(WallClock::now());
    // The sender's shutdown Cancellation holds the deadline stop(deadline) gave: a call in
    // progress is cut there, and the final one is fitted into the time left.
    const std::optional<TimePoint> deadline = sender_->shutdown->deadline();
    std::chrono::milliseconds timeout = options_.request_timeout;
    if (deadline) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
        if (left < min_final_call) {
            logger_.debug("Not sending the final telemetry record(s): the shutdown deadline "
                          "leaves {} ms",
                          std::max<std::int64_t>(left.count(), 0));
            return;
        }
        timeout = std::min(timeout, left);
    }
    send_queued(timeout);
}

std::size_t Telemetry::queued() const noexcept {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

void Telemetry::start() {
    if (worker_.joinable() || stopped_) {
        return;
    }
    worker_ = std::thread([this] {
        name_this_thread("xrayd-telemetry");
        run();
    });
}

void Telemetry::run() noexcept {
    std::unique_lock lock(mutex_);
    for (;;) {
        const bool stop = wake_.wait_for(lock, options_.period, [this] { return stop_requested_; });
        lock.unlock();
        if (stop) {
            final_tick();
            logger_.debug("telemetry: done!");
            return;
        }
        tick(WallClock::now());
        lock.lock();
    }
}

void Telemetry::stop(TimePoint deadline) noexcept {
    sender_->shutdown->cancel_at(deadline);
    stop();
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
    final_tick();
    logger_.debug("telemetry: done!");
}

}  // namespace xrayd
