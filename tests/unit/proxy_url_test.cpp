// check_proxy_url: usable proxy URLs pass, the usual mistakes are named.
#include <xrayd/http/proxy_url.h>

#include <doctest/doctest.h>

#include <string>

using namespace xrayd;

TEST_CASE("proxy URLs libcurl can use are accepted") {
    for (const char* url : {"http://127.0.0.1:8888", "https://proxy.example.com:443",
                            "http://user:pass@proxy:3128", "socks5://[::1]:1080",
                            "socks5h://proxy.internal:1080", "HTTP://PROXY:80"}) {
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
                           Row{"ftp://proxy:21", "not a proxy scheme"},
                           Row{"http://", "URL"},
                           Row{"http://a b.com/", "URL"},
                           Row{"", "URL"}}) {
        const auto r = check_proxy_url(row.url);
        REQUIRE_MESSAGE(!r.ok(), row.url);
        CHECK(r.error().find(std::string("\"") + row.url + "\"") != std::string::npos);
        CHECK(r.error().find("write it as http://host:port") != std::string::npos);
        CHECK_MESSAGE(r.error().find(row.reason) != std::string::npos, r.error());
    }
}
