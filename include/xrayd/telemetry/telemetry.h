// Telemetry: the daemon's own health records, sent to X-Ray with PutTelemetryRecords.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <xrayd/aws/credentials.h>
#include <xrayd/common/time.h>
#include <xrayd/http/transport.h>
#include <xrayd/log/logger.h>
#include <xrayd/stats/counters.h>

namespace xrayd {

// One TelemetryRecord (service-2.json): counter deltas over one period.
struct TelemetryRecord {
    WallClock::time_point timestamp{};
    std::int32_t segments_received = 0;   // datagrams_received
    std::int32_t segments_sent = 0;       // segments_sent
    std::int32_t segments_spillover = 0;  // every `dropped` counter
    std::int32_t segments_rejected = 0;   // every `rejected` counter
    std::int32_t timeout = 0;             // backend_timeout
    std::int32_t connection_refused = 0;  // backend_connection_refused
    std::int32_t http_4xx = 0;            // backend_http_4xx
    std::int32_t http_5xx = 0;            // backend_http_5xx
    std::int32_t unknown_host = 0;        // backend_unknown_host
    std::int32_t other = 0;               // backend_other
};

// The record for the counter changes from `before` to `after` (deltas, clamped to int32).
[[nodiscard]] TelemetryRecord make_telemetry_record(const CounterSnapshot& before,
                                                    const CounterSnapshot& after,
                                                    WallClock::time_point timestamp) noexcept;

// The PutTelemetryRecords body (spec §6.2): EC2InstanceId, Hostname, ResourceARN always
// present (possibly ""), Timestamp in epoch seconds with a millisecond fraction.
[[nodiscard]] std::string telemetry_request_body(const std::vector<TelemetryRecord>& records,
                                                 std::string_view instance_id,
                                                 std::string_view hostname,
                                                 std::string_view resource_arn);

struct TelemetryOptions {
    std::string endpoint;      // X-Ray base URL, e.g. "https://xray.us-east-1.amazonaws.com"
    std::string region;        // signing region
    std::string resource_arn;  // -a / ResourceARN, sent verbatim
    std::string instance_id;   // AWS_INSTANCE_ID or IMDS instance-id; "" when unknown
    std::string hostname;      // AWS_HOSTNAME or IMDS hostname; "" when unknown
    std::chrono::milliseconds period{60000};  // Go: dataCutoffIntervalSecs
    std::chrono::milliseconds connect_timeout{2000};
    std::chrono::milliseconds request_timeout{2000};  // Go's X-Ray client timeout
    // Proxy, TLS trust and User-Agent; its timeouts are replaced by the two above.
    TransportOptions transport;
};

inline constexpr std::size_t telemetry_queue_capacity = 30;    // Go: bufferSize
inline constexpr std::size_t telemetry_records_per_call = 10;  // Go: requestSize
// The least time left before the shutdown deadline for which the final call is still tried.
inline constexpr std::chrono::milliseconds min_final_call{100};

// Every `period` (and once more at stop()): turns the counter deltas since the previous
// record into a record, queues it (at most 30; the oldest is dropped, telemetry_records_dropped)
// and sends the queue 10 records per POST /TelemetryRecords, signed for "xray" like uploads
// (host, content-type, x-amzn-xray-timestamp). Records are made only once a datagram has been
// received (datagrams_received > 0), as Go does: before that, "Skipped telemetry data as no
// segments found" at Debug. A failed call stops the round: that chunk and the later ones stay
// queued for the next period ("Failed to send telemetry <k> record(s). Re-queue records. <e>"
// at Debug), the failure is classified into the backend_* counters (so it shows in the next
// record) and telemetry_send_failures. Success: telemetry_records_sent, "Send <k> telemetry
// record(s)" at Debug.
//
// Threads: start() and stop() from one control thread; tick() from that thread when the
// worker is not running (tests drive periods with it). The worker thread does the sending.
// Lifetime: `credentials`, `counters` and `logger` outlive the object.
// IMPORTANT: a CurlGlobal must exist before create() and outlive the object.
class Telemetry {
public:
    // Throws StartupError on a bad endpoint URL or when libcurl cannot be set up.
    [[nodiscard]] static std::unique_ptr<Telemetry> create(TelemetryOptions options,
                                                           CredentialsProvider& credentials,
                                                           Counters& counters, Logger& logger);
    ~Telemetry();  // stop()
    Telemetry(const Telemetry&) = delete;
    Telemetry& operator=(const Telemetry&) = delete;

    // Starts the worker thread: a tick every `period`. The counters' current values are the
    // baseline of the first record (taken at create()).
    void start();

    // Wakes the worker, which makes and sends a final record, then joins it; Debug
    // "telemetry: done!". Idempotent; noexcept. Without a running worker, runs the final tick
    // on the caller's thread.
    void stop() noexcept;

    // stop() within `deadline` (the shutdown deadline): a call in progress is aborted once the
    // deadline passes (the exchange's cancellation, noticed within 200 ms), and the final
    // call's timeout is cut to the time left; with less than min_final_call left the final
    // record is made but not sent (Debug line). So stop returns by about deadline + 1 s whatever
    // the endpoint does.
    void stop(TimePoint deadline) noexcept;

    // One period: makes the record (unless no datagram was received yet) and sends the queue.
    // `now` stamps the record. Only while the worker is not running.
    void tick(WallClock::time_point now) noexcept;

    // Records waiting to be sent. Any thread.
    [[nodiscard]] std::size_t queued() const noexcept;

private:
    struct Sender;  // src/telemetry/telemetry.cpp: the signed HTTP call
    Telemetry(TelemetryOptions options, std::unique_ptr<Sender> sender, Counters& counters,
              Logger& logger);
    void rotate(WallClock::time_point now) noexcept;
    // `timeout`: the total timeout of each call (the options' request timeout by default).
    void send_queued(std::chrono::milliseconds timeout) noexcept;
    void run() noexcept;
    // The final tick, fitted into the time left before the shutdown deadline.
    void final_tick() noexcept;

    const TelemetryOptions options_;
    std::unique_ptr<Sender> sender_;
    Counters& counters_;
    Logger& logger_;

    CounterSnapshot baseline_;
    mutable std::mutex mutex_;  // guards queue_, stop_requested_
    std::deque<TelemetryRecord> queue_;
    bool stop_requested_ = false;
    bool stopped_ = false;
    std::condition_variable wake_;
    std::thread worker_;
};

}  // namespace xrayd
