// OTLP-over-UDP documents: ADOT's "T1S"/"T1U" prefix + base64 of an ExportTraceServiceRequest.
#pragma once

#include <cstddef>
#include <string_view>

namespace xrayd::otlp_udp {

// The prefixes ADOT's OtlpUdpSpanExporter writes after the header line (sampled / unsampled);
// X-Ray reads them to detect the format.
inline constexpr std::string_view sampled_prefix = "T1S";
inline constexpr std::string_view unsampled_prefix = "T1U";

[[nodiscard]] inline bool has_prefix(std::string_view body) noexcept {
    return body.starts_with(sampled_prefix) || body.starts_with(unsampled_prefix);
}

// Bytes of scratch space check() needs for a body of `body_len` bytes.
[[nodiscard]] constexpr std::size_t scratch_bytes(std::size_t body_len) noexcept {
    return body_len / 4 * 3 + 3;
}

// Checks a body that has_prefix(): what follows the prefix must be standard base64 with padding
// (what ADOT's Java, Python and JS exporters emit: Base64.getEncoder(), base64.b64encode,
// Buffer.toString('base64')), no whitespace or line breaks, decoding to at least one byte that
// starts like an ExportTraceServiceRequest (see otlp_udp.cpp). Returns an empty view when it
// is acceptable, else a static description of the problem (never document bytes).
// `scratch` must hold scratch_bytes(body.size()) bytes; it receives the decoded bytes. Never
// allocates, never throws; any thread.
[[nodiscard]] std::string_view check(std::string_view body, unsigned char* scratch) noexcept;

}  // namespace xrayd::otlp_udp
