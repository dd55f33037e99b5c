// HttpTestServer: a real HTTP/HTTPS server on 127.0.0.1 (libmicrohttpd) that records requests
// and answers from a script, for tests of HTTP clients.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "test_certificate.h"

struct MHD_Daemon;
struct MHD_Connection;

namespace xrayd::test {

// One request as the server received it.
struct RecordedRequest {
    std::string method;
    std::string path;
    std::vector<std::pair<std::string, std::string>> headers;  // names as sent, in order
    std::string body;
    std::chrono::steady_clock::time_point arrived;  // when its first byte was handled
    std::uint16_t client_port = 0;                  // tells connections apart

    // The first header of that name, case-insensitively; nullopt when absent.
    [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
};

// What to answer one request with.
struct ScriptedResponse {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers{};
    std::string body = R"({"UnprocessedTraceSegments":[]})";
    std::chrono::milliseconds delay{0};  // before answering (cut short when the server stops)
    bool drop_connection = false;        // close the connection without any answer
};

// An answer of that status and body (and headers, and delay), for push_response().
[[nodiscard]] ScriptedResponse scripted(
    int status, std::string body, std::vector<std::pair<std::string, std::string>> headers = {},
    std::chrono::milliseconds delay = {});

struct HttpTestServerOptions {
    bool tls = false;        // HTTPS with a freshly generated self-signed certificate
    std::uint16_t port = 0;  // 0: any free port
    // Keep every request for requests(). Off for long runs (fuzzing): only the count is kept,
    // so memory stays flat.
    bool record_requests = true;
};

// Listens on 127.0.0.1 from construction until destruction (or stop()). Thread per
// connection, so a delayed answer holds up only its own connection. Every public method is
// thread-safe. Not movable: the server threads point at it.
class HttpTestServer {
public:
    // Throws std::runtime_error when the server cannot start (or TLS is unsupported).
    explicit HttpTestServer(HttpTestServerOptions options = {});
    ~HttpTestServer();
    HttpTestServer(const HttpTestServer&) = delete;
    HttpTestServer& operator=(const HttpTestServer&) = delete;

    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    // "http://127.0.0.1:<port>" or "https://..."
    [[nodiscard]] std::string url() const;
    // Path of the CA file that verifies the server (empty without TLS).
    [[nodiscard]] std::string ca_file() const;

    // Queues answers, used in order; once used up the default answers.
    void push_response(ScriptedResponse response);
    void set_default_response(ScriptedResponse response);

    [[nodiscard]] std::vector<RecordedRequest> requests() const;
    // The recorded requests, which are then forgotten (request_count() still counts them):
    // lets a long run (fuzzing) check each request and keep memory flat.
    [[nodiscard]] std::vector<RecordedRequest> take_requests();
    [[nodiscard]] std::size_t request_count() const;
    // Most requests ever being handled at once (from arrival to the end of the answer).
    [[nodiscard]] std::size_t max_concurrent() const;
    // Requests whose whole answer has been written to the connection.
    [[nodiscard]] std::size_t answered_count() const;

    // Closes the listening socket and every connection: new connections are refused.
    void stop();
    // Listens again, on the same port.
    void start();
    [[nodiscard]] bool running() const;

private:
    friend struct ServerCallbacks;  // the libmicrohttpd callbacks (http_test_server.cpp)
    void start_locked();

    HttpTestServerOptions options_;
    std::optional<TestCertificate> certificate_;
    std::uint16_t port_ = 0;

    mutable std::mutex mutex_;
    std::condition_variable stop_signal_;
    bool stopping_ = false;
    MHD_Daemon* daemon_ = nullptr;
    std::deque<ScriptedResponse> script_;
    ScriptedResponse default_response_;
    std::vector<RecordedRequest> requests_;
    std::size_t unrecorded_ = 0;  // requests answered unrecorded or taken by take_requests()
    std::size_t active_ = 0;
    std::size_t max_active_ = 0;
    std::size_t answered_ = 0;
};

}  // namespace xrayd::test
