// HttpClient against a real HTTP server on loopback: answers are capped (body and headers), a
// request in progress ends when its Cancellation fires, and the URL helpers keep the host.
#include <xrayd/http/http_client.h>

#include <chrono>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include <xrayd/http/cancellation.h>
#include <xrayd/http/curl.h>
#include <xrayd/http/url_parts.h>

#include "http_test_server.h"

namespace xrayd {
namespace {

using namespace std::chrono_literals;
using test::HttpTestServer;
using test::scripted;
using test::ScriptedResponse;

HttpRequest get(const std::string& url) {
    HttpRequest r;
    r.url = url;
    r.transport.connect_timeout = 2000ms;
    r.transport.total_timeout = 20000ms;
    return r;
}

}  // namespace

TEST_CASE("regression: an answer with a 10 MB body is refused, not buffered") {
    CurlGlobal curl = CurlGlobal::init();
    HttpTestServer server;
    server.set_default_response(scripted(200, std::string(10 * 1024 * 1024, 'x')));
    HttpClient client;
    auto r = client.perform(get(server.url() + "/big"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == HttpErrc::too_large);
    CHECK(r.error().message == "the response body is longer than 65536 bytes");
    // The cap is the request's: exactly at it still passes, one byte over does not.
    server.set_default_response(scripted(200, std::string(max_credential_response_body, 'y')));
    auto exact = client.perform(get(server.url() + "/exact"));
    REQUIRE(exact.ok());
    CHECK(exact.value().body.size() == max_credential_response_body);
    HttpRequest small = get(server.url() + "/small");
    small.max_body = 100;
    server.set_default_response(scripted(200, std::string(101, 'z')));
    auto over = client.perform(small);
    REQUIRE_FALSE(over.ok());
    CHECK(over.error().code == HttpErrc::too_large);
}

TEST_CASE("regression: an answer with oversized headers is refused") {
    CurlGlobal curl = CurlGlobal::init();
    HttpTestServer server;
    ScriptedResponse big = scripted(200, "{}");
    for (int i = 0; i < 20; ++i) {  // 20 KB: over our cap, under the test server's own limit
        big.headers.emplace_back("X-Filler-" + std::to_string(i), std::string(1000, 'h'));
    }
    server.set_default_response(big);
    HttpClient client;
    auto r = client.perform(get(server.url() + "/"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == HttpErrc::too_large);
    CHECK(r.error().message == "the response headers are longer than 16384 bytes");
}

TEST_CASE("regression: a request to a server that never answers ends when its cancellation "
          "fires, and later requests fail at once without connecting") {
    CurlGlobal curl = CurlGlobal::init();
    HttpTestServer server;
    ScriptedResponse hang = scripted(200, "{}");
    hang.delay = 60s;
    server.set_default_response(hang);
    auto cancel = Cancellation::create();
    HttpClient client(cancel);
    std::thread stopper([&] {
        while (server.request_count() == 0) {
            std::this_thread::sleep_for(5ms);
        }
        cancel->cancel();
    });
    const auto start = std::chrono::steady_clock::now();
    auto r = client.perform(get(server.url() + "/hang"));
    const auto took = std::chrono::steady_clock::now() - start;
    stopper.join();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == HttpErrc::cancelled);
    CHECK(took < 15s);  // the total timeout is 20 s and the answer 60 s away
    auto later = client.perform(get(server.url() + "/later"));
    REQUIRE_FALSE(later.ok());
    CHECK(later.error().code == HttpErrc::cancelled);
    CHECK(server.request_count() == 1);
}

TEST_CASE("url_with_path keeps the base's host whatever the path holds") {
    auto ok = url_with_path("http://169.254.170.2", "/v2/credentials/abc?x=1");
    REQUIRE(ok.ok());
    CHECK(ok.value() == "http://169.254.170.2/v2/credentials/abc?x=1");
    for (const char* hostile : {"@127.0.0.1:8080/creds", ".evil.example/x", ":8080/x",
                                "evil.example/x", "", "/a b", "/a\r\nHost: x", "/a#frag"}) {
        CAPTURE(hostile);
        CHECK_FALSE(url_with_path("http://169.254.170.2", hostile).ok());
    }
    // A path that looks like an authority stays a path.
    auto odd = url_with_path("http://169.254.170.2", "//evil.example/x");
    REQUIRE(odd.ok());
    auto parts = parse_url(odd.value());
    REQUIRE(parts.ok());
    CHECK(parts.value().host == "169.254.170.2");
}

TEST_CASE("parse_url reports the host libcurl connects to, user info and IPv6 literals") {
    auto a = parse_url("http://127.0.0.1@evil.example:81/x");
    REQUIRE(a.ok());
    CHECK(a.value().host == "evil.example");
    CHECK(a.value().has_user);
    auto b = parse_url("http://[::1]:8080/creds?q=1");
    REQUIRE(b.ok());
    CHECK(b.value().host == "::1");
    CHECK(b.value().port == "8080");
    CHECK(b.value().has_query);
    CHECK_FALSE(parse_url("not a url").ok());
}

}  // namespace xrayd
