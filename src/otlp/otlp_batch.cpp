// OtlpBatch: merging accepted OTLP requests by concatenation.
#include <xrayd/otlp/otlp_batch.h>

namespace xrayd::otlp {

namespace {

constexpr std::string_view json_head = R"({"resourceSpans":[)";
constexpr std::string_view json_tail = "]}";

}  // namespace

std::size_t OtlpBatch::size() const noexcept {
    return encoding_ == OtlpEncoding::protobuf ? body_.size()
                                               : json_head.size() + body_.size() + json_tail.size();
}

bool OtlpBatch::oversize() const noexcept {
    return size() > limits_.max_request_bytes || spans_ > limits_.max_spans;
}

bool OtlpBatch::try_add(std::string_view body, const OtlpExportRequest& request) {
    if (request.encoding != encoding_) {
        return false;
    }
    if (request.parts.empty()) {
        return true;
    }
    std::size_t bytes = 0;
    std::size_t spans = 0;
    for (const OtlpPart& part : request.parts) {
        bytes += part.length;
        spans += part.spans;
    }
    if (encoding_ == OtlpEncoding::json) {
        bytes += request.parts.size() - (empty() ? 1 : 0);  // the commas
    }
    if (!empty() &&
        (size() + bytes > limits_.max_request_bytes || spans_ + spans > limits_.max_spans)) {
        return false;
    }
    body_.reserve(body_.size() + bytes);
    for (const OtlpPart& part : request.parts) {
        if (encoding_ == OtlpEncoding::json && resource_spans_ > 0) {
            body_ += ',';
        }
        body_ += request.bytes_of(body, part);
        ++resource_spans_;
    }
    spans_ += spans;
    ++requests_;
    return true;
}

std::string OtlpBatch::take() {
    std::string out;
    if (encoding_ == OtlpEncoding::protobuf) {
        out = std::move(body_);
    } else {
        out.reserve(size());
        out += json_head;
        out += body_;
        out += json_tail;
    }
    body_.clear();
    spans_ = 0;
    requests_ = 0;
    resource_spans_ = 0;
    return out;
}

}  // namespace xrayd::otlp
