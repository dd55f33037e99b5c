// ResponseCapture: the body, x-amzn-ErrorType and error text of a transfer to an AWS API.
#include <xrayd/http/response_capture.h>

#include <fmt/format.h>

#include <xrayd/http/header_text.h>
#include <xrayd/log/remote_text.h>

namespace xrayd {

CURLcode ResponseCapture::attach(CurlEasy& easy) noexcept {
    CurlFirstError set;
    set(easy.set(CURLOPT_WRITEFUNCTION, on_body));
    set(easy.set(CURLOPT_WRITEDATA, static_cast<void*>(this)));
    set(easy.set(CURLOPT_HEADERFUNCTION, on_header));
    set(easy.set(CURLOPT_HEADERDATA, static_cast<void*>(this)));
    set(easy.set(CURLOPT_ERRORBUFFER, error_buffer_));
    return set.code();
}

void ResponseCapture::reset() noexcept {
    body_.clear();
    error_type_.clear();
    too_large_ = false;
    error_buffer_[0] = '\0';
}

std::size_t ResponseCapture::on_body(char* data, std::size_t size, std::size_t count,
                                     void* user) noexcept {
    auto* self = static_cast<ResponseCapture*>(user);
    const std::size_t n = size * count;
    if (self->body_.size() + n > self->max_body_) {
        self->too_large_ = true;
        return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    try {
        self->body_.append(data, n);
    } catch (...) {
        return 0;
    }
    return n;
}

std::size_t ResponseCapture::on_header(char* data, std::size_t size, std::size_t count,
                                       void* user) noexcept {
    auto* self = static_cast<ResponseCapture*>(user);
    const std::size_t n = size * count;
    const std::string_view line(data, n);
    if (line.starts_with("HTTP/")) {
        self->error_type_.clear();  // a new response (after a proxy CONNECT, say)
        return n;
    }
    constexpr std::string_view name = "x-amzn-errortype:";
    if (ascii_istarts_with(line, name)) {
        try {
            self->error_type_.assign(trim_header_text(line.substr(name.size())));
        } catch (...) {
            // Only the retry decision's throttling check reads it; losing it is harmless.
        }
    }
    return n;
}

std::string ResponseCapture::failure(CURLcode result) const noexcept {
    try {
        if (too_large_) {
            return fmt::format("response larger than {} bytes", max_body_);
        }
        if (error_buffer_[0] != '\0') {
            // libcurl's message can quote what the peer sent (a status line, a header).
            return fmt::format("{}: {}", curl_easy_strerror(result), RemoteText{error_buffer_});
        }
        return curl_easy_strerror(result);
    } catch (...) {
        return {};
    }
}

TransferInfo read_transfer_info(const CurlEasy& easy, CURLcode result) noexcept {
    TransferInfo info;
    if (result == CURLE_OK) {
        if (easy.info(CURLINFO_RESPONSE_CODE, &info.status) != CURLE_OK) {
            info.status = 0;
        }
        curl_off_t retry_after_s = 0;
        if (easy.info(CURLINFO_RETRY_AFTER, &retry_after_s) == CURLE_OK) {
            info.retry_after_s = retry_after_s;
        }
    } else if (easy.info(CURLINFO_OS_ERRNO, &info.os_errno) != CURLE_OK) {
        info.os_errno = 0;
    }
    return info;
}

}  // namespace xrayd
