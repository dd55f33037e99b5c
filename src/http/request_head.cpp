// The strict request-head checks of ConnectionGate (RFC 9110 and RFC 9112).
#include <xrayd/http/request_head.h>

#include <xrayd/http/header_text.h>

namespace xrayd {
namespace {

constexpr std::size_t max_length_digits = 18;  // fits in int64 with room: no overflow to test

bool is_tchar(unsigned char c) noexcept {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        return true;
    }
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return true;
    default: return false;
    }
}

bool is_hex(unsigned char c) noexcept {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 3986 pchar minus pct-encoded (checked apart), plus '/' and '?' (path and query).
bool is_target_char(unsigned char c) noexcept {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        return true;
    }
    switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':  // unreserved
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':  // sub-delims
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '@':
    case '/':
    case '?': return true;
    default: return false;
    }
}

// RFC 9110 5.5 field-value: VCHAR, obs-text, SP and HT; nothing else (no CR, LF, NUL, DEL).
bool is_field_value(std::string_view value) noexcept {
    for (const char ch : value) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return false;
        }
    }
    return true;
}

bool is_digits(std::string_view s) noexcept {
    if (s.empty() || s.size() > max_length_digits) {
        return false;
    }
    for (const char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    return true;
}

HeadCheck bad(std::string_view reason) noexcept {
    return HeadCheck{400, reason};
}

}  // namespace

std::size_t find_head_end(std::string_view bytes) noexcept {
    const std::size_t at = bytes.find("\r\n\r\n");
    return at == std::string_view::npos ? at : at + 4;
}

bool is_http_token(std::string_view text) noexcept {
    if (text.empty()) {
        return false;
    }
    for (const char c : text) {
        if (!is_tchar(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}

bool is_origin_form(std::string_view target) noexcept {
    if (target.empty() || target[0] != '/' || (target.size() > 1 && target[1] == '/')) {
        return false;
    }
    for (std::size_t i = 0; i < target.size(); ++i) {
        const auto c = static_cast<unsigned char>(target[i]);
        if (c == '%') {
            if (i + 2 >= target.size() || !is_hex(static_cast<unsigned char>(target[i + 1])) ||
                !is_hex(static_cast<unsigned char>(target[i + 2]))) {
                return false;
            }
            i += 2;
        } else if (!is_target_char(c)) {
            return false;
        }
    }
    return true;
}

HeadCheck check_request_head(std::string_view head, const RequestHeadRules& rules) noexcept {
    if (head.size() < 4 || head.substr(head.size() - 4) != "\r\n\r\n") {
        return bad("the request head does not end with an empty line");
    }
    // Every line must end with CRLF and hold no other CR or LF.
    std::size_t line_start = 0;
    std::size_t line_end = head.find("\r\n");
    const std::string_view request_line = head.substr(0, line_end);
    if (request_line.find_first_of("\r\n") != std::string_view::npos) {
        return bad("a bare CR or LF in the request line");
    }
    const std::size_t sp1 = request_line.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos ||
        request_line.find(' ', sp2 + 1) != std::string_view::npos) {
        return bad("the request line is not: method SP target SP version");
    }
    const std::string_view method = request_line.substr(0, sp1);
    if (!is_http_token(method)) {
        return bad("the method is not a token");
    }
    if (method == "CONNECT") {
        return bad("CONNECT (a tunnel) is not served");  // it needs authority form anyway
    }
    if (!is_origin_form(request_line.substr(sp1 + 1, sp2 - sp1 - 1))) {
        return bad("the request target is not in origin form (/path?query)");
    }
    const std::string_view version = request_line.substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") {
        return bad("the HTTP version is not HTTP/1.1 or HTTP/1.0");
    }

    int hosts = 0;
    int lengths = 0;
    int encodings = 0;
    bool nonzero_length = false;
    line_start = line_end + 2;
    while (line_start < head.size() - 2) {
        line_end = head.find("\r\n", line_start);
        const std::string_view line = head.substr(line_start, line_end - line_start);
        line_start = line_end + 2;
        if (line.empty()) {
            return bad("an empty line inside the request head");
        }
        if (line.find_first_of("\r\n") != std::string_view::npos) {
            return bad("a bare CR or LF in a header line");
        }
        if (line.front() == ' ' || line.front() == '\t') {
            return bad("obsolete line folding (a header line starting with whitespace)");
        }
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) {
            return bad("a header line without a colon");
        }
        const std::string_view name = line.substr(0, colon);
        if (!is_http_token(name)) {
            return bad("a header name that is not a token (whitespace before the colon?)");
        }
        const std::string_view raw_value = line.substr(colon + 1);
        if (!is_field_value(raw_value)) {
            return bad("a control byte in a header value");
        }
        const std::string_view value = trim_ows(raw_value);
        if (ascii_iequals(name, "Host")) {
            ++hosts;
        } else if (ascii_iequals(name, "Content-Length")) {
            if (++lengths > 1) {
                return bad("Content-Length given more than once");
            }
            if (!is_digits(value)) {
                return bad("Content-Length is not a decimal number");
            }
            nonzero_length = value.find_first_not_of('0') != std::string_view::npos;
        } else if (ascii_iequals(name, "Transfer-Encoding")) {
            if (++encodings > 1) {
                return bad("Transfer-Encoding given more than once");
            }
            if (!ascii_iequals(value, "chunked")) {
                return bad("a transfer coding other than chunked");
            }
        }
    }
    if (lengths > 0 && encodings > 0) {
        return bad("Content-Length together with Transfer-Encoding");
    }
    if (hosts > 1 || (hosts == 0 && version == "HTTP/1.1")) {
        return bad("HTTP/1.1 needs exactly one Host header");
    }
    if (!rules.allow_body && (encodings > 0 || nonzero_length)) {
        return bad("this listener takes no request body");
    }
    return HeadCheck{};
}

}  // namespace xrayd
