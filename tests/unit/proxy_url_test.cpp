// check_proxy_url: usable proxy URLs pass, the usual mistakes are named; parse_base_url splits
// an X-Ray base URL.
#include <xrayd/http/proxy_url.h>

#include <doctest/doctest.h>

#include <string>

#include <xrayd/common/startup_error.h>
#include <xrayd/http/base_url.h>

using namespace xrayd;

TEST_CASE("proxy URLs libcurl can use are accepted") {
    for (const char* url :
         {"http://127.0.0.1:8888", "https://proxy.example.com:443", "http://user:pass@proxy:3128",
          "socks5://[::1]:1080", "socks5h://proxy.internal:1080", "HTTP://PROXY:80"}) {
        const auto r = check_proxy_url(url);
        CHECK_MESSAGE(r.ok(), url);
    }
}

TEST_CASE("bad proxy URLs are refused with the value, the reason and the fix") {
    struct Row {
        const char* url;
        const char* reason;
    };
    for (const Row& row : {Row{"proxy.example.com:3128", "scheme"},  // bare host:port
                           Row{"ftp://proxy:21", "not a proxy scheme"}, Row{"http://", "URL"},
                           Row{"http://a b.com/", "URL"}, Row{"", "URL"}}) {
        const auto r = check_proxy_url(row.url);
        REQUIRE_MESSAGE(!r.ok(), row.url);
        CHECK(r.error().find(std::string("\"") + row.url + "\"") != std::string::npos);
        CHECK(r.error().find("write it as http://host:port") != std::string::npos);
        CHECK_MESSAGE(r.error().find(row.reason) != std::string::npos, r.error());
    }
}

TEST_CASE("parse_base_url keeps the base path and drops a default port from Host") {
    const BaseUrl a =
        parse_base_url("https://xray.us-east-1.amazonaws.com:443/base/", "X-Ray endpoint");
    CHECK(a.origin == "https://xray.us-east-1.amazonaws.com:443");
    CHECK(a.host == "xray.us-east-1.amazonaws.com");
    CHECK(a.base_path == "/base");
    CHECK_THROWS_AS((void)parse_base_url("xray.us-east-1.amazonaws.com", "X-Ray endpoint"),
                    StartupError);
    CHECK_THROWS_AS((void)parse_base_url("http://user@host/", "X-Ray endpoint"), StartupError);
}

TEST_CASE("parse_base_url gives hostname and port apart, for libcurl's URL API") {
    const BaseUrl a = parse_base_url("https://xray.us-east-1.amazonaws.com:443/base/", "e");
    CHECK(a.hostname == "xray.us-east-1.amazonaws.com");
    CHECK(a.port == "443");
    const BaseUrl b = parse_base_url("http://[::1]:2000", "e");
    CHECK(b.hostname == "[::1]");
    CHECK(b.port == "2000");
    const BaseUrl c = parse_base_url("http://[::1]", "e");
    CHECK(c.hostname == "[::1]");
    CHECK(c.port.empty());
}
