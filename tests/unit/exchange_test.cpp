// HttpExchange against a real HTTP server on loopback: methods and bodies go out as given, a URL
// built from parts keeps its path, answers and their headers come back, a deadline cuts a
// waiting request, and failures carry curl's code and the OS errno. (Caps and fd cancellation:
// http_client_test.cpp, which drives the same exchange through HttpClient.)
#include <xrayd/http/exchange.h>

#include <cerrno>
#include <chrono>
#include <string>

#include <doctest/doctest.h>

#include <xrayd/http/cancellation.h>
#include <xrayd/http/curl.h>

#include "http_test_server.h"
#include "scoped_environment.h"

namespace xrayd {
namespace {

using namespace std::chrono_literals;
using test::HttpTestServer;
using test::ScopedEnvironment;
using test::scripted;
using test::ScriptedResponse;

TransportOptions loopback_transport() {
    TransportOptions t;
    t.connect_timeout = 2000ms;
    t.total_timeout = 20000ms;
    return t;
}

}  // namespace

TEST_CASE("proxy and bypass list come from the options alone, never from curl reading the "
          "environment at a request") {
    CurlGlobal curl = CurlGlobal::init();
    HttpTestServer server;  // the proxy, and the direct destination
    // Set after start-up, as the daemon's resolved settings never include them: curl left to
    // itself would bypass the proxy for every host ("*"), or use the proxy on port 9.
    const ScopedEnvironment env{
        {"no_proxy", "*"}, {"NO_PROXY", "*"}, {"http_proxy", "http://127.0.0.1:9"}};
    // One POST to `url` with `transport`; the request target the server saw ("" on failure).
    auto target_seen = [&server](const TransportOptions& transport, const std::string& url) {
        HttpExchange exchange;
        ExchangeRequest request;
        request.method = "POST";
        request.url = url;
        request.body = "{}";
        request.transport = &transport;
        const auto answer = exchange.perform(request, nullptr);
        const auto seen = server.take_requests();
        return answer.ok() && answer.value().status == 200 && seen.size() == 1 ? seen[0].path
                                                                               : std::string();
    };
    TransportOptions proxied = loopback_transport();
    proxied.proxy = server.url();
    // Through the proxy, in its absolute form, though port 9 would refuse a direct connection.
    CHECK(target_seen(proxied, "http://127.0.0.1:9/TraceSegments") ==
          "http://127.0.0.1:9/TraceSegments");
    // Without a proxy, direct: the environment's http_proxy (port 9) is not used either.
    CHECK(target_seen(loopback_transport(), server.url() + "/direct") == "/direct");
}

TEST_CASE("HttpExchange sends each method with its body as given, and HEAD and GET without") {
    CurlGlobal curl = CurlGlobal::init();
    HttpTestServer server;
    const TransportOptions transport = loopback_transport();
    HttpExchange exchange;
    const std::string url = server.url() + "/m";
    struct Row {
        const char* method;
        const char* body;
        const char* received;  // the body the server saw
    };
    for (const Row& row :
         {Row{"POST", "{\"a\":1}", "{\"a\":1}"}, Row{"PUT", "xyz", "xyz"}, Row{"GET", "", ""},
          Row{"GET", "q=1", "q=1"}, Row{"HEAD", "", ""}, Row{"POST", "", ""}}) {
        CAPTURE(row.method);
        CAPTURE(row.body);
        ExchangeRequest request;
        request.method = row.method;
        request.url = url;
        request.body = row.body;
        request.transport = &transport;
        auto answer = exchange.perform(request, nullptr);
        REQUIRE(answer.ok());
        CHECK(answer.value().status == 200);
        const auto seen = server.take_requests();
        REQUIRE(seen.size() == 1);
        CHECK(seen[0].method == row.method);
        CHECK(seen[0].body == row.received);
        if (std::string(row.method) != "GET" && std::string(row.method) != "HEAD") {
            // The exact length: a signer that signed Content-Length relies on it.
            CHECK(seen[0].header("Content-Length") == std::to_string(std::string(row.body).size()));
        }
    }
}

TEST_CASE("HttpExchange goes where the URL parts say, with the path sent as is") {
    CurlGlobal curl = CurlGlobal::init();
    HttpTestServer server;
    const TransportOptions transport = loopback_transport();
    CurlUrl parts = CurlUrl::create();
    REQUIRE(parts);
    REQUIRE(parts.set(CURLUPART_URL, server.url().c_str()) == CURLUE_OK);
    REQUIRE(parts.set(CURLUPART_PATH, "/Sampling//Targets") == CURLUE_OK);
    REQUIRE(parts.set(CURLUPART_QUERY, "x=1") == CURLUE_OK);
    CurlSlist headers;
    REQUIRE(headers.append("X-Test: one"));
    ExchangeRequest request;
    request.method = "POST";
    request.url = "http://unused.invalid/";  // url_parts wins
    request.url_parts = &parts;
    request.path_as_is = true;
    request.http_1_1 = true;
    request.headers = &headers;
    request.body = "{}";
    request.transport = &transport;
    HttpExchange exchange;
    auto answer = exchange.perform(request, nullptr);
    REQUIRE(answer.ok());
    const auto seen = server.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].path == "/Sampling//Targets");
    CHECK(seen[0].header("X-Test") == "one");
}

TEST_CASE("HttpExchange returns the final answer's status, body and headers by any case") {
    CurlGlobal curl = CurlGlobal::init();
    HttpTestServer server;
    server.set_default_response(
        scripted(429, R"({"message":"slow down"})", {{"Retry-After", "3"}, {"X-Two", "b"}}));
    const TransportOptions transport = loopback_transport();
    const std::string url = server.url() + "/";  // ExchangeRequest borrows it
    ExchangeRequest request;
    request.url = url;
    request.transport = &transport;
    HttpExchange exchange;
    auto answer = exchange.perform(request, nullptr);
    REQUIRE(answer.ok());
    CHECK(answer.value().status == 429);
    CHECK(answer.value().body == R"({"message":"slow down"})");
    CHECK(answer.value().header("retry-after") == "3");
    CHECK(answer.value().header("X-TWO") == "b");
    CHECK(answer.value().header("X-Absent").empty());
}

TEST_CASE("a deadline set while a request waits ends it as a timeout") {
    CurlGlobal curl = CurlGlobal::init();
    HttpTestServer server;
    ScriptedResponse hang = scripted(200, "{}");
    hang.delay = 60s;
    server.set_default_response(hang);
    const TransportOptions transport = loopback_transport();  // 20 s: far past the deadline
    const std::string url = server.url() + "/hang";
    ExchangeRequest request;
    request.url = url;
    request.transport = &transport;
    auto cancel = Cancellation::create();
    cancel->cancel_at(Clock::now() + 300ms);
    HttpExchange exchange;
    const auto start = Clock::now();
    auto answer = exchange.perform(request, cancel.get());
    const auto took = Clock::now() - start;
    REQUIRE_FALSE(answer.ok());
    CHECK(answer.error().code == HttpErrc::timeout);
    CHECK(answer.error().curl_code == CURLE_OPERATION_TIMEDOUT);
    CHECK(took >= 300ms);
    CHECK(took < 15s);  // not the 20 s total timeout: the deadline ended it
    CHECK(server.request_count() == 1);
    // Past the deadline nothing more is sent.
    auto later = exchange.perform(request, cancel.get());
    REQUIRE_FALSE(later.ok());
    CHECK(later.error().code == HttpErrc::timeout);
    CHECK(later.error().message == "the deadline passed before the request was sent");
    CHECK(server.request_count() == 1);
    // An explicit cancel() says so, deadline or not.
    cancel->cancel();
    auto cancelled = exchange.perform(request, cancel.get());
    REQUIRE_FALSE(cancelled.ok());
    CHECK(cancelled.error().code == HttpErrc::cancelled);
}

TEST_CASE("Cancellation::cancel_at keeps the earliest deadline") {
    auto cancel = Cancellation::create();
    CHECK_FALSE(cancel->cancelled());
    cancel->cancel_at(Clock::now() + 1h);
    CHECK_FALSE(cancel->cancelled());
    cancel->cancel_at(Clock::now() - 1s);
    CHECK(cancel->cancelled());
    cancel->cancel_at(Clock::now() + 2h);  // a later deadline does not undo an earlier one
    CHECK(cancel->cancelled());
}

TEST_CASE("a refused connection carries curl's code and the OS errno") {
    CurlGlobal curl = CurlGlobal::init();
    HttpTestServer server;
    const std::string url = server.url() + "/";
    server.stop();  // the port is now closed: connect() gets ECONNREFUSED
    const TransportOptions transport = loopback_transport();
    ExchangeRequest request;
    request.url = url;
    request.transport = &transport;
    HttpExchange exchange;
    auto answer = exchange.perform(request, nullptr);
    REQUIRE_FALSE(answer.ok());
    CHECK(answer.error().code == HttpErrc::connect);
    CHECK(answer.error().curl_code == CURLE_COULDNT_CONNECT);
    CHECK(answer.error().os_errno == ECONNREFUSED);
    CHECK(answer.error().message.find("Couldn't connect") != std::string::npos);
}

TEST_CASE("an exchange without transport options fails without sending") {
    CurlGlobal curl = CurlGlobal::init();
    HttpExchange exchange;
    ExchangeRequest request;
    request.url = "http://127.0.0.1:9/";
    auto answer = exchange.perform(request, nullptr);
    REQUIRE_FALSE(answer.ok());
    CHECK(answer.error().code == HttpErrc::other);
    CHECK(answer.error().curl_code == CURLE_OK);
}

}  // namespace xrayd
