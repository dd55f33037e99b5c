// The bodies of the answers to an OTLP/HTTP export (OTLP/HTTP specification): the success
// reply ExportTraceServiceResponse, with partial_success when spans were refused, and the
// google.rpc.Status of a 400, each in the request's encoding.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <xrayd/otlp/otlp_request.h>

namespace xrayd::otlp {

// google.rpc.Code INVALID_ARGUMENT (google/rpc/code.proto): the code of a 400's Status.
inline constexpr std::int32_t rpc_invalid_argument = 3;
// The codes of the receiver's other refusals (404, 405/415, 413, 500, 503).
inline constexpr std::int32_t rpc_not_found = 5;
inline constexpr std::int32_t rpc_resource_exhausted = 8;
inline constexpr std::int32_t rpc_unimplemented = 12;
inline constexpr std::int32_t rpc_internal = 13;
inline constexpr std::int32_t rpc_unavailable = 14;

// ExportTraceServiceResponse. With no span rejected and no message it is empty (protobuf: no
// bytes; JSON: {}), as the specification asks of a full success; otherwise partial_success
// carries both (JSON: {"partialSuccess":{"rejectedSpans":"N","errorMessage":"..."}}, the int64
// as a string per the protobuf JSON mapping). May throw std::bad_alloc.
[[nodiscard]] std::string export_response(OtlpEncoding encoding, std::uint64_t rejected_spans,
                                          std::string_view error_message);

// What an ExportTraceServiceResponse says (X-Ray's answer to the exporter).
struct PartialSuccess {
    std::uint64_t rejected_spans = 0;
    std::string error_message;
};

// Reads an ExportTraceServiceResponse in `encoding` (an empty body is a full success). Unknown
// fields are skipped; nullopt when the body is not one (the caller then trusts the status code
// alone). JSON's rejectedSpans may be a string (the protobuf JSON mapping) or a number. The
// message is cut to 512 bytes. Never throws.
[[nodiscard]] std::optional<PartialSuccess> read_export_response(OtlpEncoding encoding,
                                                                 std::string_view body) noexcept;

// google.rpc.Status{code, message} (JSON: {"code":3,"message":"..."}), the body of a 400.
// May throw std::bad_alloc.
[[nodiscard]] std::string status_body(OtlpEncoding encoding, std::int32_t code,
                                      std::string_view message);

}  // namespace xrayd::otlp
