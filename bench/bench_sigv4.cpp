// SigV4 signing cost of a full PutTraceSegments request, with and without the key cache.
#include <xrayd/aws/sigv4.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <xrayd/aws/credentials.h>
#include <xrayd/common/time.h>

namespace {

namespace fs = std::filesystem;

constexpr std::size_t documents_per_batch = 50;

// Appends `doc` as a JSON string literal (the batch carries each document as a string).
void append_json_string(const std::string& doc, std::string& out) {
    out.push_back('"');
    for (char c : doc) {
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(c);
        } else if (c == '\n') {
            out.append("\\n");
        } else {
            out.push_back(c);
        }
    }
    out.push_back('"');
}

// {"TraceSegmentDocuments":[...]} with 50 of the Node SDK samples of about 1 KB (the 60 KB one
// is left out), cycling through them.
std::string make_batch_body() {
    std::vector<std::string> docs;
    std::vector<fs::path> paths;
    for (const auto& entry :
         fs::directory_iterator(fs::path(XRAYD_TEST_DATA_DIR) / "segment-docs" / "node-sdk")) {
        if (entry.path().extension() == ".json" && entry.file_size() < 4096) {
            paths.push_back(entry.path());
        }
    }
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) {
        std::ifstream in(p, std::ios::binary);
        std::string doc(std::istreambuf_iterator<char>(in), {});
        while (!doc.empty() && (doc.back() == '\n' || doc.back() == '\r')) {
            doc.pop_back();
        }
        docs.push_back(std::move(doc));
    }
    std::string body = R"({"TraceSegmentDocuments":[)";
    for (std::size_t i = 0; i < documents_per_batch && !docs.empty(); ++i) {
        if (i > 0) {
            body.push_back(',');
        }
        append_json_string(docs[i % docs.size()], body);
    }
    body.append("]}");
    return body;
}

const std::string& batch_body() {
    static const std::string body = make_batch_body();
    return body;
}

xrayd::SigningRequest trace_segments_request(const std::string& body) {
    return xrayd::SigningRequest{
        "POST",
        "/TraceSegments",
        {},
        {
            {"Host", "xray.us-east-1.amazonaws.com"},
            {"Content-Type", "application/json"},
            {"Content-Length", std::to_string(body.size())},
            {"X-Amzn-Xray-Timestamp", "1795308508.328667164"},
        },
        body,
    };
}

const xrayd::Credentials credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                     "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN/a+b/c==");

xrayd::WallClock::time_point fixed_now() {
    using namespace std::chrono;
    return xrayd::WallClock::time_point{sys_days{year{2026} / November / 22} + minutes{48}};
}

// The steady state: one signer per thread, key derived once per day.
void bm_sign_batch_cached_key(benchmark::State& state) {
    const std::string& body = batch_body();
    const auto request = trace_segments_request(body);
    xrayd::SigV4Signer signer("us-east-1", "xray");
    const auto now = fixed_now();
    for (auto _ : state) {
        auto signed_headers = signer.sign(request, credentials, now);
        benchmark::DoNotOptimize(signed_headers);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(body.size()));
    state.counters["body_bytes"] = static_cast<double>(body.size());
}
BENCHMARK(bm_sign_batch_cached_key);

// A fresh signer per request: the four-HMAC key derivation every time.
void bm_sign_batch_uncached_key(benchmark::State& state) {
    const std::string& body = batch_body();
    const auto request = trace_segments_request(body);
    const auto now = fixed_now();
    for (auto _ : state) {
        xrayd::SigV4Signer signer("us-east-1", "xray");
        auto signed_headers = signer.sign(request, credentials, now);
        benchmark::DoNotOptimize(signed_headers);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(body.size()));
}
BENCHMARK(bm_sign_batch_uncached_key);

// Isolates the key cache: an empty body, so the payload hash does not hide the difference.
void bm_sign_empty_body(benchmark::State& state) {
    const bool cached = state.range(0) != 0;
    const auto request = trace_segments_request(std::string{});
    const auto now = fixed_now();
    xrayd::SigV4Signer shared("us-east-1", "xray");
    for (auto _ : state) {
        if (cached) {
            benchmark::DoNotOptimize(shared.sign(request, credentials, now));
        } else {
            xrayd::SigV4Signer signer("us-east-1", "xray");
            benchmark::DoNotOptimize(signer.sign(request, credentials, now));
        }
    }
    state.SetLabel(cached ? "cached key" : "derived key");
}
BENCHMARK(bm_sign_empty_body)->Arg(1)->Arg(0);

// The payload hash alone, for scale.
void bm_sha256_batch(benchmark::State& state) {
    const std::string& body = batch_body();
    for (auto _ : state) {
        benchmark::DoNotOptimize(xrayd::sha256_hex(body));
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(body.size()));
}
BENCHMARK(bm_sha256_batch);

}  // namespace

BENCHMARK_MAIN();
