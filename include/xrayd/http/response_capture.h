// ResponseCapture: what a libcurl transfer to an AWS API brings back besides its status — the
// body (bounded), the x-amzn-ErrorType header, libcurl's error text — and the status, Retry-After
// and errno read from the finished handle. Shared by the uploader's and the OTLP exporter's slots.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <curl/curl.h>

#include <xrayd/http/curl.h>

namespace xrayd {

// One per transfer slot, reset before each transfer. Not movable: libcurl holds its address
// (attach()). The pipeline thread of its slot only.
class ResponseCapture {
public:
    // Bodies past `max_body` bytes abort their transfer (CURLE_WRITE_ERROR; failure() says so).
    explicit ResponseCapture(std::size_t max_body) noexcept : max_body_(max_body) {}
    ResponseCapture(const ResponseCapture&) = delete;
    ResponseCapture& operator=(const ResponseCapture&) = delete;

    // Points `easy`'s body, header and error-buffer callbacks at this capture. The first option
    // libcurl rejects, CURLE_OK when all took.
    [[nodiscard]] CURLcode attach(CurlEasy& easy) noexcept;
    // Empties it for the next transfer on the same handle.
    void reset() noexcept;

    [[nodiscard]] const std::string& body() const noexcept { return body_; }
    [[nodiscard]] std::string& body() noexcept { return body_; }
    // The answer's x-amzn-ErrorType (the last response's, after a proxy CONNECT); "" if none.
    [[nodiscard]] const std::string& error_type() const noexcept { return error_type_; }
    [[nodiscard]] std::string& error_type() noexcept { return error_type_; }
    // What a transfer that ended with `result` (not CURLE_OK) failed of, for a log line: the
    // body limit, or libcurl's words with the peer's bytes escaped. "" if out of memory.
    [[nodiscard]] std::string failure(CURLcode result) const noexcept;

private:
    static std::size_t on_body(char* data, std::size_t size, std::size_t count,
                               void* user) noexcept;
    static std::size_t on_header(char* data, std::size_t size, std::size_t count,
                                 void* user) noexcept;

    std::size_t max_body_;
    std::string body_;
    std::string error_type_;
    bool too_large_ = false;
    char error_buffer_[CURL_ERROR_SIZE]{};
};

// What the handle of a finished transfer says: the HTTP status and Retry-After (answered), or
// the OS errno (a transport failure). Zero for what it cannot tell.
struct TransferInfo {
    long status = 0;
    std::int64_t retry_after_s = 0;
    long os_errno = 0;
};
[[nodiscard]] TransferInfo read_transfer_info(const CurlEasy& easy, CURLcode result) noexcept;

}  // namespace xrayd
