// RawHttpClient: a TCP client on loopback that writes raw HTTP/1.1 bytes and reads answers, as an
// SDK's HTTP stack (or a hostile client) does; for tests of the proxy and admin listeners.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <xrayd/common/unique_fd.h>

namespace xrayd::test {

// One connected socket to 127.0.0.1:port. Test thread only; the constructor REQUIREs success
// through doctest, so use it inside a test case.
class RawHttpClient {
public:
    explicit RawHttpClient(std::uint16_t port);

    // Writes all of `data` (REQUIREs success).
    void send(std::string_view data);
    // Writes what it can; false when the peer has closed or reset the connection.
    [[nodiscard]] bool try_send(std::string_view data) noexcept;

    struct Response {
        int status = 0;
        std::vector<std::pair<std::string, std::string>> headers;
        std::string body;
        // The first header of that name, case-insensitively.
        [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
    };

    // Reads one response (Content-Length framed); nullopt when the connection closed first or
    // nothing came within 20 s.
    [[nodiscard]] std::optional<Response> read_response();

    // True once the peer closed (or reset) the connection within `deadline`; data that
    // arrives first is kept for read_response() / rest().
    [[nodiscard]] bool closed_by_peer(std::chrono::milliseconds deadline);

    // What was received and not yet taken by read_response().
    [[nodiscard]] const std::string& rest() const noexcept { return buffer_; }

private:
    enum class Received { data, closed, nothing };
    bool fill(int timeout_ms);  // true when data arrived
    Received receive(int timeout_ms);

    UniqueFd fd_;
    std::string buffer_;
};

}  // namespace xrayd::test
