// XRayRequest: target, timestamp and signed headers of an X-Ray API call.
#include <xrayd/xray/xray_request.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <span>

#include <xrayd/http/base_url.h>

namespace xrayd {

XRayTarget make_xray_target(std::string_view endpoint, std::string_view operation_path) {
    const BaseUrl base = parse_base_url(endpoint, "X-Ray endpoint");
    XRayTarget target;
    target.host = base.host;
    target.path = base.base_path + std::string(operation_path);
    target.url = base.origin + target.path;
    return target;
}

namespace {

// Unix seconds with 9 decimals into `buf`; returns the text. Allocation-free.
std::string_view format_xray_timestamp(WallClock::time_point now,
                                       std::array<char, 32>& buf) noexcept {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch());
    const auto result = fmt::format_to_n(buf.data(), buf.size(), "{}.{:09}",
                                         ns.count() / 1'000'000'000, ns.count() % 1'000'000'000);
    return {buf.data(), std::min(result.size, buf.size())};
}

// One header line as a fixed prefix and a value ("Host: " + host).
struct HeaderLine {
    std::string_view prefix;
    std::string_view value;
    [[nodiscard]] std::size_t size() const noexcept { return prefix.size() + value.size(); }
};

// Rewrites the lines of `list` in place when it has exactly lines.size() entries and each
// has the new line's length: the steady state, where only the date, timestamp and signature
// change and they keep their lengths. curl_slist is public API (data is the list's own
// strdup'ed copy, ours to overwrite within its length). False, list untouched, otherwise.
bool rewrite_in_place(curl_slist* list, std::span<const HeaderLine> lines) noexcept {
    curl_slist* node = list;
    for (const HeaderLine& line : lines) {
        if (node == nullptr || node->data == nullptr || std::strlen(node->data) != line.size()) {
            return false;
        }
        node = node->next;
    }
    if (node != nullptr) {
        return false;
    }
    node = list;
    for (const HeaderLine& line : lines) {
        std::memcpy(node->data, line.prefix.data(), line.prefix.size());
        if (!line.value.empty()) {  // an empty view may carry a null pointer ("Expect:")
            std::memcpy(node->data + line.prefix.size(), line.value.data(), line.value.size());
        }
        node = node->next;
    }
    return true;
}

}  // namespace

std::string xray_timestamp(WallClock::time_point now) {
    std::array<char, 32> buf{};
    return std::string(format_xray_timestamp(now, buf));
}

Result<void, std::string> build_signed_headers(SigV4Signer& signer, const XRayTarget& target,
                                               std::string_view body, const PostContent& content,
                                               const Credentials& credentials,
                                               WallClock::time_point now, CurlSlist& out) noexcept {
    std::array<char, 32> timestamp_buf{};
    const std::string_view timestamp = format_xray_timestamp(now, timestamp_buf);
    // Signed as the Go daemon signs it; sent by curl itself (from CURLOPT_POSTFIELDSIZE), so the
    // header list keeps its shape while body sizes change.
    std::array<char, 24> length_buf{};
    const auto length_end =
        fmt::format_to_n(length_buf.data(), length_buf.size(), "{}", body.size());
    const std::string_view content_length(length_buf.data(),
                                          std::min(length_end.size, length_buf.size()));
    // The signer sorts the names itself.
    std::array<HttpHeaderView, 5> to_sign{{{"host", target.host},
                                           {"content-length", content_length},
                                           {"content-type", content.type}}};
    std::size_t signed_count = 3;
    if (!content.encoding.empty()) {
        to_sign[signed_count++] = {"content-encoding", content.encoding};
    }
    if (content.xray_timestamp) {
        to_sign[signed_count++] = {"x-amzn-xray-timestamp", timestamp};
    }
    const SigningRequestView request{
        "POST", target.path, {}, std::span(to_sign.data(), signed_count), body};
    SignedHeaderViews signed_headers;
    if (!signer.sign(request, credentials, now, signed_headers)) {
        return fail(std::string("request signing failed"));
    }
    std::array<HeaderLine, 8> all_lines{};
    std::size_t line_count = 0;
    const auto add = [&](std::string_view prefix, std::string_view value) {
        all_lines[line_count++] = {prefix, value};
    };
    add("Host: ", target.host);
    add("Content-Type: ", content.type);
    if (!content.encoding.empty()) {
        add("Content-Encoding: ", content.encoding);
    }
    add("X-Amz-Date: ", signed_headers.amz_date);
    if (content.xray_timestamp) {
        add("X-Amzn-Xray-Timestamp: ", timestamp);
    }
    add("Authorization: ", signed_headers.authorization);
    add("Expect:", {});  // no 100-continue round trip
    if (!signed_headers.security_token.empty()) {
        add("X-Amz-Security-Token: ", signed_headers.security_token);
    }
    const std::span<const HeaderLine> lines(all_lines.data(), line_count);
    if (rewrite_in_place(out.get(), lines)) {
        return {};
    }
    try {
        out.clear();
        std::string text;
        for (const HeaderLine& line : lines) {
            text.assign(line.prefix).append(line.value);
            if (!out.append(text.c_str())) {
                return fail(std::string("out of memory building request headers"));
            }
        }
        return {};
    } catch (...) {
        return fail(std::string("out of memory preparing the request"));
    }
}

}  // namespace xrayd
