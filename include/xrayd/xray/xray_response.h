// Parsing of X-Ray's PutTraceSegments responses: unprocessed segments and error bodies.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <xrayd/common/result.h>

namespace xrayd {

// One element of `UnprocessedTraceSegments`. Any field may be missing or null in X-Ray's
// answer; a missing one is empty here (`has_id` tells a missing Id from an empty one).
struct UnprocessedSegment {
    std::string id;
    std::string error_code;
    std::string message;
    bool has_id = false;
};

enum class ResponseErrc {
    not_json,         // the body is not JSON
    not_object,       // the body is JSON but not an object
    bad_unprocessed,  // UnprocessedTraceSegments is neither an array nor null
    out_of_memory,
};

[[nodiscard]] std::string_view to_string(ResponseErrc errc) noexcept;

// Parses a 2xx PutTraceSegments body into `out` (cleared first). A missing or null
// UnprocessedTraceSegments means none; non-object elements are skipped. At most `max_items`
// are read (the uploader passes the batch's segment count: X-Ray cannot name more, and a
// hostile answer with thousands must not cost thousands of log lines); `*ignored` (if given)
// gets the number of elements past that.
// `parser` is reused across calls (one per thread). Never throws.
[[nodiscard]] Result<void, ResponseErrc> parse_unprocessed_segments(
    simdjson::dom::parser& parser, std::string_view body, std::vector<UnprocessedSegment>& out,
    std::size_t max_items = SIZE_MAX, std::size_t* ignored = nullptr) noexcept;

// X-Ray's error, from a non-2xx body (`__type` or `code`, `message` or `Message`) and the
// x-amzn-ErrorType header. Fields are empty when absent or when the body is not JSON.
struct XRayError {
    std::string type;  // bare name: "ThrottlingException", "InvalidRequestException", ...
    std::string message;
};

// `header_type` is the x-amzn-ErrorType header (may be empty); the body's type wins when both
// exist. Qualified names are reduced to the bare name. Never throws.
[[nodiscard]] XRayError parse_error_response(simdjson::dom::parser& parser, std::string_view body,
                                             std::string_view header_type) noexcept;

}  // namespace xrayd
