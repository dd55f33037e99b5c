// Benchmarks: the OTLP exporter's per-request work (issue #16), on requests of 512 spans as the
// SDKs' BatchSpanProcessor sends them (tests/support/otlp_builder.h: every field kind, ~600 B a
// span):
// - BM_Read: read_export_request, the receiver's check and span count of one request.
// - BM_ReadLoadgen/<encoding>: the same on otlp-loadgen's 512-span request (bench/otlp), as
//   protobuf (0) and OTLP/JSON (1): the receiver's CPU per request of run_otlp.py's bench.
// - BM_MergeConcatenate: OtlpBatch merging 10 such requests, as xrayd does (the resource_spans
//   fields one after another).
// - BM_MergeReencode: the same 10 requests decoded field by field down to AnyValue and encoded
//   again into one request, what a collector's unmarshal + marshal costs at the least (a walk
//   with protobuf's CodedInputStream/CodedOutputStream, no message objects allocated, so it
//   underestimates a real re-encode).
// - BM_Gzip/<level>: compressing the merged 5 000-span body at zlib levels 1 and 6; the counter
//   "ratio" is the compression ratio.
#include <benchmark/benchmark.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <xrayd/otlp/otlp_batch.h>
#include <xrayd/otlp/otlp_request.h>

#include "bench/otlp/request_template.h"
#include "src/otlp/otlp_schema.h"
#include "tests/support/otlp_builder.h"

namespace xrayd {
namespace {

using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;
using google::protobuf::io::StringOutputStream;
using Wfl = google::protobuf::internal::WireFormatLite;

constexpr int spans_per_request = 512;
constexpr int requests = 10;

std::string make_request(int first) {
    test::Pb scope = test::scope_spans(first, spans_per_request);
    return test::export_request({test::resource_spans({scope})}).str();
}

const std::vector<std::string>& bodies() {
    static const std::vector<std::string> all = [] {
        std::vector<std::string> v;
        for (int i = 0; i < requests; ++i) {
            v.push_back(make_request(i * spans_per_request));
        }
        return v;
    }();
    return all;
}

// Which fields of which message are messages themselves, by nesting level of the trace schema:
// a re-encoder must know them to descend (the others are copied as they are).
enum class Msg {
    request,
    resource_spans,
    resource,
    scope_spans,
    scope,
    span,
    event,
    link,
    status,
    key_value,
    any_value,
    array_value,
    key_value_list,
    leaf,
};

// The message a length-delimited `field` of `parent` holds (leaf: bytes or a string), by the
// field numbers xrayd's reader uses (src/otlp/otlp_schema.h).
Msg child(Msg parent, int field) {
    namespace f = otlp::schema;
    switch (parent) {
    case Msg::request:
        return field == f::export_request::resource_spans ? Msg::resource_spans : Msg::leaf;
    case Msg::resource_spans:
        return field == f::resource_spans::resource      ? Msg::resource
               : field == f::resource_spans::scope_spans ? Msg::scope_spans
                                                         : Msg::leaf;
    case Msg::resource: return field == f::resource::attributes ? Msg::key_value : Msg::leaf;
    case Msg::scope_spans:
        return field == f::scope_spans::scope   ? Msg::scope
               : field == f::scope_spans::spans ? Msg::span
                                                : Msg::leaf;
    case Msg::scope: return field == f::scope::attributes ? Msg::key_value : Msg::leaf;
    case Msg::span:
        switch (field) {
        case f::span::attributes: return Msg::key_value;
        case f::span::events: return Msg::event;
        case f::span::links: return Msg::link;
        case f::span::status: return Msg::status;
        default: return Msg::leaf;
        }
    case Msg::event: return field == f::event::attributes ? Msg::key_value : Msg::leaf;
    case Msg::link: return field == f::link::attributes ? Msg::key_value : Msg::leaf;
    case Msg::key_value: return field == f::key_value::value ? Msg::any_value : Msg::leaf;
    case Msg::any_value:
        return field == f::any_value::array_value    ? Msg::array_value
               : field == f::any_value::kvlist_value ? Msg::key_value_list
                                                     : Msg::leaf;
    case Msg::array_value: return field == f::array_value::values ? Msg::any_value : Msg::leaf;
    case Msg::key_value_list:
        return field == f::key_value_list::values ? Msg::key_value : Msg::leaf;
    case Msg::status:
    case Msg::leaf: return Msg::leaf;
    }
    return Msg::leaf;
}

// Decodes `in` (a message of kind `kind`) and writes every field again to `out`.
bool reencode(CodedInputStream& in, Msg kind, std::string& out) {
    StringOutputStream stream(&out);
    CodedOutputStream o(&stream);
    while (const std::uint32_t tag = in.ReadTag()) {
        const int field = Wfl::GetTagFieldNumber(tag);
        switch (Wfl::GetTagWireType(tag)) {
        case Wfl::WIRETYPE_VARINT: {
            std::uint64_t v = 0;
            if (!in.ReadVarint64(&v)) {
                return false;
            }
            o.WriteTag(tag);
            o.WriteVarint64(v);
            break;
        }
        case Wfl::WIRETYPE_FIXED64: {
            std::uint64_t v = 0;
            if (!in.ReadLittleEndian64(&v)) {
                return false;
            }
            o.WriteTag(tag);
            o.WriteLittleEndian64(v);
            break;
        }
        case Wfl::WIRETYPE_FIXED32: {
            std::uint32_t v = 0;
            if (!in.ReadLittleEndian32(&v)) {
                return false;
            }
            o.WriteTag(tag);
            o.WriteLittleEndian32(v);
            break;
        }
        case Wfl::WIRETYPE_LENGTH_DELIMITED: {
            std::uint32_t length = 0;
            if (!in.ReadVarint32(&length)) {
                return false;
            }
            std::string inner;
            const Msg sub = child(kind, field);
            if (sub == Msg::leaf) {
                if (!in.ReadString(&inner, static_cast<int>(length))) {
                    return false;
                }
            } else {
                const auto limit = in.PushLimit(static_cast<int>(length));
                if (!reencode(in, sub, inner)) {
                    return false;
                }
                in.PopLimit(limit);
            }
            o.WriteTag(tag);
            o.WriteVarint32(static_cast<std::uint32_t>(inner.size()));
            o.WriteRaw(inner.data(), static_cast<int>(inner.size()));
            break;
        }
        default: return false;
        }
    }
    return true;
}

void BM_Read(benchmark::State& state) {
    const std::string& body = bodies().front();
    for (auto _ : state) {
        auto read = otlp::read_export_request(body, otlp::OtlpEncoding::protobuf, {});
        if (!read) {
            std::abort();
        }
        benchmark::DoNotOptimize(read.value().spans);
    }
    state.SetItemsProcessed(state.iterations() * spans_per_request);
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_Read);

void BM_ReadLoadgen(benchmark::State& state) {
    const bool json = state.range(0) == 1;
    const auto body_template = bench::RequestTemplate::build(
        json ? bench::BodyEncoding::json : bench::BodyEncoding::protobuf, spans_per_request, 1);
    std::string body = body_template.text();
    body_template.refresh(body, 1, 1'700'000'000'000'000'000);
    const auto encoding = json ? otlp::OtlpEncoding::json : otlp::OtlpEncoding::protobuf;
    for (auto _ : state) {
        auto read = otlp::read_export_request(body, encoding, {});
        if (!read || read.value().accepted_spans() != spans_per_request) {
            std::abort();
        }
        benchmark::DoNotOptimize(read.value().parts);
    }
    state.SetItemsProcessed(state.iterations() * spans_per_request);
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_ReadLoadgen)->Arg(0)->Arg(1);

void BM_MergeConcatenate(benchmark::State& state) {
    std::vector<otlp::OtlpExportRequest> read;
    for (const std::string& body : bodies()) {
        read.push_back(otlp::read_export_request(body, otlp::OtlpEncoding::protobuf, {}).value());
    }
    for (auto _ : state) {
        otlp::OtlpBatch batch(otlp::OtlpEncoding::protobuf, {});
        for (int i = 0; i < requests; ++i) {
            if (!batch.try_add(bodies()[i], read[i])) {
                std::abort();
            }
        }
        benchmark::DoNotOptimize(batch.take());
    }
    state.SetItemsProcessed(state.iterations() * requests * spans_per_request);
}
BENCHMARK(BM_MergeConcatenate);

void BM_MergeReencode(benchmark::State& state) {
    for (auto _ : state) {
        std::string merged;
        for (const std::string& body : bodies()) {
            CodedInputStream in(reinterpret_cast<const std::uint8_t*>(body.data()),
                                static_cast<int>(body.size()));
            if (!reencode(in, Msg::request, merged)) {
                std::abort();
            }
        }
        benchmark::DoNotOptimize(merged);
    }
    state.SetItemsProcessed(state.iterations() * requests * spans_per_request);
}
BENCHMARK(BM_MergeReencode);

void BM_Gzip(benchmark::State& state) {
    std::string merged;
    for (const std::string& body : bodies()) {
        merged += body;
    }
    std::size_t compressed = 0;
    for (auto _ : state) {
        auto out = otlp::gzip(merged, static_cast<int>(state.range(0)));
        if (!out) {
            std::abort();
        }
        compressed = out.value().size();
        benchmark::DoNotOptimize(out.value());
    }
    state.SetItemsProcessed(state.iterations() * requests * spans_per_request);
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(merged.size()));
    state.counters["ratio"] = static_cast<double>(merged.size()) /
                              static_cast<double>(std::max<std::size_t>(compressed, 1));
}
BENCHMARK(BM_Gzip)->Arg(1)->Arg(6);

}  // namespace
}  // namespace xrayd

BENCHMARK_MAIN();
