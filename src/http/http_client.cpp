// Blocking HTTP client over one libcurl easy handle.
#include <xrayd/http/http_client.h>

#include <strings.h>

#include <algorithm>
#include <cstddef>
#include <string>

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

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    auto* response = static_cast<HttpResponse*>(user);
    try {
        response->body.append(data, size * count);
    } catch (...) {
        return 0;  // curl reports CURLE_WRITE_ERROR
    }
    return size * count;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    auto* response = static_cast<HttpResponse*>(user);
    const std::string_view line(data, size * count);
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

}  // namespace

std::string_view HttpResponse::header(std::string_view name) const noexcept {
    for (const auto& [key, value] : headers) {
        if (iequals(key, name)) {
            return value;
        }
    }
    return {};
}

HttpClient::HttpClient() : easy_(CurlEasy::create()) {}

Result<HttpResponse, HttpError> HttpClient::perform(const HttpRequest& request) noexcept {
    try {
        HttpResponse response;
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
        set(easy_.set(CURLOPT_WRITEDATA, &response));
        set(easy_.set(CURLOPT_HEADERFUNCTION, &on_header));
        set(easy_.set(CURLOPT_HEADERDATA, &response));
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
        const CURLcode rc = curl_easy_perform(easy_.get());
        // Nothing of this call may point into our stack once we return.
        (void)easy_.set(CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
        (void)easy_.set(CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
        if (rc != CURLE_OK) {
            std::string message = curl_easy_strerror(rc);
            if (error_buffer[0] != '\0') {
                message += ": ";
                message += error_buffer;
            }
            return fail(HttpError{classify(rc), std::move(message)});
        }
        if (easy_.info(CURLINFO_RESPONSE_CODE, &response.status) != CURLE_OK) {
            return fail(HttpError{HttpErrc::other, "no HTTP status"});
        }
        return response;
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
