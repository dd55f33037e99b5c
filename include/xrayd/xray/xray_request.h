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

// Signs a JSON POST of `body` to `target` (host, content-length, content-type, x-amz-date,
// x-amzn-xray-timestamp and, with a session token, x-amz-security-token; the Go daemon's set)
// and replaces `out` with every header to send, including `Expect:` to skip the 100-continue
// round trip. IMPORTANT: Content-Length is signed but not in `out`: the transfer must send
// exactly `body` with CURLOPT_POSTFIELDSIZE(_LARGE) = body.size(), so that curl's own
// Content-Length header carries the signed value.
// The error names what failed (signing, memory). Thread: the signer's.
// Allocation-free in the steady state: when `out` already holds a list of the same shape (same
// header set, every line the same length: same credentials and host) its lines are rewritten
// in place; otherwise it is rebuilt. Keep one list per transfer slot and pass it again.
// IMPORTANT: `out` must not be in use by a running transfer (it is rewritten either way).
[[nodiscard]] Result<void, std::string> build_signed_headers(
    SigV4Signer& signer, const XRayTarget& target, std::string_view body,
    const Credentials& credentials, WallClock::time_point now, CurlSlist& out) noexcept;

}  // namespace xrayd
