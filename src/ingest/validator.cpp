// Validator: header check (Go's rules, spec §3.2) and whole-document segment check with simdjson.
#include <xrayd/ingest/validator.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#include <xrayd/common/startup_error.h>

#include "otlp_udp.h"

namespace xrayd {

namespace {

namespace dom = simdjson::dom;

constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";
// U+017F LATIN SMALL LETTER LONG S: Go's case folding (bytes.EqualFold) treats it as 's'.
constexpr std::string_view long_s = "\xC5\xBF";

[[nodiscard]] constexpr char ascii_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Go's EqualFold restricted to a lower-case ASCII `target`: the only non-ASCII characters whose
// simple case folding reaches an ASCII letter are U+212A (k) and U+017F (s), and our targets
// ("format", "version", "json") contain no 'k'.
[[nodiscard]] bool go_fold_equal(std::string_view s, std::string_view target) noexcept {
    std::size_t i = 0;
    for (const char t : target) {
        if (i < s.size() && ascii_lower(s[i]) == t) {
            ++i;
        } else if (t == 's' && s.substr(i, long_s.size()) == long_s) {
            i += long_s.size();
        } else {
            return false;
        }
    }
    return i == s.size();
}

[[nodiscard]] bool starts_with_bom(const char* data, std::size_t len) noexcept {
    return std::string_view(data, len).starts_with(utf8_bom);
}

// A table: three range comparisons cost 12 instructions a byte (callgrind), a lookup half that.
constexpr std::array<bool, 256> hex_digits = [] {
    std::array<bool, 256> table{};
    for (const std::string_view range : {"09", "af", "AF"}) {
        for (char c = range[0]; c <= range[1]; ++c) {
            table[static_cast<unsigned char>(c)] = true;
        }
    }
    return table;
}();

[[nodiscard]] constexpr bool is_hex(char c) noexcept {
    return hex_digits[static_cast<unsigned char>(c)];
}

// A loop, not std::all_of(..., is_hex): g++ 12 calls is_hex through the pointer for each byte
// (20 instructions a byte, 800 a segment for its ids; callgrind).
[[nodiscard]] bool all_hex(std::string_view s) noexcept {
    for (const char c : s) {
        if (!is_hex(c)) {
            return false;
        }
    }
    return true;
}

[[nodiscard]] bool is_segment_id(std::string_view s) noexcept {
    return s.size() == segment_id_max && all_hex(s);
}

// "1-" 8 hex "-" 24 hex.
[[nodiscard]] bool is_trace_id(std::string_view s) noexcept {
    return s.size() == segment_trace_id_max && s[0] == '1' && s[1] == '-' && s[10] == '-' &&
           all_hex(s.substr(2, 8)) && all_hex(s.substr(11, 24));
}

// The top-level members the body check looks at.
enum Field : std::uint8_t {
    f_name,
    f_id,
    f_trace_id,
    f_start_time,
    f_end_time,
    f_in_progress,
    f_type,
    f_parent_id,
    field_count
};

constexpr std::array<std::string_view, field_count> field_names = {
    "name", "id", "trace_id", "start_time", "end_time", "in_progress", "type", "parent_id"};

[[nodiscard]] std::string_view as_string(dom::element e) noexcept {
    std::string_view s;
    if (e.get(s) != simdjson::SUCCESS) {
        return {};
    }
    return s;
}

[[nodiscard]] bool is_string(dom::element e) noexcept {
    return e.type() == dom::element_type::STRING;
}

[[nodiscard]] bool is_true(dom::element e) noexcept {
    bool b = false;
    return e.get(b) == simdjson::SUCCESS && b;
}

// Copies `s` (cut to `cap` bytes) into `buf` and returns a view of the copy.
[[nodiscard]] std::string_view keep(char* buf, std::size_t cap, std::string_view s) noexcept {
    const std::size_t n = std::min(cap, s.size());
    std::memcpy(buf, s.data(), n);
    return {buf, n};
}

}  // namespace

std::string_view to_string(Verdict v) noexcept {
    switch (v) {
    case Verdict::accepted: return "accepted";
    case Verdict::accepted_otlp_udp: return "accepted otlp udp";
    case Verdict::missing_header: return "missing header";
    case Verdict::bad_header: return "bad header";
    case Verdict::missing_body: return "missing body";
    case Verdict::bad_json: return "bad json";
    case Verdict::invalid_segment: return "invalid segment";
    case Verdict::too_large: return "too large";
    case Verdict::bad_otlp_udp: return "bad otlp udp";
    }
    return "unknown";
}

Validator::Validator(std::size_t max_datagram_bytes)
    : max_datagram_bytes_(max_datagram_bytes),
      parser_(max_datagram_bytes),
      decoded_(new unsigned char[otlp_udp::scratch_bytes(max_datagram_bytes)]) {
    // Allocate once for the largest document so that parse() never needs to grow.
    if (const auto err = parser_.allocate(std::max<std::size_t>(max_datagram_bytes, 1));
        err != simdjson::SUCCESS) {
        throw StartupError("cannot allocate the JSON parser for " +
                           std::to_string(max_datagram_bytes) +
                           "-byte datagrams: " + simdjson::error_message(err));
    }
}

Validation Validator::validate(const char* data, std::size_t len) noexcept {
    Validation result;
    if (len > max_datagram_bytes_) [[unlikely]] {
        result.verdict = Verdict::too_large;
        result.problem = "datagram larger than the maximum size";
        return result;
    }
    const void* lf = len == 0 ? nullptr : std::memchr(data, '\n', len);
    if (lf == nullptr) [[unlikely]] {
        result.verdict = Verdict::missing_header;
        result.problem = "no LF after the header";
        return result;
    }
    const auto header_len = static_cast<std::size_t>(static_cast<const char*>(lf) - data);
    result.body = std::string_view(data + header_len + 1, len - header_len - 1);
    // Checked before the header, as the Go daemon does (spec §3.2 step 6 before step 7).
    if (result.body.empty()) [[unlikely]] {
        result.verdict = Verdict::missing_body;
        result.problem = "nothing after the header";
        return result;
    }
    // The header ends before the body, so the padding contract holds for it too. Its values are
    // reduced to verdicts before the body is parsed (the parser reuses its memory).
    if (const std::string_view problem = check_header(data, header_len); !problem.empty()) {
        result.verdict = Verdict::bad_header;
        result.problem = problem;
        return result;
    }
    if (otlp_udp::has_prefix(result.body)) {
        result.problem = otlp_udp::check(result.body, decoded_.get());
        result.verdict =
            result.problem.empty() ? Verdict::accepted_otlp_udp : Verdict::bad_otlp_udp;
        return result;
    }
    check_body(result);
    return result;
}

std::string_view Validator::check_header(const char* data, std::size_t len) noexcept {
    // The X-Ray SDKs send one of two spellings, byte for byte: the documented one and the Node
    // SDK's without spaces. Both pass the checks below; comparing costs about 20 instructions,
    // parsing and checking them about 1 100 (callgrind).
    const std::string_view header(data, len);
    if (header == R"({"format": "json", "version": 1})" ||
        header == R"({"format":"json","version":1})") [[likely]] {
        return {};
    }
    // simdjson 3.0 rejects a BOM itself; say so explicitly and do not depend on that.
    if (starts_with_bom(data, len)) {
        return "header starts with a UTF-8 byte order mark";
    }
    dom::element root;
    if (parser_.parse(data, len, false).get(root) != simdjson::SUCCESS) {
        return "header is not one valid JSON value";
    }
    dom::object obj;
    if (root.get(obj) != simdjson::SUCCESS) {
        return "header is not a JSON object";
    }
    // Go decodes members in order; one of the wrong type (or null) does not change the field.
    bool format_ok = false;
    bool version_ok = false;
    for (const dom::key_value_pair member : obj) {
        if (go_fold_equal(member.key, "format")) {
            std::string_view format;
            if (member.value.get(format) == simdjson::SUCCESS) {
                format_ok = go_fold_equal(format, "json");
            }
        } else if (go_fold_equal(member.key, "version")) {
            // simdjson types a plain integer literal as INT64 (UINT64 beyond that, which Go's
            // int also refuses); 1.0 and 1e0 are DOUBLE, which Go refuses for an int field.
            if (member.value.type() == dom::element_type::INT64) {
                std::int64_t version = 0;
                version_ok = member.value.get(version) == simdjson::SUCCESS && version == 1;
            }
        }
    }
    if (!format_ok) {
        return "header \"format\" is not \"json\"";
    }
    if (!version_ok) {
        return "header \"version\" is not the integer 1";
    }
    return {};
}

void Validator::check_body(Validation& result) noexcept {
    const std::string_view body = result.body;
    result.verdict = Verdict::bad_json;
    if (starts_with_bom(body.data(), body.size())) {
        result.problem = "document starts with a UTF-8 byte order mark";
        return;
    }
    dom::element root;
    if (const auto err = parser_.parse(body.data(), body.size(), false).get(root);
        err != simdjson::SUCCESS) {
        result.problem = simdjson::error_message(err);
        return;
    }
    dom::object obj;
    if (root.get(obj) != simdjson::SUCCESS) {
        result.problem = "document is not a JSON object";
        return;
    }

    std::array<dom::element, field_count> fields{};
    std::array<bool, field_count> present{};
    for (const dom::key_value_pair member : obj) {
        for (std::size_t f = 0; f < field_count; ++f) {
            if (member.key == field_names[f]) {
                fields[f] = member.value;  // last duplicate wins
                present[f] = true;
                break;
            }
        }
    }

    // Keep id and trace_id (before judging them) so that rejections can be logged usefully.
    if (present[f_id] && is_string(fields[f_id])) {
        result.id = keep(id_, sizeof(id_), as_string(fields[f_id]));
    }
    if (present[f_trace_id] && is_string(fields[f_trace_id])) {
        result.trace_id = keep(trace_id_, sizeof(trace_id_), as_string(fields[f_trace_id]));
    }

    result.verdict = Verdict::invalid_segment;
    if (!present[f_name]) {
        result.problem = "missing field \"name\"";
    } else if (as_string(fields[f_name]).empty()) {
        result.problem = "\"name\" is not a non-empty string";
    } else if (!present[f_id]) {
        result.problem = "missing field \"id\"";
    } else if (!is_string(fields[f_id]) || !is_segment_id(as_string(fields[f_id]))) {
        result.problem = "\"id\" is not 16 hex digits";
    } else if (!present[f_trace_id]) {
        result.problem = "missing field \"trace_id\"";
    } else if (!is_string(fields[f_trace_id]) || !is_trace_id(as_string(fields[f_trace_id]))) {
        result.problem = "\"trace_id\" is not 1-<8 hex digits>-<24 hex digits>";
    } else if (!present[f_start_time]) {
        result.problem = "missing field \"start_time\"";
    } else if (!fields[f_start_time].is_number()) {
        result.problem = "\"start_time\" is not a number";
    } else if (present[f_end_time] && !fields[f_end_time].is_number()) {
        result.problem = "\"end_time\" is not a number";
    } else if (!present[f_end_time] &&
               !(present[f_in_progress] && is_true(fields[f_in_progress]))) {
        result.problem = "missing field \"end_time\" (and \"in_progress\" is not true)";
    } else if (present[f_parent_id] && (!is_string(fields[f_parent_id]) ||
                                        !is_segment_id(as_string(fields[f_parent_id])))) {
        result.problem = "\"parent_id\" is not 16 hex digits";
    } else if (!present[f_parent_id] && present[f_type] &&
               as_string(fields[f_type]) == "subsegment") {
        result.problem = "missing field \"parent_id\" (required in a subsegment)";
    } else {
        result.verdict = Verdict::accepted;
        result.problem = {};
    }
}

}  // namespace xrayd
