// Reading OTLP/HTTP trace export requests (issue #16): gunzip a body, check it against the
// opentelemetry-proto schema (protobuf or OTLP/JSON), count its spans exactly, refuse the spans
// over X-Ray's per-span limit, and keep each resource_spans so requests can be merged
// (otlp_batch.h). No sockets, no HTTP: the receiver hands over bodies and answers with
// otlp_response.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <xrayd/common/result.h>

namespace xrayd::otlp {

enum class OtlpEncoding {
    protobuf,  // application/x-protobuf
    json,      // application/json (OTLP/JSON: lowerCamelCase keys, hex ids)
};

// X-Ray's OTLP limits per request (shared/reference/otlp-and-adot.md, CloudWatch "OTLP
// endpoint"): 5 MB uncompressed, 10 000 spans, 200 KB per span. "MB"/"KB" are read as the
// smaller, decimal units so that a merged request never crosses X-Ray's limit.
struct OtlpLimits {
    std::size_t max_request_bytes = 5'000'000;
    std::size_t max_spans = 10'000;
    std::size_t max_span_bytes = 200'000;
};

// Why a body is not a valid request: the reply is a 400 (413 for gzip_too_large) with
// to_string()'s text as the google.rpc.Status message.
enum class OtlpErrc {
    gzip_invalid,        // not gzip, corrupt or cut short
    gzip_too_large,      // inflates past the caller's limit
    too_large,           // a protobuf body of 2 GiB or more (CodedInputStream counts in int)
    truncated,           // a varint or a length-delimited field runs past its message
    malformed,           // field number 0, wire type 6 or 7, a stray end-group
    wrong_wire_type,     // a field of the OTLP schema with another wire type than the schema's
    too_deep,            // messages nested deeper than max_nesting (AnyValue arrays in arrays)
    json_invalid,        // not JSON (simdjson's full validation, UTF-8 included)
    json_not_object,     // the document is not a JSON object
    json_wrong_type,     // resourceSpans/scopeSpans/spans not an array, or an element not an object
    json_duplicate_key,  // resourceSpans/scopeSpans/spans twice in one object
    out_of_memory,       // an allocation failed
};

// A short static text for a reply or a log line.
[[nodiscard]] std::string_view to_string(OtlpErrc errc) noexcept;

// Inflates a gzip body (Content-Encoding: gzip; several members one after another, as RFC 1952
// allows, are inflated in turn). Never holds more than max_output + 1 bytes of output, so a gzip
// bomb fails with gzip_too_large at the limit instead of allocating. Never throws.
[[nodiscard]] Result<std::string, OtlpErrc> gunzip(std::string_view body,
                                                   std::size_t max_output) noexcept;

// Compresses `body` as one gzip member (Content-Encoding: gzip) at zlib `level` (1: fastest;
// 6: zlib's default). Errors: out_of_memory only. Never throws.
[[nodiscard]] Result<std::string, OtlpErrc> gzip(std::string_view body, int level) noexcept;

// Protobuf messages nested deeper than this are refused (too_deep): AnyValue may nest arrays
// and key-value lists without end, and the reader recurses once per level.
inline constexpr int max_nesting = 64;

// One resource_spans of a request, kept for merging. Its bytes are, in the request's encoding,
// a whole element of the outgoing request's list:
//   protobuf: the ExportTraceServiceRequest field 1 as on the wire (tag, length, message);
//             concatenating such fields is a valid ExportTraceServiceRequest.
//   JSON:     one element of "resourceSpans": its text in the body (whitespace inside kept), or
//             minified into `rebuilt` when a span of it was refused.
struct OtlpPart {
    std::size_t offset = 0;  // into the body, or into OtlpExportRequest::rebuilt if `rebuilt`
    std::size_t length = 0;
    bool rebuilt = false;
    std::size_t spans = 0;  // the spans it carries (refused ones are not in it)
};

// What read_export_request found in a valid request.
struct OtlpExportRequest {
    OtlpEncoding encoding = OtlpEncoding::protobuf;
    std::size_t resource_spans = 0;  // resource_spans elements in the body
    std::size_t spans = 0;           // every span in the body, refused ones included
    std::size_t refused_spans = 0;   // over max_span_bytes: left out of `parts`
    // The resource_spans that carry at least one accepted span, in order. One with no span
    // (empty, or every span refused) is left out: it would deliver nothing.
    std::vector<OtlpPart> parts;
    // Bytes of the parts that are not the body's own: resource_spans written again without
    // their refused spans (protobuf re-encoded, JSON minified).
    std::string rebuilt;

    [[nodiscard]] std::size_t accepted_spans() const noexcept { return spans - refused_spans; }
    // IMPORTANT: `body` must be the very bytes read_export_request read (after gunzip).
    [[nodiscard]] std::string_view bytes_of(std::string_view body,
                                            const OtlpPart& part) const noexcept {
        return (part.rebuilt ? std::string_view(rebuilt) : body).substr(part.offset, part.length);
    }
};

// Reads an uncompressed ExportTraceServiceRequest and checks it against the schema:
//   protobuf: every message of the trace schema down to AnyValue is walked with protobuf's
//     wire-format reader; a known field with another wire type, a truncated field or a bad tag
//     is an error, an unknown field is skipped (newer schemas add fields). String fields are
//     not checked for UTF-8.
//   JSON: simdjson validates the whole document; resourceSpans[].scopeSpans[].spans[] must be
//     arrays of objects (absent or null means empty); spans are not looked into.
// Refused spans: a span longer than limits.max_span_bytes (protobuf: its message bytes; JSON:
// its minified text, measured only when its text as written is longer) is counted in refused_spans
// and left out of the parts, and the rest of the request is accepted (the receiver answers
// partial_success). Its resource_spans is re-encoded without it into `rebuilt`, rather than refused
// whole: one large span must not cost the spans of a whole service (a resource_spans is usually all
// the spans of one SDK's batch). The request's own size and span count are not limited here: the
// receiver answers 413 above its body limit, and OtlpBatch sends a request over X-Ray's limits
// alone. Thread-safety: any thread; the JSON parsers are one per thread (thread_local), and keep
// the capacity of the largest body that thread read. Never throws.
[[nodiscard]] Result<OtlpExportRequest, OtlpErrc> read_export_request(
    std::string_view body, OtlpEncoding encoding, const OtlpLimits& limits) noexcept;

}  // namespace xrayd::otlp
