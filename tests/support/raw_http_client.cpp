// RawHttpClient: raw HTTP/1.1 over a loopback TCP socket.
#include "raw_http_client.h"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>

namespace xrayd::test {

RawHttpClient::RawHttpClient(std::uint16_t port)
    : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd_.valid());
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
}

void RawHttpClient::send(std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
        REQUIRE(n > 0);
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

bool RawHttpClient::try_send(std::string_view data) noexcept {
    while (!data.empty()) {
        const ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

std::optional<std::string> RawHttpClient::Response::header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (k.size() == name.size() &&
            std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) ==
                       std::tolower(static_cast<unsigned char>(b));
            })) {
            return v;
        }
    }
    return std::nullopt;
}

std::optional<RawHttpClient::Response> RawHttpClient::read_response() {
    std::size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
        if (!fill(20000)) {
            return std::nullopt;
        }
    }
    Response r;
    const std::string head = buffer_.substr(0, header_end);
    std::size_t line_end = head.find("\r\n");
    const std::string status_line = head.substr(0, line_end);
    REQUIRE(status_line.size() >= 12);
    r.status = std::stoi(status_line.substr(9, 3));
    std::size_t content_length = 0;
    while (line_end != std::string::npos) {
        const std::size_t start = line_end + 2;
        line_end = head.find("\r\n", start);
        const std::string line = head.substr(start, line_end - start);
        const std::size_t colon = line.find(':');
        if (colon == std::string::npos) {
            continue;
        }
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') {
            value.erase(0, 1);
        }
        r.headers.emplace_back(line.substr(0, colon), value);
    }
    if (auto cl = r.header("Content-Length")) {
        content_length = std::stoul(*cl);
    }
    buffer_.erase(0, header_end + 4);
    while (buffer_.size() < content_length) {
        if (!fill(20000)) {
            return std::nullopt;
        }
    }
    r.body = buffer_.substr(0, content_length);
    buffer_.erase(0, content_length);
    return r;
}

bool RawHttpClient::closed_by_peer(std::chrono::milliseconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return false;
        }
        const Received got = receive(static_cast<int>(left.count()));
        if (got != Received::data) {
            return got == Received::closed;
        }
    }
}

bool RawHttpClient::fill(int timeout_ms) {
    return receive(timeout_ms) == Received::data;
}

RawHttpClient::Received RawHttpClient::receive(int timeout_ms) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) {
        return Received::nothing;
    }
    char chunk[16384];
    const ssize_t n = ::recv(fd_.get(), chunk, sizeof(chunk), 0);
    if (n <= 0) {
        return Received::closed;  // end of stream or reset
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return Received::data;
}

}  // namespace xrayd::test
