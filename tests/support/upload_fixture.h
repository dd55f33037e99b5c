// UploadFixture: what the upload module's tests share — sealed batches of real segments charged
// to a real MemoryBudget, counters, a captured log, test credentials, and a loop that drives a
// sink's EventLoop until a condition holds.
#pragma once

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <xrayd/aws/credentials.h>
#include <xrayd/batch/batch.h>
#include <xrayd/batch/batch_sink.h>
#include <xrayd/flow/event_loop.h>
#include <xrayd/http/curl.h>
#include <xrayd/log/logger.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/queue/segment.h>
#include <xrayd/stats/counters.h>
#include <xrayd/upload/uploader.h>

#include "captured_log.h"
#include "http_test_server.h"

namespace xrayd::test {

// libcurl's process-wide set-up, as main() does it in the daemon: one per test executable.
inline const CurlGlobal upload_curl_global = CurlGlobal::init();

inline constexpr std::chrono::seconds generous_deadline{20};

inline const Credentials test_credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                          "session-token-example");

inline std::string segment_id(int i) {
    return fmt::format("{:016x}", 0x1000 + i);
}
inline std::string trace_id(int i) {
    return fmt::format("1-5759e988-{:024x}", 0xabc000 + i);
}

// The document make_batch() writes for segment number k (it needs escaping).
inline std::string document(int k) {
    return fmt::format(
        R"({{"name":"svc \"quoted\" é","id":"{}","trace_id":"{}","start_time":1.5}})",
        segment_id(k), trace_id(k));
}

struct Harness {
    explicit Harness(std::size_t budget_bytes = 64 << 20) : budget(budget_bytes) {}

    Counters counters;
    std::shared_ptr<CapturedLog> log = std::make_shared<CapturedLog>();
    Logger logger{LogLevel::debug, std::make_unique<CaptureSink>(*log)};
    StaticCredentialsProvider credentials{test_credentials};
    MemoryBudget budget;
    int next_segment = 0;

    // A sealed batch of `n` segments with documents that need escaping, received `received`.
    Batch make_batch(int n, TimePoint received = Clock::now()) {
        Batch batch(budget);
        for (int i = 0; i < n; ++i) {
            const int k = next_segment++;
            const std::string doc = document(k);
            auto segment = Segment::make(budget, doc, segment_id(k), trace_id(k), received);
            REQUIRE(segment != nullptr);
            REQUIRE(batch.append(*segment));
        }
        batch.seal();
        return batch;
    }

    UploaderOptions options(const HttpTestServer& server) const {
        using namespace std::chrono_literals;
        UploaderOptions o;
        o.endpoint = server.url();
        o.region = "us-east-2";
        o.concurrency = 4;
        o.request_timeout = 5000ms;
        o.transport.user_agent = "xrayd/test exec-env/UNKNOWN OS/linux-amd64";
        o.retry_base = 5ms;
        o.retry_cap = 50ms;
        o.retry_budget = 60s;
        return o;
    }

    std::unique_ptr<Uploader> uploader(UploaderOptions o) {
        return Uploader::create(std::move(o), credentials, counters, logger, &budget);
    }

    // sent + rejected + dropped, by the counters' kinds.
    std::uint64_t accounted() const {
        const auto snapshot = counters.snapshot();
        return snapshot.total(CounterKind::sent) + snapshot.total(CounterKind::rejected) +
               snapshot.total(CounterKind::dropped);
    }

    std::uint64_t get(Counter c) const { return counters.get(c); }
};

// Runs the sink until `done` holds or the deadline passes; returns done().
inline bool drive(EventLoop& sink, const std::function<bool()>& done,
                  std::chrono::steady_clock::duration deadline = generous_deadline) {
    using namespace std::chrono_literals;
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) {
            return false;
        }
        sink.run_once(20ms);
    }
    return true;
}

}  // namespace xrayd::test
