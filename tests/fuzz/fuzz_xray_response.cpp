// libFuzzer target: PutTraceSegments response bodies (UnprocessedTraceSegments and error bodies).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include <xrayd/xray/xray_response.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // One parser reused across inputs, as an uploader thread does.
    static simdjson::dom::parser parser;
    static std::vector<xrayd::UnprocessedSegment> out;
    const std::string_view body(reinterpret_cast<const char*>(data), size);

    (void)xrayd::parse_unprocessed_segments(parser, body, out);
    for (const auto& u : out) {
        if (!u.has_id && !u.id.empty()) {
            __builtin_trap();  // has_id tells a missing Id from an empty one
        }
    }
    // The header value comes from the network too.
    const std::string_view header = size > 0 ? body.substr(0, body.size() / 4) : body;
    (void)xrayd::parse_error_response(parser, body, header);
    return 0;
}
