// Blocking HTTP client over one libcurl easy handle, capped and cancellable.
#include <xrayd/http/http_client.h>

#include <strings.h>

#include <algorithm>
#include <cstddef>
#include <string>

#include <fmt/format.h>

namespace xrayd {

namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' ||
                          s.back() == '\n')) {
        s.remove_suffix(1);
    }
    return s;
}

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
            response->headers.emplace_back(std::string(trim(line.substr(0, colon))),
                                           std::string(trim(line.substr(colon + 1))));
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

// Polled at least this often even when nothing happens, to notice a cancellation whose fd
// write failed (the flag is the truth).
constexpr int max_poll_ms = 200;
constexpr std::string_view cancelled_message = "cancelled by shutdown";

}  // namespace

std::string_view HttpResponse::header(std::string_view name) const noexcept {
    for (const auto& [key, value] : headers) {
        if (iequals(key, name)) {
            return value;
        }
    }
    return {};
}

HttpClient::HttpClient(std::shared_ptr<const Cancellation> cancel)
    : cancel_(std::move(cancel)), multi_(CurlMulti::create()), easy_(CurlEasy::create()) {}

CURLcode HttpClient::run_transfer() noexcept {
    if (multi_.add(easy_) != CURLM_OK) {
        return CURLE_OUT_OF_MEMORY;
    }
    CURLcode result = CURLE_OK;
    while (true) {
        if (is_cancelled(cancel_.get())) {
            result = CURLE_ABORTED_BY_CALLBACK;  // stands for "cancelled": no callback aborts
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
        if (cancel_) {
            extra.fd = cancel_->fd();
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

namespace {

HttpError transfer_error(CURLcode rc, const char* error_buffer, const ResponseSink& sink,
                         const HttpRequest& request) {
    if (sink.body_too_large || (rc == CURLE_FILESIZE_EXCEEDED)) {
        return HttpError{HttpErrc::too_large, fmt::format("the response body is longer than {} bytes",
                                                          request.max_body)};
    }
    if (sink.headers_too_large) {
        return HttpError{HttpErrc::too_large,
                         fmt::format("the response headers are longer than {} bytes",
                                     max_response_header_bytes)};
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        return HttpError{HttpErrc::cancelled, std::string(cancelled_message)};
    }
    std::string message = curl_easy_strerror(rc);
    if (error_buffer[0] != '\0') {
        message += ": ";
        message += error_buffer;
    }
    return HttpError{classify(rc), std::move(message)};
}

}  // namespace

Result<HttpResponse, HttpError> HttpClient::perform(const HttpRequest& request) noexcept {
    try {
        if (is_cancelled(cancel_.get())) {
            return fail(HttpError{HttpErrc::cancelled, std::string(cancelled_message)});
        }
        ResponseSink sink;
        sink.max_body = request.max_body;
        CurlSlist headers;
        for (const auto& [name, value] : request.headers) {
            std::string line = name;
            line += value.empty() ? ";" : ": ";  // "Name;" is how curl sends an empty value
            line += value;
            if (!headers.append(line.c_str())) {
                return fail(HttpError{HttpErrc::other, "out of memory building headers"});
            }
        }
        // curl adds "Expect: 100-continue" to larger POSTs; the AWS endpoints do not need it.
        if (!headers.append("Expect:")) {
            return fail(HttpError{HttpErrc::other, "out of memory building headers"});
        }
        char error_buffer[CURL_ERROR_SIZE] = {};
        curl_easy_reset(easy_.get());
        CurlFirstError set;
        set(apply_transport(easy_, request.transport));
        set(easy_.set(CURLOPT_URL, request.url.c_str()));
        set(easy_.set(CURLOPT_ERRORBUFFER, error_buffer));
        set(easy_.set(CURLOPT_HTTPHEADER, headers.get()));
        set(easy_.set(CURLOPT_WRITEFUNCTION, &on_body));
        set(easy_.set(CURLOPT_WRITEDATA, &sink));
        set(easy_.set(CURLOPT_HEADERFUNCTION, &on_header));
        set(easy_.set(CURLOPT_HEADERDATA, &sink));
        // Refuses a too-long Content-Length before any body byte; on_body caps chunked bodies.
        set(easy_.set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(request.max_body)));
        if (request.method == "GET") {
            set(easy_.set(CURLOPT_HTTPGET, 1L));
        } else {
            set(easy_.set(CURLOPT_CUSTOMREQUEST, request.method.c_str()));
            set(easy_.set(CURLOPT_POSTFIELDS, request.body.data()));
            set(easy_.set(CURLOPT_POSTFIELDSIZE_LARGE,
                          static_cast<curl_off_t>(request.body.size())));
        }
        if (set.code() != CURLE_OK) {
            return fail(HttpError{HttpErrc::other, std::string("libcurl rejected an option: ") +
                                                       curl_easy_strerror(set.code())});
        }
        const CURLcode rc = run_transfer();
        // Nothing of this call may point into our stack once we return.
        (void)easy_.set(CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
        (void)easy_.set(CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
        (void)easy_.set(CURLOPT_WRITEDATA, static_cast<void*>(nullptr));
        (void)easy_.set(CURLOPT_HEADERDATA, static_cast<void*>(nullptr));
        if (rc != CURLE_OK) {
            return fail(transfer_error(rc, error_buffer, sink, request));
        }
        if (easy_.info(CURLINFO_RESPONSE_CODE, &sink.response.status) != CURLE_OK) {
            return fail(HttpError{HttpErrc::other, "no HTTP status"});
        }
        return std::move(sink.response);
    } catch (...) {
        return fail(HttpError{HttpErrc::other, "out of memory"});
    }
}

std::string proxy_for_url(std::string_view url, const Environment& env, std::string* no_proxy) {
    const bool https = url.substr(0, 8) == "https://";
    std::optional<std::string> proxy = https ? env.get_non_empty("HTTPS_PROXY")
                                             : env.get_non_empty("HTTP_PROXY");
    if (!proxy) {
        proxy = https ? env.get_non_empty("https_proxy") : env.get_non_empty("http_proxy");
    }
    if (no_proxy != nullptr) {
        auto np = env.get_non_empty("NO_PROXY");
        if (!np) {
            np = env.get_non_empty("no_proxy");
        }
        *no_proxy = np.value_or("");
    }
    return proxy.value_or("");
}

}  // namespace xrayd
