// The field numbers of the OTLP trace schema that xrayd reads and writes, from opentelemetry-proto
// (v1.x; numbers never change once published). Debian packages no .proto files for OTLP, so no
// code is generated: the reader and writers use protobuf's wire-format classes with these.
#pragma once

namespace xrayd::otlp::schema {

// opentelemetry/proto/collector/trace/v1/trace_service.proto
namespace export_request {
inline constexpr int resource_spans = 1;  // repeated ResourceSpans
}
namespace export_response {
inline constexpr int partial_success = 1;  // ExportTracePartialSuccess
}
namespace partial_success {
inline constexpr int rejected_spans = 1;  // int64
inline constexpr int error_message = 2;   // string
}  // namespace partial_success

// opentelemetry/proto/trace/v1/trace.proto
namespace resource_spans {
inline constexpr int resource = 1;     // opentelemetry.proto.resource.v1.Resource
inline constexpr int scope_spans = 2;  // repeated ScopeSpans
inline constexpr int schema_url = 3;   // string
}  // namespace resource_spans
namespace scope_spans {
inline constexpr int scope = 1;  // opentelemetry.proto.common.v1.InstrumentationScope
inline constexpr int spans = 2;  // repeated Span
inline constexpr int schema_url = 3;
}  // namespace scope_spans
namespace span {
inline constexpr int trace_id = 1;                   // bytes
inline constexpr int span_id = 2;                    // bytes
inline constexpr int trace_state = 3;                // string
inline constexpr int parent_span_id = 4;             // bytes
inline constexpr int name = 5;                       // string
inline constexpr int kind = 6;                       // enum SpanKind
inline constexpr int start_time_unix_nano = 7;       // fixed64
inline constexpr int end_time_unix_nano = 8;         // fixed64
inline constexpr int attributes = 9;                 // repeated KeyValue
inline constexpr int dropped_attributes_count = 10;  // uint32
inline constexpr int events = 11;                    // repeated Span.Event
inline constexpr int dropped_events_count = 12;      // uint32
inline constexpr int links = 13;                     // repeated Span.Link
inline constexpr int dropped_links_count = 14;       // uint32
inline constexpr int status = 15;                    // Status
inline constexpr int flags = 16;                     // fixed32
}  // namespace span
namespace event {                         // Span.Event
inline constexpr int time_unix_nano = 1;  // fixed64
inline constexpr int name = 2;
inline constexpr int attributes = 3;
inline constexpr int dropped_attributes_count = 4;
}  // namespace event
namespace link {  // Span.Link
inline constexpr int trace_id = 1;
inline constexpr int span_id = 2;
inline constexpr int trace_state = 3;
inline constexpr int attributes = 4;
inline constexpr int dropped_attributes_count = 5;
inline constexpr int flags = 6;  // fixed32
}  // namespace link
namespace status {  // Status (field 1, deprecated_code, is reserved)
inline constexpr int message = 2;
inline constexpr int code = 3;  // enum StatusCode
}  // namespace status

// opentelemetry/proto/resource/v1/resource.proto
namespace resource {
inline constexpr int attributes = 1;
inline constexpr int dropped_attributes_count = 2;
}  // namespace resource

// opentelemetry/proto/common/v1/common.proto
namespace any_value {
inline constexpr int string_value = 1;
inline constexpr int bool_value = 2;
inline constexpr int int_value = 3;     // int64
inline constexpr int double_value = 4;  // double
inline constexpr int array_value = 5;   // ArrayValue
inline constexpr int kvlist_value = 6;  // KeyValueList
inline constexpr int bytes_value = 7;
}  // namespace any_value
namespace array_value {
inline constexpr int values = 1;  // repeated AnyValue
}
namespace key_value_list {
inline constexpr int values = 1;  // repeated KeyValue
}
namespace key_value {
inline constexpr int key = 1;
inline constexpr int value = 2;  // AnyValue
}  // namespace key_value
namespace scope {  // InstrumentationScope
inline constexpr int name = 1;
inline constexpr int version = 2;
inline constexpr int attributes = 3;
inline constexpr int dropped_attributes_count = 4;
}  // namespace scope

// google/rpc/status.proto: the body of a 400.
namespace rpc_status {
inline constexpr int code = 1;     // int32, google.rpc.Code
inline constexpr int message = 2;  // string
}  // namespace rpc_status

}  // namespace xrayd::otlp::schema
