// The protobuf reader of OTLP export requests: the schema walk with protobuf's wire-format
// reader (CodedInputStream, WireFormatLite), exact span counts, refused spans re-encoded out.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <new>
#include <optional>
#include <span>

#include "otlp_schema.h"
#include "request_readers.h"
#include "wire_write.h"

namespace xrayd::otlp {

namespace {

using google::protobuf::io::CodedInputStream;
using WireFormatLite = google::protobuf::internal::WireFormatLite;
using WireType = WireFormatLite::WireType;
constexpr WireType len_type = WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
constexpr WireType varint_type = WireFormatLite::WIRETYPE_VARINT;
constexpr WireType fixed64_type = WireFormatLite::WIRETYPE_FIXED64;
constexpr WireType fixed32_type = WireFormatLite::WIRETYPE_FIXED32;

// The message types of the schema the reader walks into.
enum class Kind {
    none,  // a scalar, string or bytes: nothing to walk into
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
};

// One known field: its number, the wire type the schema gives it, and its message type.
struct FieldRule {
    int number;
    WireType wire;
    Kind child;
};

namespace s = schema;
constexpr FieldRule request_rules[] = {
    {s::export_request::resource_spans, len_type, Kind::resource_spans}};
constexpr FieldRule resource_spans_rules[] = {
    {s::resource_spans::resource, len_type, Kind::resource},
    {s::resource_spans::scope_spans, len_type, Kind::scope_spans},
    {s::resource_spans::schema_url, len_type, Kind::none}};
constexpr FieldRule resource_rules[] = {
    {s::resource::attributes, len_type, Kind::key_value},
    {s::resource::dropped_attributes_count, varint_type, Kind::none}};
constexpr FieldRule scope_spans_rules[] = {{s::scope_spans::scope, len_type, Kind::scope},
                                           {s::scope_spans::spans, len_type, Kind::span},
                                           {s::scope_spans::schema_url, len_type, Kind::none}};
constexpr FieldRule scope_rules[] = {{s::scope::name, len_type, Kind::none},
                                     {s::scope::version, len_type, Kind::none},
                                     {s::scope::attributes, len_type, Kind::key_value},
                                     {s::scope::dropped_attributes_count, varint_type, Kind::none}};
constexpr FieldRule span_rules[] = {{s::span::trace_id, len_type, Kind::none},
                                    {s::span::span_id, len_type, Kind::none},
                                    {s::span::trace_state, len_type, Kind::none},
                                    {s::span::parent_span_id, len_type, Kind::none},
                                    {s::span::name, len_type, Kind::none},
                                    {s::span::kind, varint_type, Kind::none},
                                    {s::span::start_time_unix_nano, fixed64_type, Kind::none},
                                    {s::span::end_time_unix_nano, fixed64_type, Kind::none},
                                    {s::span::attributes, len_type, Kind::key_value},
                                    {s::span::dropped_attributes_count, varint_type, Kind::none},
                                    {s::span::events, len_type, Kind::event},
                                    {s::span::dropped_events_count, varint_type, Kind::none},
                                    {s::span::links, len_type, Kind::link},
                                    {s::span::dropped_links_count, varint_type, Kind::none},
                                    {s::span::status, len_type, Kind::status},
                                    {s::span::flags, fixed32_type, Kind::none}};
constexpr FieldRule event_rules[] = {{s::event::time_unix_nano, fixed64_type, Kind::none},
                                     {s::event::name, len_type, Kind::none},
                                     {s::event::attributes, len_type, Kind::key_value},
                                     {s::event::dropped_attributes_count, varint_type, Kind::none}};
constexpr FieldRule link_rules[] = {{s::link::trace_id, len_type, Kind::none},
                                    {s::link::span_id, len_type, Kind::none},
                                    {s::link::trace_state, len_type, Kind::none},
                                    {s::link::attributes, len_type, Kind::key_value},
                                    {s::link::dropped_attributes_count, varint_type, Kind::none},
                                    {s::link::flags, fixed32_type, Kind::none}};
constexpr FieldRule status_rules[] = {{s::status::message, len_type, Kind::none},
                                      {s::status::code, varint_type, Kind::none}};
constexpr FieldRule key_value_rules[] = {{s::key_value::key, len_type, Kind::none},
                                         {s::key_value::value, len_type, Kind::any_value}};
constexpr FieldRule any_value_rules[] = {
    {s::any_value::string_value, len_type, Kind::none},
    {s::any_value::bool_value, varint_type, Kind::none},
    {s::any_value::int_value, varint_type, Kind::none},
    {s::any_value::double_value, fixed64_type, Kind::none},
    {s::any_value::array_value, len_type, Kind::array_value},
    {s::any_value::kvlist_value, len_type, Kind::key_value_list},
    {s::any_value::bytes_value, len_type, Kind::none}};
constexpr FieldRule array_value_rules[] = {{s::array_value::values, len_type, Kind::any_value}};
constexpr FieldRule key_value_list_rules[] = {
    {s::key_value_list::values, len_type, Kind::key_value}};

std::span<const FieldRule> rules_of(Kind kind) noexcept {
    switch (kind) {
    case Kind::none: return {};
    case Kind::request: return request_rules;
    case Kind::resource_spans: return resource_spans_rules;
    case Kind::resource: return resource_rules;
    case Kind::scope_spans: return scope_spans_rules;
    case Kind::scope: return scope_rules;
    case Kind::span: return span_rules;
    case Kind::event: return event_rules;
    case Kind::link: return link_rules;
    case Kind::status: return status_rules;
    case Kind::key_value: return key_value_rules;
    case Kind::any_value: return any_value_rules;
    case Kind::array_value: return array_value_rules;
    case Kind::key_value_list: return key_value_list_rules;
    }
    return {};
}

// One field as read from the wire: `whole` is its tag through its end; `payload` the bytes of a
// length-delimited field (empty for other wire types).
struct RawField {
    int number = 0;
    WireType wire = varint_type;
    std::string_view whole;
    std::string_view payload;
};

// Reads the fields of one message in order and hands each to `on_field`, which returns
// std::nullopt to go on or an error to stop. Unknown wire-type payloads (varints, fixed, groups)
// are skipped by protobuf's SkipField, which bounds group nesting by its recursion limit.
// Not noexcept: `on_field` appends to strings and vectors, and the std::bad_alloc it may throw
// must reach read_export_request's handler rather than std::terminate.
template <typename OnField>
std::optional<OtlpErrc> for_each_field(std::string_view message, OnField&& on_field) {
    const auto* data = reinterpret_cast<const std::uint8_t*>(message.data());
    const int size = static_cast<int>(message.size());  // callers checked it fits an int
    CodedInputStream in(data, size);
    while (in.CurrentPosition() < size) {
        const int start = in.CurrentPosition();
        const std::uint32_t tag = in.ReadTag();
        if (tag == 0) {
            return in.CurrentPosition() >= size ? OtlpErrc::truncated : OtlpErrc::malformed;
        }
        RawField field;
        field.number = WireFormatLite::GetTagFieldNumber(tag);
        field.wire = WireFormatLite::GetTagWireType(tag);
        if (field.number == 0) {
            return OtlpErrc::malformed;
        }
        if (field.wire == len_type) {
            std::uint32_t length = 0;
            if (!in.ReadVarint32(&length)) {
                return OtlpErrc::truncated;
            }
            const int payload_start = in.CurrentPosition();
            if (length > static_cast<std::uint32_t>(size - payload_start)) {
                return OtlpErrc::truncated;
            }
            (void)in.Skip(static_cast<int>(length));
            field.payload = message.substr(static_cast<std::size_t>(payload_start), length);
        } else if (field.wire == WireFormatLite::WIRETYPE_END_GROUP ||
                   field.wire > WireFormatLite::WIRETYPE_FIXED32) {
            return OtlpErrc::malformed;
        } else if (!WireFormatLite::SkipField(&in, tag)) {
            return OtlpErrc::truncated;
        }
        field.whole = message.substr(static_cast<std::size_t>(start),
                                     static_cast<std::size_t>(in.CurrentPosition() - start));
        if (auto stop = on_field(field)) {
            return stop;
        }
    }
    return std::nullopt;
}

// Walks a protobuf request: checks every message of the schema, counts spans, marks the ones
// over the span limit and collects the parts.
class ProtobufWalker {
public:
    // `body` is the whole request: parts are offsets into it.
    ProtobufWalker(std::string_view body, const OtlpLimits& limits, OtlpExportRequest& out) noexcept
        : body_(body), limits_(limits), out_(out) {}

    std::optional<OtlpErrc> walk(Kind kind, std::string_view message, int depth) {
        if (depth > max_nesting) {
            return OtlpErrc::too_deep;
        }
        const std::span<const FieldRule> rules = rules_of(kind);
        return for_each_field(message, [&](const RawField& field) -> std::optional<OtlpErrc> {
            const FieldRule* rule = nullptr;
            for (const FieldRule& r : rules) {
                if (r.number == field.number) {
                    rule = &r;
                    break;
                }
            }
            if (rule == nullptr) {
                return std::nullopt;  // a field of a newer schema
            }
            if (field.wire != rule->wire) {
                return OtlpErrc::wrong_wire_type;
            }
            if (rule->child == Kind::none) {
                return std::nullopt;
            }
            if (rule->child == Kind::resource_spans) {
                return resource_spans(field, depth + 1);
            }
            if (rule->child == Kind::span) {
                ++out_.spans;
                ++part_spans_;
                if (field.payload.size() > limits_.max_span_bytes) {
                    ++out_.refused_spans;
                    ++part_refused_;
                }
            }
            return walk(rule->child, field.payload, depth + 1);
        });
    }

private:
    std::optional<OtlpErrc> resource_spans(const RawField& field, int depth) {
        ++out_.resource_spans;
        part_spans_ = 0;
        part_refused_ = 0;
        if (auto error = walk(Kind::resource_spans, field.payload, depth)) {
            return error;
        }
        const std::size_t kept = part_spans_ - part_refused_;
        if (kept == 0) {
            return std::nullopt;
        }
        OtlpPart part;
        part.spans = kept;
        if (part_refused_ == 0) {
            part.offset = static_cast<std::size_t>(field.whole.data() - body_.data());
            part.length = field.whole.size();
        } else {
            part.rebuilt = true;
            part.offset = out_.rebuilt.size();
            wire::append_len_field(out_.rebuilt, schema::export_request::resource_spans,
                                   without_refused(field.payload));
            part.length = out_.rebuilt.size() - part.offset;
        }
        out_.parts.push_back(part);
        return std::nullopt;
    }

    // The resource_spans message re-encoded without its spans over the limit: every field is
    // copied as it came, but the scope_spans that held a refused span, which is re-encoded.
    // The message was walked already, so it is well formed.
    std::string without_refused(std::string_view resource_spans) {
        std::string kept;
        (void)for_each_field(resource_spans, [&](const RawField& field) -> std::optional<OtlpErrc> {
            if (field.number != schema::resource_spans::scope_spans || field.wire != len_type) {
                kept += field.whole;
                return std::nullopt;
            }
            std::string scope;
            bool refused = false;
            (void)for_each_field(field.payload, [&](const RawField& inner) {
                if (inner.number == schema::scope_spans::spans && inner.wire == len_type &&
                    inner.payload.size() > limits_.max_span_bytes) {
                    refused = true;
                } else {
                    scope += inner.whole;
                }
                return std::optional<OtlpErrc>{};
            });
            if (refused) {
                wire::append_len_field(kept, schema::resource_spans::scope_spans, scope);
            } else {
                kept += field.whole;
            }
            return std::nullopt;
        });
        return kept;
    }

    std::string_view body_;
    const OtlpLimits& limits_;
    OtlpExportRequest& out_;
    std::size_t part_spans_ = 0;
    std::size_t part_refused_ = 0;
};

}  // namespace

Result<OtlpExportRequest, OtlpErrc> read_protobuf(std::string_view body, const OtlpLimits& limits) {
    if (body.size() >= static_cast<std::size_t>(INT_MAX)) {
        return fail(OtlpErrc::too_large);
    }
    OtlpExportRequest out;
    out.encoding = OtlpEncoding::protobuf;
    ProtobufWalker walker(body, limits, out);
    if (auto error = walker.walk(Kind::request, body, 0)) {
        return fail(*error);
    }
    return out;
}

}  // namespace xrayd::otlp
