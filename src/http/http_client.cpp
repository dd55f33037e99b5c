// HttpClient: the credential fetchers' requests, with name/value headers, on an HttpExchange.
#include <xrayd/http/http_client.h>

#include <optional>
#include <string>

namespace xrayd {

HttpClient::HttpClient(std::shared_ptr<const Cancellation> cancel) : cancel_(std::move(cancel)) {}

Result<HttpResponse, HttpError> HttpClient::perform(const HttpRequest& request) noexcept {
    try {
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
        ExchangeRequest exchange;
        exchange.method = request.method;
        exchange.url = request.url;
        exchange.headers = &headers;
        exchange.body = request.body;
        exchange.transport = &request.transport;
        exchange.max_body = request.max_body;
        return exchange_.perform(exchange, cancel_.get());
    } catch (...) {
        return fail(HttpError{HttpErrc::other, "out of memory"});
    }
}

std::string proxy_for_url(std::string_view url, const Environment& env, std::string* no_proxy) {
    const bool https = url.substr(0, 8) == "https://";
    std::optional<std::string> proxy =
        https ? env.get_non_empty("HTTPS_PROXY") : env.get_non_empty("HTTP_PROXY");
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
