// libFuzzer target: the OTLP export request reader on any bytes, as a client would post them,
// and the reader of X-Ray's answer (read_export_response) on the same bytes, as an endpoint could
// answer them. The first byte picks the encoding (even: protobuf, odd: JSON), the rest is the
// body. Besides "no crash, no read out of bounds", it checks the reader's promises: parts lie
// inside their bytes and count the accepted spans, and the parts merged by OtlpBatch read back
// to the same spans with nothing refused.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <xrayd/otlp/otlp_batch.h>
#include <xrayd/otlp/otlp_request.h>
#include <xrayd/otlp/otlp_response.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace xrayd::otlp;
    if (size == 0) {
        return 0;
    }
    const OtlpEncoding encoding = (data[0] & 1) == 0 ? OtlpEncoding::protobuf : OtlpEncoding::json;
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (const auto answer = read_export_response(encoding, body);
        answer && answer->error_message.size() > 512) {
        std::abort();  // the message is cut to 512 bytes
    }
    OtlpLimits limits;
    limits.max_span_bytes = 64;  // small enough for the fuzzer to refuse spans often
    auto result = read_export_request(body, encoding, limits);
    if (!result.ok()) {
        return 0;
    }
    const OtlpExportRequest& request = result.value();
    std::size_t spans = 0;
    for (const OtlpPart& part : request.parts) {
        const std::size_t end = part.offset + part.length;
        if (part.spans == 0 || end < part.offset ||
            end > (part.rebuilt ? request.rebuilt.size() : body.size())) {
            std::abort();
        }
        spans += part.spans;
    }
    if (request.refused_spans > request.spans || spans != request.accepted_spans()) {
        std::abort();
    }
    OtlpBatch batch(encoding, limits);
    if (!batch.try_add(body, request) || batch.spans() != spans) {
        std::abort();
    }
    const std::string merged = batch.take();
    auto again = read_export_request(merged, encoding, limits);
    if (!again.ok() || again.value().spans != spans || again.value().refused_spans != 0) {
        std::abort();
    }
    return 0;
}
