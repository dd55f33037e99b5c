// check_request_head: the strict RFC 9110/9112 checks a request head passes before any HTTP
// library parses it (the sampling proxy and the admin listener, through ConnectionGate).
#pragma once

#include <cstddef>
#include <string_view>

namespace xrayd {

// What a listener accepts besides well-formed heads.
struct RequestHeadRules {
    bool allow_body = true;  // false: Content-Length other than 0 or Transfer-Encoding: 400
};

// The verdict on one head. status 0: accepted; otherwise the status to answer with (400 or 431)
// and a short static reason for the answer's body and the debug log.
struct HeadCheck {
    unsigned status = 0;
    std::string_view reason;
    [[nodiscard]] bool ok() const noexcept { return status == 0; }
};

// The end of the request head in `bytes` (the index just past the first "\r\n\r\n"), or npos
// while it has not all arrived. Thread-safe (pure).
[[nodiscard]] std::size_t find_head_end(std::string_view bytes) noexcept;

// Checks a whole head (request line and header lines, ending with the empty line). Rejected
// with 400, so that no parser after it can read the head another way:
// - a request line other than `token SP origin-form SP HTTP/1.0|HTTP/1.1`; a target in
//   absolute, authority or asterisk form, or with a byte outside RFC 3986's path and query
//   characters (so `@host:port/x`, `.evil/x`, `:port/x` and `//host/x` never reach a URL);
// - CONNECT (it would need authority form; forwarded, it held a thread until the upstream
//   timeout);
// - a line not ended by CRLF, a bare CR or LF, a NUL or other control byte in a value;
// - a line starting with SP or HT (obsolete line folding);
// - a header name that is not an RFC 9110 token (`Host : x`, `Authorization\t: x`);
// - Content-Length that is not 1*DIGIT (negative, a list, over 18 digits) or given twice;
// - Transfer-Encoding other than exactly `chunked`, given twice, or with Content-Length;
// - no Host header in HTTP/1.1, or more than one;
// - a body when `rules.allow_body` is false.
// Thread-safe (pure); noexcept, allocation-free.
[[nodiscard]] HeadCheck check_request_head(std::string_view head,
                                           const RequestHeadRules& rules) noexcept;

// RFC 9110 5.6.2: 1*tchar. Thread-safe (pure).
[[nodiscard]] bool is_http_token(std::string_view text) noexcept;

// RFC 9112 3.2.1 origin-form: an absolute path ("/" not followed by "/") of RFC 3986 pchars and
// '/', optionally "?" and a query; '%' only before two hex digits. Thread-safe (pure).
[[nodiscard]] bool is_origin_form(std::string_view target) noexcept;

}  // namespace xrayd
