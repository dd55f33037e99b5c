// The OTLP/HTTP answers: ExportTraceServiceResponse and google.rpc.Status.
#include <xrayd/otlp/otlp_response.h>

#include <algorithm>
#include <charconv>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <simdjson.h>

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

namespace {

constexpr std::size_t max_error_message = 512;

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

// ExportTracePartialSuccess's fields; false on a malformed message.
bool read_partial(CodedInputStream& in, PartialSuccess& out) {
    while (const std::uint32_t tag = in.ReadTag()) {
        const int field = WireFormatLite::GetTagFieldNumber(tag);
        const auto type = WireFormatLite::GetTagWireType(tag);
        if (field == schema::partial_success::rejected_spans &&
            type == WireFormatLite::WIRETYPE_VARINT) {
            std::uint64_t v = 0;
            if (!in.ReadVarint64(&v)) {
                return false;
            }
            // int64 on the wire: a negative count is nonsense, read as none.
            out.rejected_spans = static_cast<std::int64_t>(v) < 0 ? 0 : v;
        } else if (field == schema::partial_success::error_message &&
                   type == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
            std::uint32_t length = 0;
            if (!in.ReadVarint32(&length)) {
                return false;
            }
            const std::uint32_t keep =
                std::min<std::uint32_t>(length, static_cast<std::uint32_t>(max_error_message));
            if (!in.ReadString(&out.error_message, static_cast<int>(keep)) ||
                !in.Skip(static_cast<int>(length - keep))) {
                return false;
            }
        } else if (!WireFormatLite::SkipField(&in, tag)) {
            return false;
        }
    }
    return in.ConsumedEntireMessage();
}

std::optional<PartialSuccess> read_protobuf_response(std::string_view body) {
    PartialSuccess out;
    CodedInputStream in(reinterpret_cast<const std::uint8_t*>(body.data()),
                        static_cast<int>(body.size()));
    while (const std::uint32_t tag = in.ReadTag()) {
        if (WireFormatLite::GetTagFieldNumber(tag) == schema::export_response::partial_success &&
            WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
            std::uint32_t length = 0;
            if (!in.ReadVarint32(&length)) {
                return std::nullopt;
            }
            const auto limit = in.PushLimit(static_cast<int>(length));
            if (!read_partial(in, out) || in.BytesUntilLimit() != 0) {
                return std::nullopt;
            }
            in.PopLimit(limit);
        } else if (!WireFormatLite::SkipField(&in, tag)) {
            return std::nullopt;
        }
    }
    if (!in.ConsumedEntireMessage() || in.CurrentPosition() != static_cast<int>(body.size())) {
        return std::nullopt;
    }
    return out;
}

std::optional<PartialSuccess> read_json_response(std::string_view body) {
    PartialSuccess out;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
        return std::nullopt;
    }
    simdjson::dom::element partial;
    if (doc["partialSuccess"].get(partial) != simdjson::SUCCESS || partial.is_null()) {
        return out;
    }
    simdjson::dom::element rejected;
    if (partial["rejectedSpans"].get(rejected) == simdjson::SUCCESS) {
        std::int64_t n = 0;
        std::string_view text;
        if (rejected.get_int64().get(n) == simdjson::SUCCESS) {
            out.rejected_spans = n < 0 ? 0 : static_cast<std::uint64_t>(n);
        } else if (rejected.get_string().get(text) == simdjson::SUCCESS) {
            std::uint64_t v = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
            if (ec != std::errc() || end != text.data() + text.size()) {
                return std::nullopt;
            }
            out.rejected_spans = v;
        } else if (!rejected.is_null()) {
            return std::nullopt;
        }
    }
    std::string_view message;
    if (partial["errorMessage"].get_string().get(message) == simdjson::SUCCESS) {
        out.error_message.assign(message.substr(0, max_error_message));
    }
    return out;
}

}  // namespace

std::optional<PartialSuccess> read_export_response(OtlpEncoding encoding,
                                                   std::string_view body) noexcept {
    try {
        if (body.empty()) {
            return PartialSuccess{};
        }
        if (body.size() > (1u << 20)) {
            return std::nullopt;
        }
        return encoding == OtlpEncoding::protobuf ? read_protobuf_response(body)
                                                  : read_json_response(body);
    } catch (...) {
        return std::nullopt;
    }
}

}  // namespace xrayd::otlp
