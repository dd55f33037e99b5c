// Tests of check_request_head: each way a hostile head could be read two ways is refused,
// and the heads real SDKs, curl and health probes send pass.
#include <xrayd/http/request_head.h>

#include <doctest/doctest.h>

#include <string>

namespace xrayd {
namespace {

HeadCheck check(const std::string& head, RequestHeadRules rules = {}) {
    return check_request_head(head, rules);
}

std::string with_headers(std::string_view headers,
                         std::string_view request_line = "POST /GetSamplingRules HTTP/1.1") {
    return std::string(request_line) + "\r\n" + std::string(headers) + "\r\n";
}

TEST_CASE("the heads SDKs, curl and probes send pass") {
    CHECK(check("POST /GetSamplingRules HTTP/1.1\r\nHost: 127.0.0.1:2000\r\n"
                "User-Agent: aws-xray-sdk-go/1.8\r\nContent-Length: 2\r\n"
                "Content-Type: application/json\r\nX-Amz-Date:\r\n\r\n")
              .ok());
    CHECK(check("POST /SamplingTargets HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n")
              .ok());
    CHECK(check("GET /healthz HTTP/1.0\r\n\r\n").ok());  // HTTP/1.0 needs no Host
    CHECK(check("GET /TraceGraph?NextToken=a%2Fb&x=y:z@w HTTP/1.1\r\nHost: x\r\n\r\n").ok());
    CHECK(check("DELETE /SamplingRule/x HTTP/1.1\r\nHost: y\r\nX-Odd: \xc3\xa9\t v\r\n\r\n").ok());
}

TEST_CASE("a request target not in origin form gets 400") {
    for (const char* target : {"@127.0.0.1:9/GetSamplingRules", ".evil/x", ":9/x", "//evil/x",
                               "http://127.0.0.1:9/GetSamplingRules", "*", "127.0.0.1:9", "/a#frag",
                               "/a b", "/%zz", "/%4", "/\x7f", "/\xc3\xa9", "/a\\b", ""}) {
        INFO(target);
        const HeadCheck c =
            check(with_headers("Host: x\r\n", std::string("POST ") + target + " HTTP/1.1"));
        CHECK(c.status == 400);
        CHECK_FALSE(is_origin_form(target));
    }
    CHECK(is_origin_form("/"));
    CHECK(is_origin_form("/GetSamplingRules?"));
}

TEST_CASE("a header name with a space or tab before the colon gets 400") {
    for (const char* line : {"Host : evil.example", "Transfer-Encoding : chunked",
                             "Authorization\t: x", "X-Amz-Date : 20260101T000000Z", " Host: x",
                             ": empty name", "X(y): 1", "X\xc3\xa9: 1", "no colon at all"}) {
        INFO(line);
        CHECK(check(with_headers(std::string("Host: x\r\n") + line + "\r\n")).status == 400);
    }
    CHECK(is_http_token("X-Amz-Security-Token"));
    CHECK_FALSE(is_http_token("Host "));
    CHECK_FALSE(is_http_token(""));
}

TEST_CASE("obsolete line folding gets 400") {
    CHECK(check(with_headers("Host: x\r\nX-A: one\r\n two\r\n")).status == 400);
    CHECK(check(with_headers("Host: x\r\nX-A: one\r\n\ttwo\r\n")).status == 400);
}

TEST_CASE("a bare CR or LF, or a control byte in a value, gets 400") {
    CHECK(check("POST / HTTP/1.1\nHost: x\r\n\r\n").status == 400);
    CHECK(check(with_headers("Host: x\r\nX-A: a\rb\r\n")).status == 400);
    CHECK(check(with_headers("Host: x\nX-Injected: yes\r\n")).status == 400);
    constexpr char with_nul[] = "Host: x\r\nX-A: a\0b\r\n";
    CHECK(check(with_headers(std::string(with_nul, sizeof(with_nul) - 1))).status == 400);
    CHECK(check(with_headers("Host: x\r\nX-A: \x1b[31m\r\n")).status == 400);
    CHECK(check("POST / HTTP/1.1\r\nHost: x\r\n").status == 400);  // no empty line
}

TEST_CASE("Content-Length together with Transfer-Encoding gets 400") {
    CHECK(check(with_headers("Host: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n"))
              .status == 400);
    CHECK(check(with_headers("Host: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n"))
              .status == 400);
}

TEST_CASE("a transfer coding other than chunked gets 400") {
    for (const char* coding :
         {"gzip", "gzip, chunked", "chunked, chunked", "identity", "", "chunked;x=1"}) {
        INFO(coding);
        CHECK(check(with_headers(std::string("Host: x\r\nTransfer-Encoding: ") + coding + "\r\n"))
                  .status == 400);
    }
    CHECK(check(with_headers("Host: x\r\nTransfer-Encoding: chunked\r\n"
                             "Transfer-Encoding: chunked\r\n"))
              .status == 400);
}

TEST_CASE("a negative, non-numeric, overlong or duplicate Content-Length gets 400") {
    for (const char* length :
         {"-1", "+2", "2, 2", "0x10", "1e3", "", "2 2", "99999999999999999999"}) {
        INFO(length);
        CHECK(check(with_headers(std::string("Host: x\r\nContent-Length: ") + length + "\r\n"))
                  .status == 400);
    }
    CHECK(check(with_headers("Host: x\r\nContent-Length: 2\r\ncontent-length: 2\r\n")).status ==
          400);
    CHECK(check(with_headers("Host: x\r\nContent-Length:  2 \r\n")).ok());
}

TEST_CASE("HTTP/1.1 without exactly one Host header gets 400") {
    CHECK(check(with_headers("")).status == 400);
    CHECK(check(with_headers("Host: a\r\nHost: b\r\n")).status == 400);
}

TEST_CASE("a malformed request line gets 400") {
    for (const char* line : {"POST  /x HTTP/1.1", "POST /x HTTP/1.1 ", "POST /x", "POST /x HTTP/2",
                             "POST /x http/1.1", "PO(ST /x HTTP/1.1", " /x HTTP/1.1"}) {
        INFO(line);
        CHECK(check(with_headers("Host: x\r\n", line)).status == 400);
    }
}

TEST_CASE("CONNECT gets 400: it is not served, and in origin form it is malformed") {
    CHECK(check(with_headers("Host: x\r\n", "CONNECT /GetSamplingRules HTTP/1.1")).status == 400);
    CHECK(check(with_headers("Host: x\r\n", "CONNECT 127.0.0.1:9 HTTP/1.1")).status == 400);
}

TEST_CASE("a listener that takes no body refuses a head announcing one") {
    const RequestHeadRules no_body{.allow_body = false};
    CHECK(check("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", no_body).status ==
          400);
    CHECK(check("GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", no_body)
              .status == 400);
    CHECK(check("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", no_body).ok());
}

TEST_CASE("find_head_end finds the first empty line") {
    CHECK(find_head_end("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody\r\n\r\n") == 27);
    CHECK(find_head_end("GET / HTTP/1.1\r\nHost: x\r\n") == std::string_view::npos);
}

}  // namespace
}  // namespace xrayd
