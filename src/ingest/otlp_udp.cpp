// OTLP-over-UDP documents: base64 checked by OpenSSL's decoder, then one protobuf tag peeked at.
#include "otlp_udp.h"

#include <climits>

#include <openssl/evp.h>

namespace xrayd::otlp_udp {

namespace {

// ExportTraceServiceRequest has one field, 1 `repeated ResourceSpans resource_spans`, so its
// encoding starts with the tag of field 1, wire type 2 (length-delimited): (1 << 3) | 2.
// Serializers write known fields in field-number order and there is no lower number, so every
// non-empty request from an OTLP SDK starts with this byte. Peeking at it costs nothing (the
// bytes are decoded anyway) and tells the base64 of an OTLP request apart from the base64 of
// anything else (JSON would start with '{', 0x7b). The rest is X-Ray's to parse.
constexpr unsigned char resource_spans_tag = 0x0a;

}  // namespace

std::string_view check(std::string_view body, unsigned char* scratch) noexcept {
    const std::string_view text = body.substr(sampled_prefix.size());
    if (text.empty()) {
        return "nothing after the OTLP prefix";
    }
    if (text.size() % 4 != 0 || text.size() > INT_MAX) {
        return "OTLP payload is not padded base64 (length not a multiple of 4)";
    }
    // EVP_DecodeBlock checks the alphabet but maps '=' to zero anywhere and trims whitespace at
    // both ends; padding may only end the text.
    std::size_t padding = 0;
    if (const std::size_t eq = text.find('='); eq != std::string_view::npos) {
        padding = text.size() - eq;
        if (padding > 2 || text.find_first_not_of('=', eq) != std::string_view::npos) {
            return "OTLP payload is not base64 ('=' before the end)";
        }
    }
    const int decoded =
        EVP_DecodeBlock(scratch, reinterpret_cast<const unsigned char*>(text.data()),
                        static_cast<int>(text.size()));
    // A shorter output than 3 bytes per 4 characters means OpenSSL trimmed whitespace.
    if (decoded < 0 || static_cast<std::size_t>(decoded) != text.size() / 4 * 3) {
        return "OTLP payload is not base64 (standard alphabet, padded, no whitespace)";
    }
    // At least 1 byte (4 characters, at most 2 of them padding); a tag needs a length after it.
    const std::size_t length = static_cast<std::size_t>(decoded) - padding;
    if (length < 2 || scratch[0] != resource_spans_tag) {
        return "OTLP payload is not an ExportTraceServiceRequest (no resource_spans first)";
    }
    return {};
}

}  // namespace xrayd::otlp_udp
