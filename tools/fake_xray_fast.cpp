// fake-xray-fast: a fast stand-in for the X-Ray API that counts bench segments exactly.
//
// It answers POST /TraceSegments with {"UnprocessedTraceSegments":[]} and, for every document in
// the body, records the sequence number xrayd-loadgen put in its `id` (16 hex digits) in a bitmap
// (so loss and duplicates are exact) and the latency now - `annotations.bench_sent_ns`
// (CLOCK_MONOTONIC, same host) in a log-linear histogram. It answers POST /v1/traces (xrayd's
// OTLP exporter, issue #16) with 200, an empty ExportTraceServiceResponse, counting requests,
// body bytes and gzip bodies without keeping or reading the body. It does NOT verify signatures:
// tools/fake_xray.py and the integration tests do that.
//
// One libmicrohttpd thread (epoll) serves everything, so the counters need no locks. Control:
//   GET /stats[?from=A&to=B]  counters, latency percentiles since the last reset, and the unique,
//                             duplicate and missing counts for sequence numbers in [A, B)
//   GET /reset                clears the latency histogram and the since-reset counters
// Usage: fake-xray-fast [--port 0] [--bind 127.0.0.1] [--max-lifetime 600] [--cpu N]
// When ready it prints one JSON line: {"port": N, "scheme": "http"}; it exits after
// --max-lifetime seconds or on SIGTERM/SIGINT.
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

namespace {

constexpr std::uint64_t max_seq_default = std::uint64_t{1} << 32;
constexpr std::string_view segments_reply = "{\"UnprocessedTraceSegments\":[]}";
constexpr std::string_view empty_reply = "{}";
constexpr std::string_view otlp_path = "/v1/traces";

std::int64_t monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Microsecond histogram: exact below 2048 us, then 1024 sub-buckets per power of two (< 0.1 %).
class LatencyHistogram {
public:
    void record(std::uint64_t us) noexcept {
        ++buckets_[index(us)];
        ++count_;
        max_ = std::max(max_, us);
    }
    void clear() noexcept {
        buckets_.fill(0);
        count_ = 0;
        max_ = 0;
    }
    [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
    [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
    [[nodiscard]] std::uint64_t percentile(double p) const noexcept {
        if (count_ == 0) {
            return 0;
        }
        const auto rank = static_cast<std::uint64_t>(p / 100.0 * static_cast<double>(count_ - 1));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen > rank) {
                return lower_bound(i);
            }
        }
        return max_;
    }

private:
    static constexpr std::size_t linear = 2048;
    static constexpr int sub_bits = 10;
    static constexpr std::size_t size = linear + (64 - 11) * (std::size_t{1} << sub_bits);

    static std::size_t index(std::uint64_t v) noexcept {
        if (v < linear) {
            return static_cast<std::size_t>(v);
        }
        const int e = 63 - std::countl_zero(v);  // >= 11
        const std::uint64_t sub = (v >> (e - sub_bits)) & ((std::uint64_t{1} << sub_bits) - 1);
        return linear + static_cast<std::size_t>(e - 11) * (std::size_t{1} << sub_bits) +
               static_cast<std::size_t>(sub);
    }
    static std::uint64_t lower_bound(std::size_t i) noexcept {
        if (i < linear) {
            return i;
        }
        const std::size_t k = i - linear;
        const int e = static_cast<int>(k >> sub_bits) + 11;
        const std::uint64_t sub = k & ((std::size_t{1} << sub_bits) - 1);
        return (std::uint64_t{1} << e) | (sub << (e - sub_bits));
    }

    std::array<std::uint64_t, size> buckets_{};
    std::uint64_t count_ = 0;
    std::uint64_t max_ = 0;
};

// Bit per sequence number, grown on demand up to a cap.
class SeqBitmap {
public:
    explicit SeqBitmap(std::uint64_t cap) : cap_(cap) {}
    // Returns false when `seq` was already set.
    bool set(std::uint64_t seq) {
        const std::size_t word = static_cast<std::size_t>(seq >> 6);
        if (word >= words_.size()) {
            words_.resize(std::max<std::size_t>(word + 1, words_.size() * 2), 0);
        }
        const std::uint64_t bit = std::uint64_t{1} << (seq & 63);
        const bool fresh = (words_[word] & bit) == 0;
        words_[word] |= bit;
        return fresh;
    }
    [[nodiscard]] std::uint64_t count(std::uint64_t from, std::uint64_t to) const noexcept {
        std::uint64_t n = 0;
        for (std::uint64_t s = from; s < to;) {
            const std::size_t word = static_cast<std::size_t>(s >> 6);
            if (word >= words_.size()) {
                break;
            }
            if ((s & 63) == 0 && to - s >= 64) {
                n += static_cast<std::uint64_t>(std::popcount(words_[word]));
                s += 64;
            } else {
                n += (words_[word] >> (s & 63)) & 1;
                ++s;
            }
        }
        return n;
    }
    [[nodiscard]] std::uint64_t cap() const noexcept { return cap_; }

private:
    std::uint64_t cap_;
    std::vector<std::uint64_t> words_;
};

struct Stats {
    std::uint64_t requests = 0;
    std::uint64_t segment_requests = 0;
    std::uint64_t documents = 0;
    std::uint64_t unique = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t bad_documents = 0;  // not parseable, or no bench id / timestamp
    std::uint64_t bad_requests = 0;   // body not {"TraceSegmentDocuments":[...]}
    std::uint64_t body_bytes = 0;
    std::uint64_t otlp_requests = 0;
    std::uint64_t otlp_body_bytes = 0;  // as received (compressed or not)
    std::uint64_t otlp_gzip_requests = 0;
    std::uint64_t requests_since_reset = 0;
    std::uint64_t otlp_requests_since_reset = 0;
    std::uint64_t documents_since_reset = 0;
    std::int64_t reset_at_ns = 0;
};

class Endpoint {
public:
    explicit Endpoint(std::uint64_t max_seq) : seen_(max_seq), dup_(max_seq) {
        stats_.reset_at_ns = monotonic_ns();
    }

    // Parses one PutTraceSegments body; `body` must have SIMDJSON_PADDING spare capacity.
    void ingest(std::string& body) {
        ++stats_.segment_requests;
        stats_.body_bytes += body.size();
        body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
        simdjson::ondemand::document doc;
        if (outer_.iterate(body.data(), body.size(), body.capacity()).get(doc) !=
            simdjson::SUCCESS) {
            ++stats_.bad_requests;
            return;
        }
        simdjson::ondemand::array docs;
        if (doc["TraceSegmentDocuments"].get_array().get(docs) != simdjson::SUCCESS) {
            ++stats_.bad_requests;
            return;
        }
        const std::int64_t now = monotonic_ns();
        for (auto item : docs) {
            std::string_view text;
            if (item.get_string().get(text) != simdjson::SUCCESS) {
                ++stats_.bad_documents;
                continue;
            }
            record_document(text, now);
        }
    }

    std::string stats_json(std::uint64_t from, std::uint64_t to) const {
        const std::uint64_t unique = seen_.count(from, to);
        const std::uint64_t dups = dup_.count(from, to);
        const double since = static_cast<double>(monotonic_ns() - stats_.reset_at_ns) / 1e9;
        char out[1536];
        std::snprintf(
            out, sizeof out,
            "{\"requests\":%" PRIu64 ",\"segment_requests\":%" PRIu64 ",\"documents\":%" PRIu64
            ",\"unique\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"bad_documents\":%" PRIu64
            ",\"bad_requests\":%" PRIu64 ",\"body_bytes\":%" PRIu64 ",\"otlp_requests\":%" PRIu64
            ",\"otlp_body_bytes\":%" PRIu64 ",\"otlp_gzip_requests\":%" PRIu64
            ",\"range\":{\"from\":%" PRIu64 ",\"to\":%" PRIu64 ",\"unique\":%" PRIu64
            ",\"duplicates\":%" PRIu64 ",\"missing\":%" PRIu64 "},"
            "\"since_reset\":{\"seconds\":%.3f,\"requests\":%" PRIu64 ",\"documents\":%" PRIu64
            ",\"otlp_requests\":%" PRIu64 ",\"latency_us\":{\"count\":%" PRIu64 ",\"p50\":%" PRIu64
            ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64
            "}}}\n",
            stats_.requests, stats_.segment_requests, stats_.documents, stats_.unique,
            stats_.duplicates, stats_.bad_documents, stats_.bad_requests, stats_.body_bytes,
            stats_.otlp_requests, stats_.otlp_body_bytes, stats_.otlp_gzip_requests, from, to,
            unique, dups, to > from ? (to - from) - unique : 0, since, stats_.requests_since_reset,
            stats_.documents_since_reset, stats_.otlp_requests_since_reset, latency_.count(),
            latency_.percentile(50), latency_.percentile(90), latency_.percentile(99),
            latency_.percentile(99.9), latency_.max());
        return out;
    }

    void reset() noexcept {
        latency_.clear();
        stats_.requests_since_reset = 0;
        stats_.documents_since_reset = 0;
        stats_.otlp_requests_since_reset = 0;
        stats_.reset_at_ns = monotonic_ns();
    }

    void count_request() noexcept {
        ++stats_.requests;
        ++stats_.requests_since_reset;
    }

    // One POST /v1/traces whose body had `bytes` bytes.
    void count_otlp(std::uint64_t bytes, bool gzip) noexcept {
        ++stats_.otlp_requests;
        ++stats_.otlp_requests_since_reset;
        stats_.otlp_body_bytes += bytes;
        stats_.otlp_gzip_requests += gzip ? 1 : 0;
    }

private:
    void record_document(std::string_view text, std::int64_t now) {
        ++stats_.documents;
        ++stats_.documents_since_reset;
        inner_text_.assign(text);
        inner_text_.reserve(text.size() + simdjson::SIMDJSON_PADDING);
        simdjson::ondemand::document doc;
        simdjson::ondemand::object object;
        if (inner_.iterate(inner_text_.data(), inner_text_.size(), inner_text_.capacity())
                    .get(doc) != simdjson::SUCCESS ||
            doc.get_object().get(object) != simdjson::SUCCESS) {
            ++stats_.bad_documents;
            return;
        }
        std::uint64_t seq = 0;
        std::int64_t sent_ns = -1;
        bool have_id = false;
        for (auto field : object) {
            std::string_view key;
            if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
                break;
            }
            if (key == "id") {
                std::string_view id;
                if (field.value().get_string().get(id) == simdjson::SUCCESS && id.size() == 16) {
                    char* end = nullptr;
                    const std::string hex(id);
                    seq = std::strtoull(hex.c_str(), &end, 16);
                    have_id = end == hex.c_str() + 16;
                }
            } else if (key == "annotations") {
                std::string_view sent;
                if (field.value()["bench_sent_ns"].get_string().get(sent) == simdjson::SUCCESS) {
                    sent_ns = 0;
                    for (const char c : sent) {
                        sent_ns = sent_ns * 10 + (c - '0');
                    }
                }
            }
        }
        if (!have_id || seq >= seen_.cap()) {
            ++stats_.bad_documents;
            return;
        }
        if (seen_.set(seq)) {
            ++stats_.unique;
        } else {
            ++stats_.duplicates;
            (void)dup_.set(seq);
        }
        if (sent_ns > 0 && now >= sent_ns) {
            latency_.record(static_cast<std::uint64_t>((now - sent_ns) / 1000));
        }
    }

    simdjson::ondemand::parser outer_;
    simdjson::ondemand::parser inner_;
    std::string inner_text_;
    SeqBitmap seen_;
    SeqBitmap dup_;
    LatencyHistogram latency_;
    Stats stats_;
};

struct Server {
    Endpoint endpoint;
    MHD_Response* segments_response = nullptr;
    MHD_Response* empty_response = nullptr;
    MHD_Response* otlp_response = nullptr;
};

struct RequestState {
    std::string body;         // kept for every path but /v1/traces
    std::uint64_t bytes = 0;  // counted for /v1/traces, whose body is dropped as it arrives
    bool otlp = false;
};

std::uint64_t query_u64(MHD_Connection* connection, const char* key, std::uint64_t fallback) {
    const char* value = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, key);
    return value != nullptr ? std::strtoull(value, nullptr, 10) : fallback;
}

MHD_Result reply_copy(MHD_Connection* connection, unsigned int status, const std::string& text) {
    MHD_Response* response = MHD_create_response_from_buffer(
        text.size(), const_cast<char*>(text.data()), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) {
        return MHD_NO;
    }
    (void)MHD_add_response_header(response, "Content-Type", "application/json");
    const MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
}

MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method,
                      const char* /*version*/, const char* upload_data,
                      std::size_t* upload_data_size, void** request_state) {
    auto& server = *static_cast<Server*>(cls);
    const std::string_view path = url;
    if (std::strcmp(method, "GET") == 0) {
        if (*request_state == nullptr) {
            *request_state = &server;  // first call: headers only
            return MHD_YES;
        }
        if (path == "/stats") {
            return reply_copy(connection, MHD_HTTP_OK,
                              server.endpoint.stats_json(query_u64(connection, "from", 0),
                                                         query_u64(connection, "to", 0)));
        }
        if (path == "/reset") {
            server.endpoint.reset();
            return reply_copy(connection, MHD_HTTP_OK, "{}\n");
        }
        return reply_copy(connection, MHD_HTTP_NOT_FOUND, "{\"message\":\"not found\"}\n");
    }
    if (*request_state == nullptr) {
        auto state = std::make_unique<RequestState>();
        state->otlp = path == otlp_path;
        if (!state->otlp) {
            state->body.reserve(64 * 1024);
        }
        *request_state = state.release();
        return MHD_YES;
    }
    auto* state = static_cast<RequestState*>(*request_state);
    if (*upload_data_size > 0) {
        if (state->otlp) {
            state->bytes += *upload_data_size;
        } else {
            state->body.append(upload_data, *upload_data_size);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    server.endpoint.count_request();
    if (state->otlp) {
        const char* encoding = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                           MHD_HTTP_HEADER_CONTENT_ENCODING);
        server.endpoint.count_otlp(state->bytes,
                                   encoding != nullptr && std::strcmp(encoding, "gzip") == 0);
        return MHD_queue_response(connection, MHD_HTTP_OK, server.otlp_response);
    }
    if (path == "/TraceSegments") {
        server.endpoint.ingest(state->body);
        return MHD_queue_response(connection, MHD_HTTP_OK, server.segments_response);
    }
    return MHD_queue_response(connection, MHD_HTTP_OK, server.empty_response);
}

void on_completed(void* cls, MHD_Connection* /*connection*/, void** request_state,
                  MHD_RequestTerminationCode /*why*/) {
    if (*request_state != nullptr && *request_state != cls) {
        delete static_cast<RequestState*>(*request_state);
    }
    *request_state = nullptr;
}

MHD_Response* static_response(std::string_view text,
                              const char* type = "application/x-amz-json-1.1") {
    MHD_Response* response = MHD_create_response_from_buffer(
        text.size(), const_cast<char*>(text.data()), MHD_RESPMEM_PERSISTENT);
    if (response != nullptr) {
        (void)MHD_add_response_header(response, "Content-Type", type);
    }
    return response;
}

}  // namespace

int main(int argc, char** argv) {
    int port = 0;
    std::string bind = "127.0.0.1";
    double lifetime_s = 600;
    int cpu = -1;
    std::uint64_t max_seq = max_seq_default;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view arg = argv[i];
        if (arg == "--port") {
            port = std::atoi(argv[i + 1]);
        } else if (arg == "--bind") {
            bind = argv[i + 1];
        } else if (arg == "--max-lifetime") {
            lifetime_s = std::strtod(argv[i + 1], nullptr);
        } else if (arg == "--cpu") {
            cpu = std::atoi(argv[i + 1]);
        } else if (arg == "--max-seq") {
            max_seq = std::strtoull(argv[i + 1], nullptr, 10);
        } else {
            std::fprintf(stderr, "usage: fake-xray-fast [--port 0] [--bind 127.0.0.1] "
                                 "[--max-lifetime 600] [--cpu N] [--max-seq N]\n");
            return 2;
        }
    }
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            std::perror("fake-xray-fast: sched_setaffinity");
            return 1;
        }
    }
    // Block the stop signals before MHD's thread exists, so only sigtimedwait below sees them.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &stop, nullptr) != 0) {
        std::perror("fake-xray-fast: pthread_sigmask");
        return 1;
    }

    auto server = std::make_unique<Server>(Server{Endpoint(max_seq), nullptr, nullptr, nullptr});
    server->segments_response = static_response(segments_reply);
    server->empty_response = static_response(empty_reply);
    // An empty ExportTraceServiceResponse: all accepted, no partial_success.
    server->otlp_response = static_response({}, "application/x-protobuf");
    if (server->segments_response == nullptr || server->empty_response == nullptr ||
        server->otlp_response == nullptr) {
        std::fprintf(stderr, "fake-xray-fast: MHD_create_response_from_buffer failed\n");
        return 1;
    }

    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    if (inet_pton(AF_INET, bind.c_str(), &address.sin_addr) != 1) {
        std::fprintf(stderr, "fake-xray-fast: bad IPv4 address %s\n", bind.c_str());
        return 2;
    }
    // One epoll thread: the endpoint's state is touched by that thread only.
    MHD_Daemon* daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, nullptr, nullptr, &on_request,
        server.get(), MHD_OPTION_SOCK_ADDR, &address, MHD_OPTION_NOTIFY_COMPLETED, &on_completed,
        server.get(), MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<std::size_t>(256 * 1024),
        MHD_OPTION_CONNECTION_LIMIT, 1000U, MHD_OPTION_CONNECTION_TIMEOUT, 120U, MHD_OPTION_END);
    if (daemon == nullptr) {
        std::fprintf(stderr, "fake-xray-fast: MHD_start_daemon failed on %s:%d\n", bind.c_str(),
                     port);
        return 1;
    }
    const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    std::printf("{\"port\": %u, \"scheme\": \"http\"}\n", info != nullptr ? info->port : 0U);
    std::fflush(stdout);

    const std::int64_t deadline = monotonic_ns() + static_cast<std::int64_t>(lifetime_s * 1e9);
    for (;;) {
        const std::int64_t left = deadline - monotonic_ns();
        if (left <= 0) {
            break;
        }
        const timespec wait{static_cast<time_t>(left / 1'000'000'000),
                            static_cast<long>(left % 1'000'000'000)};
        const int sig = sigtimedwait(&stop, nullptr, &wait);
        if (sig == SIGTERM || sig == SIGINT) {
            break;
        }
    }
    MHD_stop_daemon(daemon);
    MHD_destroy_response(server->segments_response);
    MHD_destroy_response(server->empty_response);
    MHD_destroy_response(server->otlp_response);
    return 0;
}
