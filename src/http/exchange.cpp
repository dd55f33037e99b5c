// HttpExchange: one blocking request on a reusable easy handle, capped and cancellable.
#include <xrayd/http/exchange.h>

#include <cstddef>
#include <string>

#include <fmt/format.h>

#include <xrayd/http/header_text.h>

namespace xrayd {

namespace {

// Where the callbacks put one response, and the caps they enforce.
struct ResponseSink {
    HttpResponse response;
    std::size_t max_body = 0;
    std::size_t header_bytes = 0;
    bool body_too_large = false;
    bool headers_too_large = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    auto* sink = static_cast<ResponseSink*>(user);
    const std::size_t n = size * count;
    if (n > sink->max_body - sink->response.body.size()) {
        sink->body_too_large = true;
        return 0;  // curl reports CURLE_WRITE_ERROR
    }
    try {
        sink->response.body.append(data, n);
    } catch (...) {
        return 0;
    }
    return n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    auto* sink = static_cast<ResponseSink*>(user);
    HttpResponse* response = &sink->response;
    const std::string_view line(data, size * count);
    sink->header_bytes += line.size();
    if (sink->header_bytes > max_response_header_bytes) {
        sink->headers_too_large = true;
        return 0;
    }
    try {
        if (line.substr(0, 5) == "HTTP/") {
            response->headers.clear();  // a new response (redirect, 100-continue, CONNECT)
        } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
            response->headers.emplace_back(std::string(trim_header_text(line.substr(0, colon))),
                                           std::string(trim_header_text(line.substr(colon + 1))));
        }
    } catch (...) {
        return 0;
    }
    return size * count;
}

HttpErrc classify(CURLcode rc) noexcept {
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return HttpErrc::timeout;
    case CURLE_COULDNT_CONNECT: return HttpErrc::connect;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return HttpErrc::resolve;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE: return HttpErrc::tls;
    default: return HttpErrc::other;
    }
}

// Polled at least this often even when nothing happens: a cancellation whose fd write failed
// (the flag is the truth) or whose deadline passed is noticed within this.
constexpr int max_poll_ms = 200;
constexpr std::string_view cancelled_message = "cancelled by shutdown";
constexpr std::string_view deadline_message = "the deadline passed before the request was sent";

HttpError error_of(HttpErrc code, std::string message) {
    HttpError e;
    e.code = code;
    e.message = std::move(message);
    return e;
}

HttpError transfer_error(CURLcode rc, long os_errno, const char* error_buffer,
                         const ResponseSink& sink, std::size_t max_body) {
    HttpError e;
    e.curl_code = rc;
    e.os_errno = os_errno;
    if (sink.body_too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        e.code = HttpErrc::too_large;
        e.message = fmt::format("the response body is longer than {} bytes", max_body);
    } else if (sink.headers_too_large) {
        e.code = HttpErrc::too_large;
        e.message =
            fmt::format("the response headers are longer than {} bytes", max_response_header_bytes);
    } else if (rc == CURLE_ABORTED_BY_CALLBACK) {
        e.code = HttpErrc::cancelled;
        e.message = std::string(cancelled_message);
    } else {
        e.code = classify(rc);
        e.message = curl_easy_strerror(rc);
        if (error_buffer[0] != '\0') {
            e.message += ": ";
            e.message += error_buffer;
        }
    }
    return e;
}

}  // namespace

std::string_view HttpResponse::header(std::string_view name) const noexcept {
    for (const auto& [key, value] : headers) {
        if (ascii_iequals(key, name)) {
            return value;
        }
    }
    return {};
}

HttpExchange::HttpExchange() : multi_(CurlMulti::create()), easy_(CurlEasy::create()) {}

CURLcode HttpExchange::run_transfer(const Cancellation* cancel) noexcept {
    if (multi_.add(easy_) != CURLM_OK) {
        return CURLE_OUT_OF_MEMORY;
    }
    CURLcode result = CURLE_OK;
    while (true) {
        if (is_cancelled(cancel)) {
            // ABORTED_BY_CALLBACK stands for "cancelled" (no callback aborts); a deadline that
            // passed is the caller's time running out: a timeout.
            result =
                cancel->cancel_requested() ? CURLE_ABORTED_BY_CALLBACK : CURLE_OPERATION_TIMEDOUT;
            break;
        }
        int running = 0;
        if (multi_.perform(&running) != CURLM_OK) {
            result = CURLE_FAILED_INIT;
            break;
        }
        if (running == 0) {
            break;
        }
        curl_waitfd extra{};
        unsigned extra_count = 0;
        if (cancel != nullptr) {
            extra.fd = cancel->fd();
            extra.events = CURL_WAIT_POLLIN;
            extra_count = 1;
        }
        if (curl_multi_poll(multi_.get(), extra_count != 0 ? &extra : nullptr, extra_count,
                            max_poll_ms, nullptr) != CURLM_OK) {
            result = CURLE_FAILED_INIT;
            break;
        }
    }
    bool finished = result != CURLE_OK;
    while (CURLMsg* msg = multi_.next_message()) {
        if (!finished && msg->msg == CURLMSG_DONE && msg->easy_handle == easy_.get()) {
            result = msg->data.result;
            finished = true;
        }
    }
    if (!finished) {
        result = CURLE_FAILED_INIT;  // not running, yet no completion: never seen, not trusted
    }
    (void)multi_.remove(easy_);
    return result;
}

Result<HttpResponse, HttpError> HttpExchange::perform(const ExchangeRequest& request,
                                                      const Cancellation* cancel) noexcept {
    try {
        if (is_cancelled(cancel)) {
            if (cancel->cancel_requested()) {
                return fail(error_of(HttpErrc::cancelled, std::string(cancelled_message)));
            }
            HttpError e = error_of(HttpErrc::timeout, std::string(deadline_message));
            e.curl_code = CURLE_OPERATION_TIMEDOUT;
            return fail(std::move(e));
        }
        if (request.transport == nullptr) {
            return fail(error_of(HttpErrc::other, "no transport options given"));
        }
        ResponseSink sink;
        sink.max_body = request.max_body;
        // Copies: curl wants NUL-terminated strings, and the method must outlive the transfer.
        const std::string method(request.method);
        const std::string url(request.url);
        char error_buffer[CURL_ERROR_SIZE] = {};
        curl_easy_reset(easy_.get());
        CurlFirstError set;
        set(apply_transport(easy_, *request.transport));
        if (request.url_parts != nullptr) {
            set(easy_.set(CURLOPT_CURLU, request.url_parts->get()));
        } else {
            set(easy_.set(CURLOPT_URL, url.c_str()));
        }
        if (request.path_as_is) {
            set(easy_.set(CURLOPT_PATH_AS_IS, 1L));
        }
        if (request.http_1_1) {
            set(easy_.set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1)));
        }
        set(easy_.set(CURLOPT_ERRORBUFFER, error_buffer));
        if (request.headers != nullptr) {
            set(easy_.set(CURLOPT_HTTPHEADER, request.headers->get()));
        }
        set(easy_.set(CURLOPT_WRITEFUNCTION, &on_body));
        set(easy_.set(CURLOPT_WRITEDATA, &sink));
        set(easy_.set(CURLOPT_HEADERFUNCTION, &on_header));
        set(easy_.set(CURLOPT_HEADERDATA, &sink));
        // Refuses a too-long Content-Length before any body byte; on_body caps chunked bodies.
        set(easy_.set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(request.max_body)));
        if (method == "GET" && request.body.empty()) {
            set(easy_.set(CURLOPT_HTTPGET, 1L));
        } else if (method == "HEAD") {
            set(easy_.set(CURLOPT_NOBODY, 1L));
        } else {
            // Never a null pointer: curl would then read the body from its read callback.
            set(easy_.set(CURLOPT_POSTFIELDS, request.body.empty() ? "" : request.body.data()));
            set(easy_.set(CURLOPT_POSTFIELDSIZE_LARGE,
                          static_cast<curl_off_t>(request.body.size())));
            if (method != "POST") {
                set(easy_.set(CURLOPT_CUSTOMREQUEST, method.c_str()));
            }
        }
        if (set.code() != CURLE_OK) {
            HttpError e = error_of(HttpErrc::other, std::string("libcurl rejected an option: ") +
                                                        curl_easy_strerror(set.code()));
            e.curl_code = set.code();
            return fail(std::move(e));
        }
        const CURLcode rc = run_transfer(cancel);
        long os_errno = 0;
        if (rc != CURLE_OK && easy_.info(CURLINFO_OS_ERRNO, &os_errno) != CURLE_OK) {
            os_errno = 0;
        }
        // Nothing of this call may point into our stack, or the caller's, once we return.
        (void)easy_.set(CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
        (void)easy_.set(CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
        (void)easy_.set(CURLOPT_CURLU, static_cast<CURLU*>(nullptr));
        (void)easy_.set(CURLOPT_WRITEDATA, static_cast<void*>(nullptr));
        (void)easy_.set(CURLOPT_HEADERDATA, static_cast<void*>(nullptr));
        if (rc != CURLE_OK) {
            return fail(transfer_error(rc, os_errno, error_buffer, sink, request.max_body));
        }
        if (easy_.info(CURLINFO_RESPONSE_CODE, &sink.response.status) != CURLE_OK ||
            sink.response.status < 100) {
            return fail(error_of(HttpErrc::other, "no HTTP status"));
        }
        return std::move(sink.response);
    } catch (...) {
        return fail(error_of(HttpErrc::other, "out of memory"));
    }
}

}  // namespace xrayd
