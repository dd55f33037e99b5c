// Appending protobuf fields to a std::string with protobuf's own encoders (tags and varints),
// for the few messages xrayd writes: re-encoded resource_spans, responses, statuses.
#pragma once

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace xrayd::otlp::wire {

using WireFormatLite = google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedOutputStream;

// The largest tag and length prefix: two varints of at most 5 bytes (32 bits) each.
inline constexpr std::size_t max_prefix = 10;

// Appends a length-delimited field (a message, string or bytes). May throw std::bad_alloc.
inline void append_len_field(std::string& out, int number, std::string_view payload) {
    std::uint8_t head[max_prefix];
    std::uint8_t* end = CodedOutputStream::WriteTagToArray(
        WireFormatLite::MakeTag(number, WireFormatLite::WIRETYPE_LENGTH_DELIMITED), head);
    end = CodedOutputStream::WriteVarint32ToArray(static_cast<std::uint32_t>(payload.size()), end);
    out.append(reinterpret_cast<const char*>(head), static_cast<std::size_t>(end - head));
    out.append(payload);
}

// Appends a varint field (int32, int64, uint64, enum, bool). Negative int32/int64 values are
// sign-extended to 64 bits, as protobuf encodes them. May throw std::bad_alloc.
inline void append_varint_field(std::string& out, int number, std::uint64_t value) {
    std::uint8_t head[5 + 10];
    std::uint8_t* end = CodedOutputStream::WriteTagToArray(
        WireFormatLite::MakeTag(number, WireFormatLite::WIRETYPE_VARINT), head);
    end = CodedOutputStream::WriteVarint64ToArray(value, end);
    out.append(reinterpret_cast<const char*>(head), static_cast<std::size_t>(end - head));
}

}  // namespace xrayd::otlp::wire
