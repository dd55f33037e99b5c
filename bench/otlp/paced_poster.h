// PacedPoster: POSTs OTLP export requests at an even pace over libcurl's multi interface (HTTP/1.1,
// keep-alive where the server allows it, a few transfers in parallel) and tallies the answers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <xrayd/http/curl.h>

#include "bench/otlp/gzip_writer.h"
#include "bench/otlp/request_template.h"

namespace xrayd::bench {

struct PosterOptions {
    std::string url = "http://127.0.0.1:4318/v1/traces";
    double spans_per_second = 5000;
    double duration_s = 20;
    std::size_t connections = 4;  // transfers in flight at most (a connection each)
    bool gzip = false;
    int gzip_level = 6;  // zlib's and Go's compress/gzip default, as the SDKs' exporters use
    long timeout_ms = 30000;
};

// What was sent and how it was answered. Every request carries the template's span count.
struct PostTally {
    std::uint64_t requests = 0;               // started
    std::uint64_t spans_sent = 0;             // in the requests started
    std::map<long, std::uint64_t> by_status;  // HTTP status -> answers; 0: no answer (transport)
    std::uint64_t spans_accepted = 0;         // in 200 answers, less partial_success.rejected_spans
    std::uint64_t spans_rejected = 0;         // partial_success.rejected_spans of 200 answers
    std::uint64_t spans_refused = 0;          // in 503 and 429 answers (an SDK would retry them)
    std::uint64_t spans_failed = 0;           // in other answers and transport errors
    std::uint64_t late_requests = 0;  // started over 5 ms after their time (all transfers busy)
    double max_lag_ms = 0;
    std::uint64_t body_bytes = 0;  // before compression
    std::uint64_t wire_bytes = 0;  // as sent
    double send_window_s = 0;      // first request started to last request started
    double elapsed_s = 0;          // first request started to last answer
    std::string first_error;       // the first transport error or unexpected status
};

// Owns its curl handles and the body buffers. One thread. Lifetime: `request` outlives it.
class PacedPoster {
public:
    // Throws StartupError when libcurl or zlib cannot set up (and std::bad_alloc).
    // IMPORTANT: needs a CurlGlobal alive for the poster's whole life.
    [[nodiscard]] static std::unique_ptr<PacedPoster> create(const PosterOptions& options,
                                                             const RequestTemplate& request);
    ~PacedPoster();
    PacedPoster(const PacedPoster&) = delete;
    PacedPoster& operator=(const PacedPoster&) = delete;

    // Sends round(rate * duration / spans per request) requests, request k at start + k * the
    // interval (k from 0), then waits for every answer (each bounded by timeout_ms). Once.
    [[nodiscard]] PostTally run();

private:
    struct Transfer;  // paced_poster.cpp
    PacedPoster(const PosterOptions& options, const RequestTemplate& request);
    void begin(Transfer& transfer, std::uint64_t number);
    void collect();
    void finish(Transfer& transfer, CURLcode result);

    PosterOptions options_;
    const RequestTemplate& request_;
    CurlSlist headers_;  // before the transfers: outlives them
    GzipWriter gzip_;
    CurlMulti multi_;
    std::vector<std::unique_ptr<Transfer>> transfers_;  // stable addresses: curl holds them
    PostTally tally_;
};

}  // namespace xrayd::bench
