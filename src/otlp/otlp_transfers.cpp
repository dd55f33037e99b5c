// OtlpTransfers: signing an OTLP request into its slot's headers and starting it.
#include "otlp_transfers.h"

#include <utility>

namespace xrayd::otlp {
namespace {

std::string_view content_type(OtlpEncoding encoding) noexcept {
    return encoding == OtlpEncoding::protobuf ? "application/x-protobuf" : "application/json";
}

}  // namespace

Result<void, std::string> OtlpTransfers::start(OtlpJob&& job, const Credentials& credentials,
                                               std::chrono::milliseconds timeout,
                                               TimePoint now) noexcept {
    // Content-Length is signed, and sent by curl itself (CURLOPT_POSTFIELDSIZE_LARGE). The
    // slot's header list is rewritten in place while its shape stays (same encoding and
    // credentials): no allocation per request.
    const PostContent content{content_type(job.encoding), "gzip", false};
    if (auto built = build_signed_headers(signer_, target_, job.body, content, credentials,
                                          WallClock::now(), slots_.next_headers());
        !built) {
        return built;
    }
    // The body's bytes do not move with the job: a std::string's heap buffer stays put.
    const std::string_view body = job.body;
    return slots_.start(std::move(job), body, timeout, now);
}

}  // namespace xrayd::otlp
