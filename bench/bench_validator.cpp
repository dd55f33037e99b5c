// Validator throughput on real sample datagrams (small OTel ones, Node HTTP ones, the 60 KB one).
#include <xrayd/ingest/validator.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <simdjson.h>

namespace {

namespace fs = std::filesystem;

const fs::path samples_dir = fs::path(XRAYD_TEST_DATA_DIR) / "segment-docs";

// A datagram followed by the padding the receive slots provide.
struct PaddedDatagram {
    std::vector<char> bytes;
    std::size_t size = 0;
};

PaddedDatagram pad(const std::string& datagram) {
    PaddedDatagram out{std::vector<char>(datagram.begin(), datagram.end()), datagram.size()};
    out.bytes.resize(out.size + xrayd::datagram_padding, ' ');
    return out;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "cannot read %s\n", path.c_str());
        std::exit(1);
    }
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

void run(benchmark::State& state, const std::vector<PaddedDatagram>& datagrams) {
    xrayd::Validator validator;
    std::size_t bytes = 0;
    for (const PaddedDatagram& d : datagrams) {
        bytes += d.size;
        if (validator.validate(d.bytes.data(), d.size).verdict != xrayd::Verdict::accepted) {
            state.SkipWithError("a sample was not accepted");
            return;
        }
    }
    for (auto _ : state) {
        for (const PaddedDatagram& d : datagrams) {
            benchmark::DoNotOptimize(validator.validate(d.bytes.data(), d.size));
        }
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(datagrams.size()));
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
}

// One sample .udp file (a whole datagram).
void bm_sample(benchmark::State& state, const char* relative_path) {
    run(state, {pad(read_file(samples_dir / relative_path))});
}

// Every datagram of one captured Node SDK run (21 datagrams, mostly HTTP segments).
void bm_node_run(benchmark::State& state) {
    std::vector<PaddedDatagram> datagrams;
    std::istringstream lines(read_file(samples_dir / "node-sdk" / "all-datagrams-one-run.jsonl"));
    simdjson::dom::parser parser;
    for (std::string line; std::getline(lines, line);) {
        std::string_view header;
        std::string_view body;
        simdjson::dom::element e;
        if (parser.parse(line).get(e) != simdjson::SUCCESS ||
            e["header"].get(header) != simdjson::SUCCESS ||
            e["body"].get(body) != simdjson::SUCCESS) {
            state.SkipWithError("bad line in all-datagrams-one-run.jsonl");
            return;
        }
        datagrams.push_back(pad(std::string(header) + "\n" + std::string(body)));
    }
    run(state, datagrams);
}

// A rejected datagram costs the same parse; the common bad case is a broken header.
void bm_bad_header(benchmark::State& state) {
    const PaddedDatagram d =
        pad("{\"format\":\"xml\",\"version\":1}\n" +
            read_file(samples_dir / "node-sdk" / "http-200-with-subsegments.json"));
    xrayd::Validator validator;
    for (auto _ : state) {
        benchmark::DoNotOptimize(validator.validate(d.bytes.data(), d.size));
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(d.size));
}

}  // namespace

BENCHMARK_CAPTURE(bm_sample, otel_min_other_fields, "otel-go-sdk/minOtherFields.udp");
BENCHMARK_CAPTURE(bm_sample, otel_server_sample, "otel-go-sdk/serverSample.udp");
BENCHMARK_CAPTURE(bm_sample, node_streamed_subsegment, "node-sdk/streamed-subsegment.udp");
BENCHMARK_CAPTURE(bm_sample, node_in_progress, "node-sdk/in-progress.udp");
BENCHMARK_CAPTURE(bm_sample, node_http_200, "node-sdk/http-200-with-subsegments.udp");
BENCHMARK_CAPTURE(bm_sample, node_http_500, "node-sdk/http-500-fault-cause.udp");
BENCHMARK_CAPTURE(bm_sample, node_big_60kb, "node-sdk/big-60KB.udp");
BENCHMARK(bm_node_run);
BENCHMARK(bm_bad_header);

BENCHMARK_MAIN();
