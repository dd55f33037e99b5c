// Tests of TransferPool against a real HTTP server on loopback: signed requests out, finished
// attempts back (answers, transport failures, oversized answers, timeouts), slots resized
// without cancelling a transfer, abandon and wakeup; the epoll loop under it (CurlEpoll: curl's
// timer, kept-alive sockets, a peer that hangs up mid-answer, its fds).
#include "src/upload/transfer_pool.h"

#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <xrayd/batch/batch.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/queue/segment.h>

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

namespace {

// Wakes the pool once `after` has passed unless disarmed first, so a poll() that would hang
// ends and the test fails on fired() instead of on its time limit. The limit is far beyond what
// the tests need: it detects a hang, it does not time anything.
class HangGuard {
public:
    explicit HangGuard(TransferPool& pool, std::chrono::seconds after = 15s)
        : thread_([this, &pool, after] {
              std::unique_lock lock(mutex_);
              if (!disarmed_signal_.wait_for(lock, after, [this] { return disarmed_; })) {
                  fired_ = true;
                  lock.unlock();
                  pool.wakeup();
              }
          }) {}
    ~HangGuard() { disarm(); }
    HangGuard(const HangGuard&) = delete;
    HangGuard& operator=(const HangGuard&) = delete;

    // Stops the guard; true when it had fired.
    bool disarm() {
        {
            std::lock_guard lock(mutex_);
            disarmed_ = true;
        }
        disarmed_signal_.notify_all();
        if (thread_.joinable()) {
            thread_.join();
        }
        return fired();
    }
    [[nodiscard]] bool fired() {
        std::lock_guard lock(mutex_);
        return fired_;
    }

private:
    std::mutex mutex_;
    std::condition_variable disarmed_signal_;
    bool disarmed_ = false;
    bool fired_ = false;
    std::thread thread_;  // last: it uses the members above
};

// Descriptors of this process whose link names start with `prefix` ("anon_inode:[eventfd]",
// "socket:"), or all of them for an empty prefix.
std::size_t open_fds(std::string_view prefix = {}) {
    std::size_t count = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code error;
        const std::string target = std::filesystem::read_symlink(entry.path(), error).string();
        if (!error && target.starts_with(prefix)) {
            ++count;
        }
    }
    return count;
}

// A one-connection HTTP server on 127.0.0.1 that reads one request (head and Content-Length
// body), writes the start of an answer that promises more, and closes the connection.
class HangUpServer {
public:
    HangUpServer() : listener_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        REQUIRE(listener_.valid());
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        REQUIRE(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), length) == 0);
        REQUIRE(::listen(listener_.get(), 1) == 0);
        REQUIRE(::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address), &length) ==
                0);
        port_ = ntohs(address.sin_port);
        thread_ = std::thread([this] { serve_one(); });
    }
    ~HangUpServer() {
        ::shutdown(listener_.get(), SHUT_RDWR);  // ends an accept() still waiting
        thread_.join();
    }
    HangUpServer(const HangUpServer&) = delete;
    HangUpServer& operator=(const HangUpServer&) = delete;

    [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

private:
    void serve_one() {
        const xrayd::UniqueFd connection(
            ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!connection.valid()) {
            return;
        }
        std::string request;
        std::array<char, 4096> buffer{};
        std::size_t wanted = std::string::npos;  // head + body, once the head is in
        while (request.size() < wanted) {
            const ssize_t got = ::read(connection.get(), buffer.data(), buffer.size());
            if (got <= 0) {
                return;
            }
            request.append(buffer.data(), static_cast<std::size_t>(got));
            const std::size_t head_end = request.find("\r\n\r\n");
            const std::size_t field = request.find("Content-Length: ");
            if (head_end != std::string::npos && field != std::string::npos) {
                wanted = head_end + 4 + std::stoul(request.substr(field + 16));
            }
        }
        constexpr std::string_view partial =
            "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"UnprocessedTrace";
        (void)!::write(connection.get(), partial.data(), partial.size());
    }

    xrayd::UniqueFd listener_;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

}  // namespace

TEST_CASE("wakeup from another thread ends a long poll early") {
    HttpTestServer server;
    PoolFixture f(server);
    HangGuard guard(f.pool);
    std::thread waker([&] {
        std::this_thread::sleep_for(50ms);
        f.pool.wakeup();
    });
    f.pool.poll(60'000);
    waker.join();
    CHECK_FALSE(guard.disarm());
}

TEST_CASE("a wakeup before poll ends the next poll at once, and is used up by it") {
    HttpTestServer server;
    PoolFixture f(server);
    HangGuard guard(f.pool);
    f.pool.wakeup();
    f.pool.wakeup();  // two wake-ups before a wait are one
    f.pool.poll(60'000);
    CHECK_FALSE(guard.fired());
    f.pool.wakeup();
    f.pool.poll(60'000);
    CHECK_FALSE(guard.disarm());
}

TEST_CASE("a started transfer goes out and completes on poll() alone, with no wake-up") {
    // curl asks for a deadline of "now" when a transfer is added; poll() must honour it rather
    // than sleep until the next wake-up, and then wait on the transfer's socket. So too when
    // answers may wait: a first request, still connecting, is not one whose answer waits.
    for (const bool answers_may_wait : {false, true}) {
        CAPTURE(answers_may_wait);
        HttpTestServer server;
        PoolFixture f(server);
        f.start(2, 30'000ms);
        HangGuard guard(f.pool);
        std::optional<FinishedTransfer> done;
        while (!done && !guard.fired()) {
            f.pool.poll(60'000, answers_may_wait);
            done = f.pool.next_finished();
        }
        CHECK_FALSE(guard.disarm());
        REQUIRE(done.has_value());
        CHECK(done->result == CURLE_OK);
        CHECK(done->status == 200);
        CHECK(server.request_count() == 1);
    }
}

// Both sides of CurlEpoll's answer wait: a request sent whole on a kept-alive connection, its
// answer coming 150 ms later, and curl's own deadlines settled before the wait (a deadline of
// curl's ends a wait too, and curl then reads what the socket has).
struct AnswerOnTheWay {
    explicit AnswerOnTheWay(HttpTestServer& server) : f(server), guard(f.pool) {
        server.push_response({});
        server.push_response({.delay = 150ms});
        f.start(1, 30'000ms);  // opens the connection the second request reuses
        auto first = f.wait_finished();
        REQUIRE(first.has_value());
        f.start(1, 30'000ms);
        for (int i = 0; i < 10; ++i) {  // sends it, then lets curl's near deadlines pass
            REQUIRE(f.pool.perform());
            std::this_thread::sleep_for(2ms);
        }
        REQUIRE_FALSE(f.pool.next_finished().has_value());
        REQUIRE(server.request_count() == 2);
    }
    PoolFixture f;
    HangGuard guard;
};

TEST_CASE("answers that may wait do not end a poll, and are handled when it ends") {
    HttpTestServer server;
    AnswerOnTheWay s(server);
    const auto before = std::chrono::steady_clock::now();
    s.f.pool.poll(600, true);
    // epoll_wait never returns before its timeout on its own: sooner, the answer ended it.
    CHECK(std::chrono::steady_clock::now() - before >= 600ms);
    auto done = s.f.pool.next_finished();
    REQUIRE(done.has_value());
    CHECK(done->status == 200);
    CHECK_FALSE(s.guard.disarm());
}

TEST_CASE("answers that must not wait end a poll as they arrive") {
    HttpTestServer server;
    AnswerOnTheWay s(server);
    std::optional<FinishedTransfer> done;
    while (!done && !s.guard.fired()) {  // the guard's wake-up would end it too, but fails
        s.f.pool.poll(60'000, false);
        done = s.f.pool.next_finished();
    }
    CHECK_FALSE(s.guard.disarm());
    REQUIRE(done.has_value());
    CHECK(done->status == 200);
}

TEST_CASE("many transfers reuse the kept-alive connections and all complete") {
    HttpTestServer server;
    constexpr std::size_t slots = 4;
    constexpr int total = 200;
    PoolFixture f(server, slots);
    int started = 0;
    int ok = 0;
    int finished = 0;
    HangGuard guard(f.pool, 60s);
    while (finished < total && !guard.fired()) {
        while (f.pool.has_idle() && started < total) {
            f.start(1, 30'000ms);
            ++started;
        }
        REQUIRE(f.pool.perform());
        bool any = false;
        while (auto done = f.pool.next_finished()) {
            ++finished;
            ok += done->result == CURLE_OK && done->status == 200 ? 1 : 0;
            any = true;
        }
        if (!any) {  // else the slots just freed take the next jobs first
            f.pool.poll(60'000);
        }
    }
    CHECK_FALSE(guard.disarm());
    CHECK(ok == total);
    std::set<std::uint16_t> connections;
    for (const auto& request : server.requests()) {
        connections.insert(request.client_port);
    }
    CHECK(connections.size() <= slots);
}

TEST_CASE("a server that hangs up in the middle of its answer gives a transport failure") {
    HangUpServer server;
    xrayd::test::Harness h;
    xrayd::RateLimiter internal{10s};
    TransferPool pool(xrayd::make_xray_target(server.url(), "/TraceSegments"),
                      PoolFixture::transport(), "us-east-2", 1, h.logger, internal);
    REQUIRE(pool.start(UploadJob(h.make_batch(1)), test_credentials, 30'000ms, xrayd::Clock::now())
                .ok());
    HangGuard guard(pool);
    std::optional<FinishedTransfer> done;
    while (!done && !guard.fired()) {
        REQUIRE(pool.perform());
        done = pool.next_finished();
        if (!done) {
            pool.poll(60'000);
        }
    }
    CHECK_FALSE(guard.disarm());
    REQUIRE(done.has_value());
    CHECK(done->result == CURLE_PARTIAL_FILE);
    CHECK_FALSE(done->failure.empty());
    CHECK(done->job.batch.segment_count() == 1);
}

TEST_CASE("a server that closes without any answer gives a transport failure") {
    HttpTestServer server;
    server.push_response({.drop_connection = true});
    PoolFixture f(server);
    f.start(1, 30'000ms);
    HangGuard guard(f.pool);
    auto done = f.wait_finished();
    CHECK_FALSE(guard.disarm());
    REQUIRE(done.has_value());
    CHECK(done->result == CURLE_GOT_NOTHING);
}

TEST_CASE("a large body goes out without Expect: 100-continue") {
    // curl adds it to POSTs over 1 MiB unless the header list says "Expect:".
    HttpTestServer server;
    PoolFixture f(server);
    xrayd::Batch batch(f.h.budget);
    const std::string padding(60'000, 'p');
    for (int i = 0; i < 20; ++i) {
        const std::string doc = fmt::format(
            R"({{"name":"big","id":"{}","trace_id":"{}","start_time":1.5,"annotations":{{"pad":"{}"}}}})",
            xrayd::test::segment_id(i), xrayd::test::trace_id(i), padding);
        auto segment = xrayd::Segment::make(f.h.budget, doc, xrayd::test::segment_id(i),
                                            xrayd::test::trace_id(i), xrayd::Clock::now());
        REQUIRE(segment != nullptr);
        REQUIRE(batch.append(*segment));
    }
    batch.seal();
    REQUIRE(batch.body().size() > (1U << 20));
    REQUIRE(
        f.pool.start(UploadJob(std::move(batch)), test_credentials, 30'000ms, xrayd::Clock::now())
            .ok());
    auto done = f.wait_finished();
    REQUIRE(done.has_value());
    CHECK(done->status == 200);
    const auto requests = server.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].body.size() > (1U << 20));
    CHECK_FALSE(requests[0].header("Expect").has_value());
}

TEST_CASE("the pool's epoll fd, eventfd and sockets are closed when it is destroyed") {
    HttpTestServer server;
    const std::size_t before = open_fds();
    const std::size_t epoll_before = open_fds("anon_inode:[eventpoll]");
    const std::size_t eventfd_before = open_fds("anon_inode:[eventfd]");
    {
        PoolFixture f(server);
        // Two epoll sets: everything, and the eventfd alone (CurlEpoll's wait for answers).
        CHECK(open_fds("anon_inode:[eventpoll]") == epoll_before + 2);
        CHECK(open_fds("anon_inode:[eventfd]") == eventfd_before + 1);
        f.start(1);
        auto done = f.wait_finished();  // its connection stays in the cache
        REQUIRE(done.has_value());
        CHECK(done->status == 200);
    }
    CHECK(open_fds("anon_inode:[eventpoll]") == epoll_before);
    CHECK(open_fds("anon_inode:[eventfd]") == eventfd_before);
    // The server closes its end of the connection once it sees ours close.
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (open_fds() != before && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(10ms);
    }
    CHECK(open_fds() == before);
}
