// Tests of the sampling proxy: raw SDK-shaped HTTP requests over TCP against the proxy, a real
// HTTP server as the X-Ray endpoint, and each forwarded signature recomputed independently.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <xrayd/aws/credentials.h>
#include <xrayd/aws/sigv4.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/http/curl.h>
#include <xrayd/log/logger.h>
#include <xrayd/proxy/sampling_proxy.h>
#include <xrayd/stats/counters.h>

#include "captured_log.h"
#include "http_test_server.h"
#include "raw_http_client.h"
#include "signature_check.h"

using namespace std::chrono_literals;
using namespace xrayd;
using namespace xrayd::test;

namespace {

const CurlGlobal curl_global = CurlGlobal::init();

constexpr auto generous_deadline = 20s;

class NoCredentials final : public CredentialsProvider {
public:
    std::shared_ptr<const Credentials> current() noexcept override { return nullptr; }
    std::string_view source() const noexcept override { return "none"; }
};

// A connected TCP client speaking raw HTTP/1.1, as an SDK's HTTP stack does.
using RawClient = xrayd::test::RawHttpClient;

// What the Go SDKs send to the daemon for GetSamplingRules.
std::string sdk_request(std::string_view path, std::string_view body,
                        std::string_view extra_headers = "") {
    return fmt::format(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1:2000\r\nUser-Agent: aws-xray-sdk-go/1.8\r\n"
        "Content-Length: {}\r\nContent-Type: application/json\r\n{}\r\n{}",
        path, body.size(), extra_headers, body);
}

constexpr auto& field = authorization_field;

// The proxy signs for X-Ray in us-east-1 here.
void verify_signature(const RecordedRequest& r, const Credentials& creds,
                      std::string_view query = "") {
    verify_xray_signature(r, creds, "us-east-1", query);
}

struct Fixture {
    explicit Fixture(const Credentials& c = Credentials{"AKIDEXAMPLE",
                                                        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"})
        : creds(c), credentials(std::make_unique<StaticCredentialsProvider>(creds)) {
        upstream.set_default_response(
            ScriptedResponse{200,
                             {{"Content-Type", "application/json"}, {"x-amzn-RequestId", "req-1"}},
                             R"({"SamplingRuleRecords":[]})"});
    }

    std::unique_ptr<SamplingProxy> make(SamplingProxyOptions options = {}) {
        options.address = "127.0.0.1:0";
        if (options.upstream.empty()) {
            options.upstream = upstream.url();
        }
        options.region = "us-east-1";
        auto proxy = SamplingProxy::create(std::move(options), *credentials, counters, logger);
        REQUIRE(proxy->start());
        REQUIRE(proxy->port() != 0);
        return proxy;
    }

    Credentials creds;
    std::unique_ptr<CredentialsProvider> credentials;
    HttpTestServer upstream;
    Counters counters;
    CapturedLog log;
    Logger logger{LogLevel::debug, std::make_unique<CaptureSink>(log)};
};

}  // namespace

TEST_CASE(
    "forwardable_headers drops hop-by-hop headers, those Connection names and X-Forwarded-For") {
    const std::vector<ForwardHeader> in = {{"Host", "127.0.0.1:2000"},
                                           {"Connection", "keep-alive, X-Hop"},
                                           {"X-Hop", "1"},
                                           {"Keep-Alive", "timeout=5"},
                                           {"Proxy-Authorization", "x"},
                                           {"TE", "trailers"},
                                           {"Trailer", "x"},
                                           {"Transfer-Encoding", "chunked"},
                                           {"Upgrade", "h2c"},
                                           {"x-forwarded-for", "10.0.0.1"},
                                           {"Content-Length", "2"},
                                           {"Expect", "100-continue"},
                                           {"Authorization", "old"},
                                           {"X-Amz-Date", "old"},
                                           {"Content-Type", "application/json"},
                                           {"User-Agent", "sdk"},
                                           {"X-Amz-Target", "t"},
                                           {"x-request-id", "envoy"}};
    const auto out = forwardable_headers(in);
    REQUIRE(out.size() == 4);
    CHECK(out[0].name == "Content-Type");
    CHECK(out[1].name == "User-Agent");
    CHECK(out[2].name == "X-Amz-Target");
    CHECK(out[3].name == "x-request-id");
    CHECK(is_signed_proxy_header("HOST"));
    CHECK(is_signed_proxy_header("content-type"));
    CHECK(is_signed_proxy_header("X-Amz-Target"));
    CHECK_FALSE(is_signed_proxy_header("X-Amzn-Trace-Id"));
    CHECK_FALSE(is_signed_proxy_header("User-Agent"));
}

TEST_CASE(
    "an SDK GetSamplingRules call is signed for xray, sent with the endpoint's Host, relayed") {
    Fixture f;
    auto proxy = f.make();
    RawClient client(proxy->port());
    client.send(sdk_request("/GetSamplingRules", "{}"));
    const auto response = client.read_response();
    REQUIRE(response.has_value());
    CHECK(response->status == 200);
    CHECK(response->body == R"({"SamplingRuleRecords":[]})");
    CHECK(response->header("x-amzn-RequestId") == "req-1");
    CHECK(response->header("Content-Type") == "application/json");

    const auto requests = f.upstream.requests();
    REQUIRE(requests.size() == 1);
    const RecordedRequest& r = requests[0];
    CHECK(r.method == "POST");
    CHECK(r.path == "/GetSamplingRules");
    CHECK(r.body == "{}");
    CHECK(r.header("Host") == fmt::format("127.0.0.1:{}", f.upstream.port()));
    CHECK(r.header("User-Agent") == "aws-xray-sdk-go/1.8");
    CHECK_FALSE(r.header("X-Forwarded-For").has_value());
    CHECK_FALSE(r.header("Accept").has_value());
    CHECK_FALSE(r.header("Expect").has_value());
    CHECK(field(*r.header("Authorization"), "SignedHeaders=") == "content-type;host;x-amz-date");
    CHECK(r.header("Authorization")->find("/us-east-1/xray/aws4_request") != std::string::npos);
    verify_signature(r, f.creds);
    CHECK(f.counters.get(Counter::proxy_forwarded) == 1);
    CHECK(f.log.contains("[Info] HTTP Proxy server using X-Ray Endpoint : " + f.upstream.url()));
    CHECK(f.log.contains("[Info] Starting proxy http server on 127.0.0.1:0"));
    CHECK(f.log.contains("[Debug] Received request on HTTP Proxy server : /GetSamplingRules"));
}

TEST_CASE(
    "a request via an Envoy/Istio sidecar verifies: X-Forwarded-For, hop-by-hop dropped first") {
    Fixture f;
    auto proxy = f.make();
    RawClient client(proxy->port());
    const std::string body =
        R"({"SamplingStatisticsDocuments":[{"RuleName":"r","ClientID":"04228e32be9e56060445f712",)"
        R"("RequestCount":1,"BorrowCount":0,"SampledCount":1,"Timestamp":1795308518}]})";
    client.send(sdk_request("/SamplingTargets", body,
                            "X-Forwarded-For: 10.1.2.3\r\nConnection: keep-alive, X-Envoy-Hop\r\n"
                            "X-Envoy-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Request-Id: abc\r\n"
                            "X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793\r\n"
                            "X-Amz-User-Agent: sdk-extra\r\n"));
    const auto response = client.read_response();
    REQUIRE(response.has_value());
    CHECK(response->status == 200);
    const auto requests = f.upstream.requests();
    REQUIRE(requests.size() == 1);
    const RecordedRequest& r = requests[0];
    CHECK(r.path == "/SamplingTargets");
    CHECK(r.body == body);
    CHECK_FALSE(r.header("X-Forwarded-For").has_value());
    CHECK_FALSE(r.header("X-Envoy-Hop").has_value());
    CHECK_FALSE(r.header("Keep-Alive").has_value());
    CHECK(r.header("X-Request-Id") == "abc");
    CHECK(r.header("X-Amzn-Trace-Id").has_value());
    CHECK(field(*r.header("Authorization"), "SignedHeaders=") ==
          "content-type;host;x-amz-date;x-amz-user-agent");
    verify_signature(r, f.creds);

    // Each answer closes its connection (every head passes the gate); the next poll connects
    // again.
    CHECK(response->header("Connection") == "close");
    CHECK(client.closed_by_peer(5s));
    RawClient next(proxy->port());
    next.send(sdk_request("/GetSamplingRules", "{}"));
    const auto second = next.read_response();
    REQUIRE(second.has_value());
    CHECK(second->status == 200);
    const auto all = f.upstream.requests();
    REQUIRE(all.size() == 2);
    verify_signature(all[1], f.creds);
}

TEST_CASE("session credentials add a signed X-Amz-Security-Token") {
    Fixture f(Credentials{"ASIAEXAMPLE", "secret", "session-token-value"});
    auto proxy = f.make();
    RawClient client(proxy->port());
    client.send(sdk_request("/SamplingStatisticSummaries", "{}"));
    REQUIRE(client.read_response().has_value());
    const auto requests = f.upstream.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].header("X-Amz-Security-Token") == "session-token-value");
    CHECK(field(*requests[0].header("Authorization"), "SignedHeaders=") ==
          "content-type;host;x-amz-date;x-amz-security-token");
    verify_signature(requests[0], f.creds);
}

TEST_CASE("upstream error statuses and bodies are relayed unchanged") {
    Fixture f;
    f.upstream.push_response(ScriptedResponse{
        403,
        {{"Content-Type", "application/json"}, {"x-amzn-ErrorType", "AccessDeniedException"}},
        R"({"message":"denied"})"});
    auto proxy = f.make();
    RawClient client(proxy->port());
    client.send(sdk_request("/GetSamplingRules", "{}"));
    const auto response = client.read_response();
    REQUIRE(response.has_value());
    CHECK(response->status == 403);
    CHECK(response->body == R"({"message":"denied"})");
    CHECK(response->header("x-amzn-ErrorType") == "AccessDeniedException");
    CHECK(f.counters.get(Counter::proxy_forwarded) == 1);
}

TEST_CASE("the upstream's hop-by-hop headers, and those its Connection names, are not relayed") {
    Fixture f;
    f.upstream.push_response(ScriptedResponse{200,
                                              {{"Content-Type", "application/json"},
                                               {"Connection", "X-Upstream-Hop"},
                                               {"X-Upstream-Hop", "1"},
                                               {"Keep-Alive", "timeout=5"},
                                               {"X-Kept", "yes"}},
                                              R"({"SamplingRuleRecords":[]})"});
    auto proxy = f.make();
    RawClient client(proxy->port());
    client.send(sdk_request("/GetSamplingRules", "{}"));
    const auto response = client.read_response();
    REQUIRE(response.has_value());
    CHECK(response->status == 200);
    CHECK(response->header("X-Kept") == "yes");
    CHECK_FALSE(response->header("X-Upstream-Hop").has_value());
    CHECK_FALSE(response->header("Keep-Alive").has_value());
}

TEST_CASE("paths outside the sampling allow-list get 404 and are not forwarded") {
    Fixture f;
    auto proxy = f.make();
    RawClient client(proxy->port());
    client.send(sdk_request("/TraceSegments", R"({"TraceSegmentDocuments":[]})"));
    const auto response = client.read_response();
    REQUIRE(response.has_value());
    CHECK(response->status == 404);
    CHECK(response->body.find("not an X-Ray sampling operation") != std::string::npos);
    RawClient next(proxy->port());
    next.send("GET /GetSamplingRules HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto second = next.read_response();
    REQUIRE(second.has_value());
    CHECK(second->status == 405);
    CHECK(second->header("Allow") == "POST");
    CHECK(f.upstream.request_count() == 0);
    CHECK(f.counters.get(Counter::proxy_not_allowed) == 2);
}

TEST_CASE("forward_all restores the Go daemon's forwarding of every path") {
    Fixture f;
    SamplingProxyOptions options;
    options.forward_all = true;
    auto proxy = f.make(options);
    RawClient client(proxy->port());
    client.send(sdk_request("/TraceGraph?NextToken=a%2Fb", "{}"));
    const auto response = client.read_response();
    REQUIRE(response.has_value());
    CHECK(response->status == 200);
    // No Content-Type from the client: none is invented on the way (curl would add one).
    RawClient next(proxy->port());
    next.send("DELETE /SamplingRule/x HTTP/1.1\r\nHost: y\r\n\r\n");
    const auto second = next.read_response();
    REQUIRE(second.has_value());
    CHECK(second->status == 200);
    const auto requests = f.upstream.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].path == "/TraceGraph");
    verify_signature(requests[0], f.creds, "NextToken=a%2Fb");
    CHECK(requests[1].method == "DELETE");
    CHECK(requests[1].path == "/SamplingRule/x");
    CHECK_FALSE(requests[1].header("Content-Type").has_value());
    CHECK(field(*requests[1].header("Authorization"), "SignedHeaders=") == "host;x-amz-date");
    verify_signature(requests[1], f.creds);
}

TEST_CASE("set_forward_all switches the allow-list for later requests (SIGHUP reload)") {
    Fixture f;
    auto proxy = f.make(SamplingProxyOptions{});
    const auto status = [&] {
        RawClient client(proxy->port());
        client.send(sdk_request("/TraceGraph", "{}"));
        const auto response = client.read_response();
        REQUIRE(response.has_value());
        return response->status;
    };
    CHECK(status() == 404);
    proxy->set_forward_all(true);
    CHECK(status() == 200);
    proxy->set_forward_all(false);
    CHECK(status() == 404);
    CHECK(f.upstream.requests().size() == 1);
}

TEST_CASE("when every connection slot is being served a new connection gets 503") {
    Fixture f;
    f.upstream.push_response(ScriptedResponse{200, {}, "{}", 3000ms});
    f.upstream.push_response(ScriptedResponse{200, {}, "{}", 3000ms});
    SamplingProxyOptions options;
    options.max_connections = 2;
    auto proxy = f.make(options);
    RawClient a(proxy->port());
    RawClient b(proxy->port());
    a.send(sdk_request("/GetSamplingRules", "{}"));
    b.send(sdk_request("/GetSamplingRules", "{}"));
    const auto deadline = std::chrono::steady_clock::now() + generous_deadline;
    while (f.upstream.request_count() < 2 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);  // polling a condition, with a deadline
    }
    REQUIRE(f.upstream.request_count() == 2);
    RawClient extra(proxy->port());
    const auto refused = extra.read_response();
    REQUIRE(refused.has_value());
    CHECK(refused->status == 503);
    CHECK(f.counters.get(Counter::listener_connections_shed) == 1);
    for (RawClient* c : {&a, &b}) {
        const auto response = c->read_response();
        REQUIRE(response.has_value());
        CHECK(response->status == 200);
    }
}

TEST_CASE("a body over the limit is refused with 413 before it is read") {
    Fixture f;
    SamplingProxyOptions options;
    options.max_body_bytes = 1024;
    auto proxy = f.make(options);
    RawClient client(proxy->port());
    client.send(fmt::format("POST /SamplingTargets HTTP/1.1\r\nHost: x\r\nContent-Type: "
                            "application/json\r\nContent-Length: {}\r\n\r\n",
                            2048));
    const auto response = client.read_response();
    REQUIRE(response.has_value());
    CHECK(response->status == 413);
    CHECK(response->body.find("over the limit of 1024 bytes") != std::string::npos);
    CHECK(f.upstream.request_count() == 0);
    CHECK(f.counters.get(Counter::proxy_too_large) == 1);
}

TEST_CASE("a chunked body growing past the limit closes the connection") {
    Fixture f;
    SamplingProxyOptions options;
    options.max_body_bytes = 16;
    auto proxy = f.make(options);
    RawClient client(proxy->port());
    client.send("POST /SamplingTargets HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                "20\r\n01234567890123456789012345678901\r\n0\r\n\r\n");
    CHECK(client.closed_by_peer(
        std::chrono::duration_cast<std::chrono::milliseconds>(generous_deadline)));
    CHECK(f.upstream.request_count() == 0);
    CHECK(f.counters.get(Counter::proxy_too_large) == 1);
}

TEST_CASE("upstream unreachable answers 502 with a JSON error and logs once per interval") {
    Fixture f;
    auto proxy = f.make();
    f.upstream.stop();
    for (int i = 0; i < 3; ++i) {
        RawClient client(proxy->port());
        client.send(sdk_request("/GetSamplingRules", "{}"));
        const auto response = client.read_response();
        REQUIRE(response.has_value());
        CHECK(response->status == 502);
        CHECK(response->header("Content-Type") == "application/json");
        CHECK(response->body.rfind(R"({"message":"xrayd sampling proxy: X-Ray endpoint )", 0) == 0);
    }
    CHECK(f.counters.get(Counter::proxy_upstream_error) == 3);
    CHECK(f.log.count("unreachable") == 1);
}

TEST_CASE("an upstream slower than the upstream timeout answers 504") {
    Fixture f;
    f.upstream.push_response(ScriptedResponse{200, {}, "{}", 5000ms});
    SamplingProxyOptions options;
    options.upstream_timeout = 300ms;
    auto proxy = f.make(options);
    RawClient client(proxy->port());
    client.send(sdk_request("/GetSamplingRules", "{}"));
    const auto response = client.read_response();
    REQUIRE(response.has_value());
    CHECK(response->status == 504);
    CHECK(f.counters.get(Counter::proxy_upstream_error) == 1);
}

TEST_CASE("without credentials the proxy answers 503 and forwards nothing") {
    Fixture f;
    f.credentials = std::make_unique<NoCredentials>();
    auto proxy = f.make();
    RawClient client(proxy->port());
    client.send(sdk_request("/GetSamplingRules", "{}"));
    const auto response = client.read_response();
    REQUIRE(response.has_value());
    CHECK(response->status == 503);
    CHECK(f.upstream.request_count() == 0);
    CHECK(f.counters.get(Counter::proxy_no_credentials) == 1);
}

TEST_CASE("an idle client connection is closed after the idle timeout") {
    Fixture f;
    SamplingProxyOptions options;
    options.idle_timeout = 1s;
    auto proxy = f.make(options);
    RawClient silent(proxy->port());
    // The head is whole; the announced body never comes.
    silent.send("POST /GetSamplingRules HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
    CHECK(silent.closed_by_peer(
        std::chrono::duration_cast<std::chrono::milliseconds>(generous_deadline)));
}

TEST_CASE("many SDK clients are served concurrently") {
    Fixture f;
    auto proxy = f.make();
    constexpr int clients = 8;
    constexpr int per_client = 5;
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
        threads.emplace_back([&] {
            for (int j = 0; j < per_client; ++j) {
                RawClient client(proxy->port());
                client.send(sdk_request("/SamplingTargets", "{}"));
                const auto response = client.read_response();
                if (response && response->status == 200) {
                    ++ok;
                }
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    CHECK(ok.load() == clients * per_client);
    const auto requests = f.upstream.requests();
    CHECK(requests.size() == clients * per_client);
    for (const auto& r : requests) {
        verify_signature(r, f.creds);
    }
}

TEST_CASE("a listen failure is a StartupError by default and a logged error when non-fatal") {
    Fixture f;
    auto first = f.make();
    const std::string taken = fmt::format("127.0.0.1:{}", first->port());
    {
        SamplingProxyOptions options;
        options.address = taken;
        options.upstream = f.upstream.url();
        auto second = SamplingProxy::create(options, *f.credentials, f.counters, f.logger);
        try {
            (void)second->start();
            FAIL("start() did not throw");
        } catch (const StartupError& e) {
            CHECK(std::string(e.what()) ==
                  fmt::format("proxy http server failed to listen: listen tcp {}: bind: "
                              "address already in use",
                              taken));
        }
    }
    {
        SamplingProxyOptions options;
        options.address = taken;
        options.upstream = f.upstream.url();
        options.listen_failure_non_fatal = true;
        auto second = SamplingProxy::create(options, *f.credentials, f.counters, f.logger);
        CHECK_FALSE(second->start());
        CHECK_FALSE(second->serving());
        CHECK(f.log.contains("[Error] proxy http server failed to listen: listen tcp"));
    }
}

TEST_CASE("stop() cuts an upstream exchange in flight and joins promptly") {
    Fixture f;
    f.upstream.push_response(ScriptedResponse{200, {}, "{}", 15000ms});
    auto proxy = f.make();
    RawClient client(proxy->port());
    client.send(sdk_request("/GetSamplingRules", "{}"));
    // Wait until the upstream holds the request.
    const auto deadline = std::chrono::steady_clock::now() + generous_deadline;
    while (f.upstream.request_count() == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(1ms);  // polling a condition, with a deadline
    }
    REQUIRE(f.upstream.request_count() == 1);
    const auto before = std::chrono::steady_clock::now();
    proxy->stop();
    CHECK_FALSE(proxy->serving());
    // Far below the scripted 15 s delay: the transfer was aborted, not waited for.
    CHECK(std::chrono::steady_clock::now() - before < 10s);
}

namespace {

// Sends `request` on a new connection and returns the one answer, checking that the proxy
// closes the connection after it with nothing more (exactly one response).
RawClient::Response single_answer(std::uint16_t port, std::string_view request) {
    RawClient client(port);
    (void)client.try_send(request);  // the proxy may answer and close before all is written
    const auto response = client.read_response();
    REQUIRE(response.has_value());
    CHECK(client.closed_by_peer(5s));
    CHECK(client.rest().empty());  // nothing after the first answer: it answered once
    return *response;
}

}  // namespace

TEST_CASE("a request target not in origin form gets 400 and never reaches upstream") {
    Fixture f;
    HttpTestServer elsewhere;  // where the hostile targets point
    SamplingProxyOptions options;
    options.forward_all = true;  // the reproduction needed --proxy-forward-all
    auto proxy = f.make(options);
    const std::uint16_t port = elsewhere.port();
    for (const std::string& target :
         {fmt::format("@127.0.0.1:{}/GetSamplingRules", port), std::string(".evil/x"),
          fmt::format(":{}/x", port), fmt::format("//127.0.0.1:{}/x", port),
          fmt::format("http://127.0.0.1:{}/GetSamplingRules", port), std::string("*")}) {
        INFO(target);
        const auto response = single_answer(
            proxy->port(),
            fmt::format("POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}", target));
        CHECK(response.status == 400);
        CHECK(response.body.find("origin form") != std::string::npos);
    }
    CHECK(elsewhere.request_count() == 0);
    CHECK(f.upstream.request_count() == 0);
    CHECK(f.counters.get(Counter::listener_bad_request_head) == 6);
}

TEST_CASE("an origin-form path with '@' or ':' still goes to the configured host only") {
    Fixture f;
    SamplingProxyOptions options;
    options.forward_all = true;
    auto proxy = f.make(options);
    const auto response =
        single_answer(proxy->port(), sdk_request("/x@127.0.0.1:1/GetSamplingRules?a=b:c@d", "{}"));
    CHECK(response.status == 200);
    const auto requests = f.upstream.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].path == "/x@127.0.0.1:1/GetSamplingRules");
    CHECK(requests[0].header("Host") == fmt::format("127.0.0.1:{}", f.upstream.port()));
    verify_signature(requests[0], f.creds, "a=b:c@d");
}

TEST_CASE("a header name with a space or tab before the colon gets 400") {
    Fixture f;
    auto proxy = f.make();
    for (const char* line : {"Host : evil.example", "Transfer-Encoding : chunked",
                             "Authorization\t: x", "X-Amz-Date : 20260101T000000Z"}) {
        INFO(line);
        const auto response = single_answer(
            proxy->port(), sdk_request("/GetSamplingRules", "{}", std::string(line) + "\r\n"));
        CHECK(response.status == 400);
        CHECK(response.body.find("not a token") != std::string::npos);
    }
    CHECK(f.upstream.request_count() == 0);
}

TEST_CASE("folding, Content-Length with Transfer-Encoding, other codings and bad lengths get "
          "exactly one 400") {
    Fixture f;
    auto proxy = f.make();
    const std::string start = "POST /GetSamplingRules HTTP/1.1\r\nHost: x\r\n";
    for (const std::string& rest :
         {std::string("X-A: one\r\n two\r\nContent-Length: 2\r\n\r\n{}"),
          std::string(
              "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
          std::string("Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
          std::string("Transfer-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}"),
          std::string("Content-Length: -1\r\n\r\n{}"),
          std::string("Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"),
          std::string("Content-Length: 2, 2\r\n\r\n{}"),
          std::string("X-Injected: a\rb\r\nContent-Length: 2\r\n\r\n{}")}) {
        INFO(rest);
        const auto response = single_answer(proxy->port(), start + rest);
        CHECK(response.status == 400);
    }
    CHECK(f.upstream.request_count() == 0);
}

TEST_CASE("a trickled request head is cut at the head deadline, whatever trickles in") {
    Fixture f;
    SamplingProxyOptions options;
    options.head_timeout = 1s;
    options.idle_timeout = 30s;  // the idle timeout is not what cuts it
    auto proxy = f.make(options);
    RawClient slow(proxy->port());
    slow.send("POST /GetSamplingRules HTTP/1.1\r\n");
    const auto start = std::chrono::steady_clock::now();
    bool cut = false;
    // One header byte every 100 ms; without a head deadline this would go on for ever.
    while (!cut && std::chrono::steady_clock::now() - start < generous_deadline) {
        cut = !slow.try_send("X") || slow.closed_by_peer(100ms);
    }
    REQUIRE(cut);
    CHECK(slow.rest().starts_with("HTTP/1.1 408 "));
    CHECK(f.counters.get(Counter::listener_head_timeout) == 1);
    CHECK(f.upstream.request_count() == 0);
}

TEST_CASE("hundreds of idle connections do not lock out a new request") {
    Fixture f;
    SamplingProxyOptions options;
    options.head_timeout = 60s;  // the idle ones are not timed out during the test
    auto proxy = f.make(options);
    std::vector<std::unique_ptr<RawClient>> idle;
    for (int i = 0; i < 500; ++i) {
        idle.push_back(std::make_unique<RawClient>(proxy->port()));
    }
    idle.back()->send("POST /GetSamplingRules HTTP/1.1\r\n");  // and one trickling
    RawClient client(proxy->port());
    client.send(sdk_request("/GetSamplingRules", "{}"));
    const auto response = client.read_response();  // within 20 s, not after the idle ones
    REQUIRE(response.has_value());
    CHECK(response->status == 200);
    CHECK(f.counters.get(Counter::listener_connections_shed) > 0);
}

TEST_CASE("a peer over its connection limit sheds its oldest connection still waiting") {
    Fixture f;
    SamplingProxyOptions options;
    options.max_per_peer = 3;
    options.head_timeout = 60s;
    auto proxy = f.make(options);
    RawClient oldest(proxy->port());
    RawClient second(proxy->port());
    RawClient third(proxy->port());
    RawClient client(proxy->port());
    CHECK(oldest.closed_by_peer(5s));
    client.send(sdk_request("/GetSamplingRules", "{}"));
    const auto response = client.read_response();
    REQUIRE(response.has_value());
    CHECK(response->status == 200);
    CHECK(f.counters.get(Counter::listener_connections_shed) == 1);
}
