// otlp-loadgen: paced OTLP/HTTP trace export requests, as an SDK's BatchSpanProcessor sends them.
//
// Every request is an ExportTraceServiceRequest of --spans-per-request spans (default 512, the
// BatchSpanProcessor's maxExportBatchSize) in protobuf (default) or OTLP/JSON (--json), gzip
// with --gzip. The body is built once (RequestTemplate); per request only the ids and times are
// rewritten in place, and compressed when asked, so the generator costs a few stores per span
// plus libcurl's request and, with --gzip, zlib (see bench/README.md for its CPU at each rate).
//
// Pacing: request k starts at start + k * spans-per-request / rate; up to --connections
// transfers run at once (a request due while all are busy starts late and is counted).
//
// Output: one JSON line on stdout when every answer is in: requests, spans sent, answers by
// status, spans accepted / refused (503, 429) / rejected (partial_success) / failed, the send
// window, late requests and the generator's own CPU.
#include <sys/random.h>
#include <sys/resource.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <xrayd/common/startup_error.h>
#include <xrayd/http/curl.h>

#include "bench/otlp/paced_poster.h"
#include "bench/otlp/request_template.h"

namespace {

using xrayd::bench::BodyEncoding;

struct Options {
    xrayd::bench::PosterOptions poster;
    std::size_t spans_per_request = 512;
    BodyEncoding encoding = BodyEncoding::protobuf;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "otlp-loadgen: %s\n"
                 "usage: otlp-loadgen [--url http://127.0.0.1:4318/v1/traces] [--rate SPANS/s]\n"
                 "         [--duration S] [--spans-per-request N] [--connections N] [--gzip]\n"
                 "         [--gzip-level 1..9] [--json] [--timeout-ms MS]\n",
                 why);
    std::exit(2);
}

double positive(const char* text, const char* what) {
    char* end = nullptr;
    const double value = std::strtod(text, &end);
    if (end == text || *end != '\0' || !(value > 0)) {
        usage(what);
    }
    return value;
}

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--gzip") {
            o.poster.gzip = true;
            continue;
        }
        if (arg == "--json") {
            o.encoding = BodyEncoding::json;
            continue;
        }
        if (i + 1 >= argc) {
            usage("missing value");
        }
        const char* value = argv[++i];
        if (arg == "--url") {
            o.poster.url = value;
        } else if (arg == "--rate") {
            o.poster.spans_per_second = positive(value, "--rate must be > 0 spans/s");
        } else if (arg == "--duration") {
            o.poster.duration_s = positive(value, "--duration must be > 0 s");
        } else if (arg == "--spans-per-request") {
            o.spans_per_request =
                static_cast<std::size_t>(positive(value, "--spans-per-request must be >= 1"));
        } else if (arg == "--connections") {
            o.poster.connections =
                static_cast<std::size_t>(positive(value, "--connections must be >= 1"));
        } else if (arg == "--gzip-level") {
            o.poster.gzip_level = static_cast<int>(positive(value, "--gzip-level is 1..9"));
            if (o.poster.gzip_level > 9) {
                usage("--gzip-level is 1..9");
            }
        } else if (arg == "--timeout-ms") {
            o.poster.timeout_ms = static_cast<long>(positive(value, "--timeout-ms must be > 0"));
        } else {
            usage("unknown option");
        }
    }
    if (o.spans_per_request < 1 || o.spans_per_request > (1U << 20)) {
        usage("--spans-per-request is 1..1048576");
    }
    return o;
}

// A random run id (the high half of every trace id), so two runs never share trace ids.
std::uint64_t random_run_id() {
    std::uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != static_cast<ssize_t>(sizeof id)) {
        throw xrayd::StartupError("otlp-loadgen: getrandom failed");
    }
    return id;
}

double cpu_seconds() noexcept {
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) != 0) {
        return 0;
    }
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void print_result(const Options& o, const xrayd::bench::PostTally& t, double cpu_s,
                  std::size_t template_bytes) {
    std::string statuses;
    for (const auto& [status, count] : t.by_status) {
        statuses += (statuses.empty() ? "\"" : ",\"") + std::to_string(status) +
                    "\":" + std::to_string(count);
    }
    std::string error;  // JSON-safe: the first error's printable ASCII, quotes and \ dropped
    for (const char c : t.first_error.substr(0, 200)) {
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            error += c;
        }
    }
    const double spans = static_cast<double>(o.spans_per_request);
    // Requests start one interval apart, so n of them fill the window plus one interval.
    const double window_s = t.send_window_s + spans / o.poster.spans_per_second;
    std::printf(
        "{\"requests\":%" PRIu64 ",\"spans_sent\":%" PRIu64 ",\"status\":{%s}"
        ",\"spans_accepted\":%" PRIu64 ",\"spans_refused\":%" PRIu64 ",\"spans_rejected\":%" PRIu64
        ",\"spans_failed\":%" PRIu64 ",\"target_rate\":%.1f,\"achieved_rate\":%.1f"
        ",\"send_window_s\":%.3f,\"elapsed_s\":%.3f,\"late_requests\":%" PRIu64
        ",\"max_lag_ms\":%.2f,\"spans_per_request\":%zu,\"encoding\":\"%s\",\"gzip\":%s"
        ",\"body_bytes_per_span\":%.1f,\"wire_bytes_per_request\":%.0f,\"connections\":%zu"
        ",\"cpu_s\":%.3f,\"cpu_pct\":%.2f,\"first_error\":\"%s\"}\n",
        t.requests, t.spans_sent, statuses.c_str(), t.spans_accepted, t.spans_refused,
        t.spans_rejected, t.spans_failed, o.poster.spans_per_second,
        t.requests > 0 ? static_cast<double>(t.spans_sent) / window_s : 0.0, t.send_window_s,
        t.elapsed_s, t.late_requests, t.max_lag_ms, o.spans_per_request,
        o.encoding == BodyEncoding::json ? "json" : "protobuf", o.poster.gzip ? "true" : "false",
        static_cast<double>(template_bytes) / spans,
        t.requests > 0 ? static_cast<double>(t.wire_bytes) / static_cast<double>(t.requests) : 0.0,
        o.poster.connections, cpu_s, t.elapsed_s > 0 ? 100.0 * cpu_s / t.elapsed_s : 0.0,
        error.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse_options(argc, argv);
    try {
        const xrayd::CurlGlobal curl = xrayd::CurlGlobal::init();
        const auto request =
            xrayd::bench::RequestTemplate::build(o.encoding, o.spans_per_request, random_run_id());
        auto poster = xrayd::bench::PacedPoster::create(o.poster, request);
        const double cpu_before = cpu_seconds();  // the template is set-up, not load
        const xrayd::bench::PostTally tally = poster->run();
        print_result(o, tally, cpu_seconds() - cpu_before, request.text().size());
    } catch (const xrayd::StartupError& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
