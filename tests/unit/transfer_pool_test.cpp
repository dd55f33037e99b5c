// Tests of TransferPool against a real HTTP server on loopback: signed requests out, finished
// attempts back (answers, transport failures, oversized answers, timeouts), slots resized
// without cancelling a transfer, abandon and wakeup.
#include "src/upload/transfer_pool.h"

#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include <xrayd/xray/xray_request.h>

#include "http_test_server.h"
#include "upload_fixture.h"

using namespace std::chrono_literals;
using xrayd::FinishedTransfer;
using xrayd::TransferPool;
using xrayd::UploadJob;
using xrayd::test::Harness;
using xrayd::test::HttpTestServer;
using xrayd::test::test_credentials;

namespace {

struct PoolFixture {
    explicit PoolFixture(const HttpTestServer& server, std::size_t slots = 1)
        : pool(xrayd::make_xray_target(server.url(), "/TraceSegments"), transport(), "us-east-2",
               slots, h.logger, internal) {}

    static xrayd::TransportOptions transport() {
        xrayd::TransportOptions t;
        t.user_agent = "xrayd/test";
        return t;
    }

    // Starts a job of `n` segments; REQUIREs that it started.
    void start(int n, std::chrono::milliseconds timeout = 5000ms) {
        REQUIRE(pool.has_idle());
        UploadJob job(h.make_batch(n));
        const auto started =
            pool.start(std::move(job), test_credentials, timeout, xrayd::Clock::now());
        REQUIRE(started.ok());
    }

    // Drives the transfers until one finishes or the deadline passes.
    std::optional<FinishedTransfer> wait_finished(std::chrono::seconds deadline = 20s) {
        const auto until = std::chrono::steady_clock::now() + deadline;
        while (std::chrono::steady_clock::now() < until) {
            REQUIRE(pool.perform());
            if (auto done = pool.next_finished()) {
                return done;
            }
            pool.poll(20);
        }
        return std::nullopt;
    }

    Harness h;
    xrayd::RateLimiter internal{10s};
    TransferPool pool;
};

}  // namespace

TEST_CASE("a transfer posts the job's body signed and hands back the job with the answer") {
    HttpTestServer server;
    server.push_response({.status = 400,
                          .headers = {{"x-amzn-ErrorType", "  ThrottlingException:http://x/ "}},
                          .body = R"({"message":"Rate exceeded"})"});
    PoolFixture f(server);
    CHECK(f.pool.size() == 1);
    CHECK(f.pool.target().url == server.url() + "/TraceSegments");
    UploadJob job(f.h.make_batch(3));
    job.failures = 2;
    const std::string body(job.batch.body());
    const auto before = xrayd::Clock::now();
    REQUIRE(f.pool.start(std::move(job), test_credentials, 5000ms, before).ok());
    CHECK(f.pool.in_flight() == 1);
    CHECK_FALSE(f.pool.has_idle());

    auto done = f.wait_finished();
    REQUIRE(done.has_value());
    CHECK(f.pool.in_flight() == 0);
    CHECK(f.pool.has_idle());
    CHECK(done->result == CURLE_OK);
    CHECK(done->status == 400);
    CHECK(done->body == R"({"message":"Rate exceeded"})");
    CHECK(done->error_type_header == "ThrottlingException:http://x/");
    CHECK(done->failure.empty());
    CHECK(done->started == before);
    CHECK(done->finished >= done->started);
    CHECK(done->job.batch.segment_count() == 3);
    CHECK(done->job.failures == 2);
    CHECK(done->job.batch.body() == body);

    const auto requests = server.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].method == "POST");
    CHECK(requests[0].path == "/TraceSegments");
    CHECK(requests[0].body == body);
    CHECK(requests[0].header("User-Agent") == "xrayd/test");
    REQUIRE(requests[0].header("Authorization").has_value());
    CHECK(requests[0].header("Authorization")->starts_with("AWS4-HMAC-SHA256 Credential="));
}

TEST_CASE("an answer's Retry-After is handed back in seconds, and the next answer on the slot "
          "starts clean") {
    HttpTestServer server;
    server.push_response({.status = 429,
                          .headers = {{"Retry-After", "7"}, {"x-amzn-ErrorType", "Throttled"}},
                          .body = "slow down"});
    PoolFixture f(server);
    f.start(1);
    auto first = f.wait_finished();
    REQUIRE(first.has_value());
    CHECK(first->status == 429);
    CHECK(first->retry_after_s == 7);
    CHECK(first->error_type_header == "Throttled");
    f.start(1);  // the same slot, again
    auto second = f.wait_finished();
    REQUIRE(second.has_value());
    CHECK(second->status == 200);
    CHECK(second->retry_after_s == 0);
    CHECK(second->error_type_header.empty());
    CHECK(second->body == R"({"UnprocessedTraceSegments":[]})");
}

TEST_CASE("a refused connection hands back the job with the transport failure and its errno") {
    HttpTestServer server;
    PoolFixture f(server);
    server.stop();
    f.start(2);
    auto done = f.wait_finished();
    REQUIRE(done.has_value());
    CHECK(done->result == CURLE_COULDNT_CONNECT);
    CHECK(done->os_errno == ECONNREFUSED);
    CHECK_FALSE(done->failure.empty());
    CHECK(done->job.batch.segment_count() == 2);
    CHECK(f.pool.has_idle());
}

TEST_CASE("an answer larger than max_response_bytes aborts the transfer and says so") {
    HttpTestServer server;
    server.push_response({.body = std::string(xrayd::max_response_bytes + 1, 'x')});
    PoolFixture f(server);
    f.start(1);
    auto done = f.wait_finished();
    REQUIRE(done.has_value());
    CHECK(done->result == CURLE_WRITE_ERROR);
    CHECK(done->failure == "response larger than 1048576 bytes");
}

TEST_CASE("a request past its timeout finishes as CURLE_OPERATION_TIMEDOUT") {
    HttpTestServer server;
    server.push_response({.delay = 3s});
    PoolFixture f(server);
    f.start(1, 200ms);
    auto done = f.wait_finished();
    REQUIRE(done.has_value());
    CHECK(done->result == CURLE_OPERATION_TIMEDOUT);
    CHECK(done->finished - done->started < 2s);
}

TEST_CASE("resize adds idle slots at once and removes busy ones only after they finish") {
    HttpTestServer server;
    server.set_default_response({.delay = 300ms});
    PoolFixture f(server);
    f.pool.resize(3);
    CHECK(f.pool.size() == 3);
    f.start(1);
    f.start(1);
    CHECK(f.pool.in_flight() == 2);
    f.pool.resize(1);  // one idle slot goes; both busy ones stay and keep their transfers
    CHECK(f.pool.size() == 2);
    CHECK(f.pool.in_flight() == 2);
    CHECK_FALSE(f.pool.has_idle());
    auto first = f.wait_finished();
    REQUIRE(first.has_value());
    CHECK(first->status == 200);
    f.pool.resize(1);
    CHECK(f.pool.size() == 1);
    CHECK(f.pool.in_flight() == 1);
    auto second = f.wait_finished();
    REQUIRE(second.has_value());
    CHECK(second->status == 200);
    CHECK(f.pool.size() == 1);
    CHECK(f.pool.in_flight() == 0);
    CHECK(server.request_count() == 2);
}

TEST_CASE("abandon cancels the transfers in flight, hands their jobs back, every slot is idle") {
    HttpTestServer server;
    server.set_default_response({.delay = 2s});
    PoolFixture f(server, 2);
    f.start(1);
    f.start(1);
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (server.request_count() < 2 && std::chrono::steady_clock::now() < until) {
        REQUIRE(f.pool.perform());
        f.pool.poll(20);
    }
    REQUIRE(server.request_count() == 2);
    const std::vector<xrayd::UploadJob> jobs = f.pool.abandon();
    CHECK(jobs.size() == 2);  // the caller spills or counts them
    CHECK(f.pool.in_flight() == 0);
    CHECK(f.pool.size() == 2);
    REQUIRE(f.pool.perform());
    CHECK_FALSE(f.pool.next_finished().has_value());
    f.start(1);  // a cancelled slot is usable again
    server.set_default_response({});
    CHECK(f.wait_finished().has_value());
}

TEST_CASE("wakeup from another thread ends a poll early") {
    HttpTestServer server;
    PoolFixture f(server);
    const auto start = std::chrono::steady_clock::now();
    std::thread waker([&] {
        std::this_thread::sleep_for(50ms);
        f.pool.wakeup();
    });
    f.pool.poll(10'000);
    waker.join();
    CHECK(std::chrono::steady_clock::now() - start < 5s);
}
