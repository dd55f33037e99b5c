// OtlpTransfers: signing an OTLP request into its slot's headers and starting it.
#include "otlp_transfers.h"

#include <array>
#include <utility>

#include <fmt/format.h>

namespace xrayd::otlp {
namespace {

std::string_view content_type(OtlpEncoding encoding) noexcept {
    return encoding == OtlpEncoding::protobuf ? "application/x-protobuf" : "application/json";
}

}  // namespace

Result<void, std::string> OtlpTransfers::start(OtlpJob&& job, const Credentials& credentials,
                                               std::chrono::milliseconds timeout,
                                               TimePoint now) noexcept {
    try {
        const std::string_view type = content_type(job.encoding);
        const std::string length = std::to_string(job.body.size());
        // Content-Length is signed, and sent by curl itself (CURLOPT_POSTFIELDSIZE_LARGE).
        SigningRequest request{"POST", target_.path, {}, {}, job.body};
        request.headers = {{"host", target_.host},
                           {"content-encoding", "gzip"},
                           {"content-length", length},
                           {"content-type", std::string(type)}};
        const SignedHeaders signed_headers = signer_.sign(request, credentials, WallClock::now());
        if (signed_headers.authorization.empty()) {
            return fail(std::string("request signing failed"));
        }
        const std::array<std::string, 7> lines{
            fmt::format("Host: {}", target_.host),
            "Content-Encoding: gzip",
            fmt::format("Content-Type: {}", type),
            fmt::format("X-Amz-Date: {}", signed_headers.amz_date),
            fmt::format("Authorization: {}", signed_headers.authorization),
            "Expect:",  // no 100-continue round trip
            signed_headers.security_token.empty()
                ? std::string()
                : fmt::format("X-Amz-Security-Token: {}", signed_headers.security_token)};
        CurlSlist& headers = slots_.next_headers();
        headers.clear();
        for (const std::string& line : lines) {
            if (!line.empty() && !headers.append(line.c_str())) {
                return fail(std::string("out of memory building request headers"));
            }
        }
    } catch (...) {
        return fail(std::string("out of memory signing the request"));
    }
    // The body's bytes do not move with the job: a std::string's heap buffer stays put.
    const std::string_view body = job.body;
    return slots_.start(std::move(job), body, timeout, now);
}

}  // namespace xrayd::otlp
