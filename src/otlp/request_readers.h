// Private to otlp/: the two readers read_export_request() picks between. Each checks a body of
// its encoding against the schema, counts its spans and keeps its resource_spans for merging
// (see otlp_request.h). They may throw std::bad_alloc; read_export_request() catches it.
#pragma once

#include <string_view>

#include <xrayd/common/result.h>
#include <xrayd/otlp/otlp_request.h>

namespace xrayd::otlp {

// otlp_protobuf_reader.cpp: protobuf's wire-format reader against the published field numbers.
[[nodiscard]] Result<OtlpExportRequest, OtlpErrc> read_protobuf(std::string_view body,
                                                                const OtlpLimits& limits);

// otlp_json_reader.cpp: OTLP/JSON, validated by simdjson.
[[nodiscard]] Result<OtlpExportRequest, OtlpErrc> read_json(std::string_view body,
                                                            const OtlpLimits& limits);

}  // namespace xrayd::otlp
