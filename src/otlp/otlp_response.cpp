// The OTLP/HTTP answers: ExportTraceServiceResponse and google.rpc.Status.
#include <xrayd/otlp/otlp_response.h>

#include <fmt/format.h>

#include <xrayd/common/json_text.h>

#include "otlp_schema.h"
#include "wire_write.h"

namespace xrayd::otlp {

std::string export_response(OtlpEncoding encoding, std::uint64_t rejected_spans,
                            std::string_view error_message) {
    std::string out;
    if (rejected_spans == 0 && error_message.empty()) {
        return encoding == OtlpEncoding::protobuf ? out : std::string("{}");
    }
    if (encoding == OtlpEncoding::protobuf) {
        std::string partial;
        if (rejected_spans != 0) {
            wire::append_varint_field(partial, schema::partial_success::rejected_spans,
                                      rejected_spans);
        }
        if (!error_message.empty()) {
            wire::append_len_field(partial, schema::partial_success::error_message, error_message);
        }
        wire::append_len_field(out, schema::export_response::partial_success, partial);
        return out;
    }
    out = R"({"partialSuccess":{)";
    if (rejected_spans != 0) {
        out += fmt::format(R"("rejectedSpans":"{}")", rejected_spans);
    }
    if (!error_message.empty()) {
        out += rejected_spans != 0 ? R"(,"errorMessage":)" : R"("errorMessage":)";
        append_json_string(out, error_message);
    }
    out += "}}";
    return out;
}

std::string status_body(OtlpEncoding encoding, std::int32_t code, std::string_view message) {
    std::string out;
    if (encoding == OtlpEncoding::protobuf) {
        if (code != 0) {  // proto3 leaves default values out
            // int32 is sign-extended to 64 bits on the wire.
            wire::append_varint_field(out, schema::rpc_status::code,
                                      static_cast<std::uint64_t>(static_cast<std::int64_t>(code)));
        }
        if (!message.empty()) {
            wire::append_len_field(out, schema::rpc_status::message, message);
        }
        return out;
    }
    out = fmt::format(R"({{"code":{},"message":)", code);
    append_json_string(out, message);
    out += '}';
    return out;
}

}  // namespace xrayd::otlp
