// XRayRequest: how every call to the X-Ray API is framed — the target URL, Host and path from
// the endpoint, the X-Amzn-Xray-Timestamp, and the signed header list for a JSON POST.
#pragma once

#include <string>
#include <string_view>

#include <xrayd/aws/credentials.h>
#include <xrayd/aws/sigv4.h>
#include <xrayd/common/result.h>
#include <xrayd/common/time.h>
#include <xrayd/http/curl.h>

namespace xrayd {

// Where one X-Ray operation is posted.
struct XRayTarget {
    std::string url;   // <scheme>://<authority><base path><operation path>
    std::string host;  // the Host header, as signed and sent (a default port is left out)
    std::string path;  // <base path><operation path>, as signed
};

// `endpoint` is an http(s) base URL, possibly with a base path; `operation_path` is e.g.
// "/TraceSegments". Throws StartupError when the endpoint is not a plain http(s) base URL
// (split by parse_base_url, <xrayd/http/base_url.h>).
[[nodiscard]] XRayTarget make_xray_target(std::string_view endpoint,
                                          std::string_view operation_path);

// Unix seconds with 9 decimals, as X-Amzn-Xray-Timestamp wants (the Go daemon's format).
[[nodiscard]] std::string xray_timestamp(WallClock::time_point now);

// What a signed POST carries: its media type, its Content-Encoding, and whether it is one of
// the X-Ray JSON APIs, which take X-Amzn-Xray-Timestamp (OTLP's /v1/traces does not).
struct PostContent {
    std::string_view type = "application/json";
    std::string_view encoding;   // e.g. "gzip"; empty: no Content-Encoding
    bool xray_timestamp = true;  // sign and send X-Amzn-Xray-Timestamp
};

// Signs a POST of `body` to `target` (host, content-length, content-type, content-encoding when
// set, x-amz-date, x-amzn-xray-timestamp when asked for and, with a session token,
// x-amz-security-token; for the X-Ray APIs the Go daemon's set) and replaces `out` with every
// header to send, including `Expect:` to skip the 100-continue round trip. IMPORTANT:
// Content-Length is signed but not in `out`: the transfer must send exactly `body` with
// CURLOPT_POSTFIELDSIZE(_LARGE) = body.size(), so that curl's own Content-Length header carries the
// signed value. The error names what failed (signing, memory). Thread: the signer's.
// Allocation-free in the steady state: when `out` already holds a list of the same shape (same
// header set, every line the same length: same credentials and host) its lines are rewritten
// in place; otherwise it is rebuilt. Keep one list per transfer slot and pass it again.
// IMPORTANT: `out` must not be in use by a running transfer (it is rewritten either way).
[[nodiscard]] Result<void, std::string> build_signed_headers(
    SigV4Signer& signer, const XRayTarget& target, std::string_view body,
    const PostContent& content, const Credentials& credentials, WallClock::time_point now,
    CurlSlist& out) noexcept;

// The X-Ray JSON APIs' POST (PostContent's defaults).
[[nodiscard]] inline Result<void, std::string> build_signed_headers(
    SigV4Signer& signer, const XRayTarget& target, std::string_view body,
    const Credentials& credentials, WallClock::time_point now, CurlSlist& out) noexcept {
    return build_signed_headers(signer, target, body, PostContent{}, credentials, now, out);
}

}  // namespace xrayd
