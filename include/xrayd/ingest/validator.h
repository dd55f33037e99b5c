// Validator: decides whether one UDP datagram (header line, LF, segment document) is acceptable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include <simdjson.h>

#include <xrayd/queue/segment.h>

namespace xrayd {

// Readable bytes that must follow every datagram given to Validator::validate (simdjson reads
// whole blocks past the end). Receive slots are sized max datagram + this.
inline constexpr std::size_t datagram_padding = simdjson::SIMDJSON_PADDING;

enum class Verdict : std::uint8_t {
    accepted,
    accepted_otlp_udp,  // an ADOT OTLP-over-UDP document ("T1S"/"T1U" + base64), see below
    missing_header,     // no LF in the datagram (this includes the empty datagram)
    bad_header,         // the header line is not {"format":"json","version":1} (spec §3.2 table)
    missing_body,       // nothing after the first LF
    bad_json,           // the body is not exactly one valid JSON object (UTF-8 included)
    invalid_segment,    // a required field is missing or has the wrong shape
    too_large,          // more bytes than max_datagram_bytes
    bad_otlp_udp,       // starts with "T1S"/"T1U" but the rest is not plausible base64 OTLP
};

// "accepted", "accepted otlp udp", "missing header", "bad header", "missing body", "bad json",
// "invalid segment", "too large", "bad otlp udp". Static strings.
[[nodiscard]] std::string_view to_string(Verdict v) noexcept;

struct Validation {
    Verdict verdict = Verdict::bad_json;
    // The document bytes (after the first LF) whenever an LF was found; points into the input.
    std::string_view body;
    // The segment's "id" / "trace_id" when the body parsed and the member is a string (also for
    // invalid segments; always empty for OTLP-over-UDP documents). IMPORTANT: these point into
    // the Validator's own buffers, not into the input: they stay valid until the next
    // validate() on the same Validator (or its destruction/move). Values longer than
    // segment_id_max / segment_trace_id_max bytes (only possible when invalid) are cut to that
    // length.
    std::string_view id;
    std::string_view trace_id;
    // Why the datagram was rejected: a short static string (never datagram bytes, so it is safe
    // to log), e.g. `missing field "trace_id"`, `"id" is not 16 hex digits`, or simdjson's error
    // message for bad_json. Empty when accepted.
    std::string_view problem;
};

// Rules (the Go daemon only checks the header; X-Ray checks the rest, we check it early):
// * Header (spec §3.2, Go encoding/json into {format string, version int}): the bytes before
//   the first LF must be one complete JSON object (any JSON whitespace, so a trailing CR is
//   fine; no BOM, no trailing bytes). Member names match "format"/"version" case-insensitively
//   (Unicode simple folding as in Go, so U+017F matches 's'); extra members are ignored. For
//   duplicates the last one of the right type wins: a later member of the wrong type (or null)
//   leaves the earlier value, as in Go. Valid iff format equals "json" case-insensitively and
//   version is the integer literal 1 (not 1.0, 1e0 or "1").
//   Known divergence: simdjson rejects some headers Go accepts (invalid UTF-8 or lone
//   surrogate escapes in any string, numbers outside the double / 64-bit integer range, nesting
//   deeper than 1024); such headers are bad_header here. No SDK emits them.
// * Body: exactly one JSON object, fully validated by simdjson (UTF-8 included, trailing bytes
//   other than whitespace rejected, no BOM). Member names are case-sensitive; for a duplicated
//   member the last one counts (whatever its type). Required: "name" a non-empty string; "id"
//   16 hex digits; "trace_id" "1-" 8 hex "-" 24 hex; "start_time" a number; "end_time" a
//   number, or absent with "in_progress" the boolean true; "parent_id" (16 hex digits) when
//   "type" is "subsegment", and checked whenever present. Hex digits may be of either case.
// * OTLP-over-UDP body (ADOT SDKs' OtlpUdpSpanExporter; the Go daemon forwards it unparsed):
//   "T1S" (sampled) or "T1U" (unsampled), then standard padded base64 with no whitespace,
//   decoding (with OpenSSL) to at least 2 bytes, the first being the protobuf tag of
//   ExportTraceServiceRequest's field 1. Accepted as accepted_otlp_udp (the document is the
//   whole body, forwarded verbatim), else bad_otlp_udp. No JSON body starts with 'T'.
//
// Ownership and threads: one Validator per receiver thread; not thread-safe. It owns a simdjson
// parser whose buffers (and a scratch buffer for decoding base64) are allocated at construction
// for max_datagram_bytes, so validate() never allocates and never throws.
class Validator {
public:
    // Throws StartupError when the parser's buffers cannot be allocated.
    explicit Validator(std::size_t max_datagram_bytes = 65536);

    // IMPORTANT: `data` must have at least datagram_padding (SIMDJSON_PADDING) readable bytes after
    // data[len] (the receive slots guarantee this); simdjson reads past the end. `body` in the
    // result points into `data`; `id` and `trace_id` point into this Validator (see Validation).
    [[nodiscard]] Validation validate(const char* data, std::size_t len) noexcept;

    [[nodiscard]] std::size_t max_datagram_bytes() const noexcept { return max_datagram_bytes_; }

private:
    [[nodiscard]] std::string_view check_header(const char* data, std::size_t len) noexcept;
    void check_body(Validation& result) noexcept;

    std::size_t max_datagram_bytes_;
    simdjson::dom::parser parser_;
    std::unique_ptr<unsigned char[]> decoded_;  // base64 of OTLP documents is decoded here
    char id_[segment_id_max]{};
    char trace_id_[segment_trace_id_max]{};
};

}  // namespace xrayd
