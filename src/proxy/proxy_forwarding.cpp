// Sampling proxy forwarding: header rules, SigV4 re-signing and the upstream exchange.
#include "proxy_forwarding.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/http/header_text.h>
#include <xrayd/http/request_head.h>

namespace xrayd {

namespace {

constexpr std::size_t max_idle_upstream_handles = 4;  // Go: MaxIdleConnsPerHost 2

// Hop-by-hop headers (RFC 9110 7.6.1 and the ones Go's reverse proxy also strips).
bool is_hop_by_hop(std::string_view name) noexcept {
    return ascii_iequals(name, "Connection") || ascii_iequals(name, "Keep-Alive") ||
           ascii_istarts_with(name, "Proxy-") || ascii_iequals(name, "TE") ||
           ascii_iequals(name, "Trailer") || ascii_iequals(name, "Transfer-Encoding") ||
           ascii_iequals(name, "Upgrade");
}

// A header's name and value, for the client's (ForwardHeader) and the upstream's (the
// exchange's name/value pairs) alike.
std::string_view name_of(const ForwardHeader& h) noexcept {
    return h.name;
}
std::string_view value_of(const ForwardHeader& h) noexcept {
    return h.value;
}
std::string_view name_of(const std::pair<std::string, std::string>& h) noexcept {
    return h.first;
}
std::string_view value_of(const std::pair<std::string, std::string>& h) noexcept {
    return h.second;
}

// The comma-separated tokens of every Connection header: more hop-by-hop header names.
template <typename Headers>
std::vector<std::string> connection_tokens(const Headers& headers) {
    std::vector<std::string> tokens;
    for (const auto& h : headers) {
        if (!ascii_iequals(name_of(h), "Connection")) {
            continue;
        }
        std::string_view rest = value_of(h);
        while (!rest.empty()) {
            const std::size_t comma = rest.find(',');
            const std::string_view token = trim_header_text(rest.substr(0, comma));
            if (!token.empty()) {
                tokens.emplace_back(token);
            }
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        }
    }
    return tokens;
}

// The header list sent upstream: Host, the client's forwardable headers, the signature, and
// empty values for what curl would otherwise add. False when out of memory.
bool build_upstream_headers(const BaseUrl& upstream, const std::vector<ForwardHeader>& headers,
                            const SignedHeaders& signature, CurlSlist& list) {
    bool ok = list.append(fmt::format("Host: {}", upstream.host).c_str());
    bool has_accept = false;
    bool has_content_type = false;
    for (const ForwardHeader& h : headers) {
        has_accept = has_accept || ascii_iequals(h.name, "Accept");
        has_content_type = has_content_type || ascii_iequals(h.name, "Content-Type");
        // "Name;" is how curl sends a header with an empty value.
        ok = ok && list.append(h.value.empty() ? fmt::format("{};", h.name).c_str()
                                               : fmt::format("{}: {}", h.name, h.value).c_str());
    }
    ok = ok && list.append(fmt::format("Authorization: {}", signature.authorization).c_str());
    ok = ok && list.append(fmt::format("X-Amz-Date: {}", signature.amz_date).c_str());
    if (!signature.security_token.empty()) {
        ok = ok &&
             list.append(fmt::format("X-Amz-Security-Token: {}", signature.security_token).c_str());
    }
    // Nothing curl would add on its own may reach X-Ray: the request stays as the client
    // sent it.
    ok = ok && list.append("Expect:");
    if (!has_accept) {
        ok = ok && list.append("Accept:");
    }
    if (!has_content_type) {
        ok = ok && list.append("Content-Type:");
    }
    return ok;
}

// The upstream's headers minus the hop-by-hop ones and Content-Length (recomputed); the kept
// ones are moved out of `upstream_headers`.
std::vector<ForwardHeader> relayable_headers(HttpHeaderList& upstream_headers) {
    const std::vector<std::string> named = connection_tokens(upstream_headers);
    std::vector<ForwardHeader> relayed;
    relayed.reserve(upstream_headers.size());
    // Not a structured binding: a lambda may not capture one in clang 14 (the style check's).
    for (auto& header : upstream_headers) {
        const std::string& name = header.first;
        if (is_hop_by_hop(name) || ascii_iequals(name, "Content-Length") ||
            std::any_of(named.begin(), named.end(),
                        [&](const std::string& token) { return ascii_iequals(token, name); })) {
            continue;
        }
        relayed.push_back(ForwardHeader{std::move(header.first), std::move(header.second)});
    }
    return relayed;
}

CurlUrl upstream_url_of(const BaseUrl& upstream) {
    CurlUrl url = CurlUrl::create();
    if (!url) {
        throw StartupError("proxy: out of memory");
    }
    CURLUcode rc = url.set(CURLUPART_SCHEME, upstream.scheme.c_str());
    if (rc == CURLUE_OK) {
        rc = url.set(CURLUPART_HOST, upstream.hostname.c_str());
    }
    if (rc == CURLUE_OK && !upstream.port.empty()) {
        rc = url.set(CURLUPART_PORT, upstream.port.c_str());
    }
    if (rc != CURLUE_OK) {
        throw StartupError(
            fmt::format("X-Ray endpoint {}: {}", upstream.origin, curl_url_strerror(rc)));
    }
    return url;
}

TransportOptions transport_of(const SamplingProxyOptions& options) {
    TransportOptions t = options.transport;
    t.connect_timeout = options.upstream_connect_timeout;
    t.total_timeout = options.upstream_timeout;
    return t;
}

}  // namespace

std::vector<ForwardHeader> forwardable_headers(const std::vector<ForwardHeader>& client_headers) {
    const std::vector<std::string> named = connection_tokens(client_headers);
    std::vector<ForwardHeader> out;
    out.reserve(client_headers.size());
    for (const ForwardHeader& h : client_headers) {
        if (is_hop_by_hop(h.name) || ascii_iequals(h.name, "Host") ||
            ascii_iequals(h.name, "Content-Length") || ascii_iequals(h.name, "Expect") ||
            ascii_iequals(h.name, "X-Forwarded-For") || ascii_iequals(h.name, "Authorization") ||
            ascii_iequals(h.name, "X-Amz-Date") || ascii_iequals(h.name, "X-Amz-Security-Token")) {
            continue;
        }
        if (std::any_of(named.begin(), named.end(),
                        [&](const std::string& token) { return ascii_iequals(token, h.name); })) {
            continue;
        }
        out.push_back(h);
    }
    return out;
}

bool is_signed_proxy_header(std::string_view name) noexcept {
    return ascii_iequals(name, "Host") || ascii_iequals(name, "Content-Type") ||
           ascii_istarts_with(name, "x-amz-");
}

namespace proxy_detail {

UpstreamForwarder::UpstreamForwarder(const SamplingProxyOptions& options, BaseUrl upstream,
                                     CredentialsProvider& credentials)
    : upstream_(std::move(upstream)),
      upstream_url_(upstream_url_of(upstream_)),
      credentials_(credentials),
      transport_(transport_of(options)),
      max_response_bytes_(options.max_response_bytes),
      signer_(options.region, "xray"),
      stop_(Cancellation::create()) {}

HttpExchange UpstreamForwarder::take_exchange() {
    {
        std::lock_guard lock(pool_mutex_);
        if (!idle_exchanges_.empty()) {
            HttpExchange exchange = std::move(idle_exchanges_.back());
            idle_exchanges_.pop_back();
            return exchange;
        }
    }
    return HttpExchange();
}

void UpstreamForwarder::give_back(HttpExchange&& exchange) noexcept {
    std::lock_guard lock(pool_mutex_);
    if (idle_exchanges_.size() < max_idle_upstream_handles) {
        try {
            idle_exchanges_.push_back(std::move(exchange));
        } catch (...) {
            // Dropped: the handle (and its connection) is closed.
        }
    }
}

void UpstreamForwarder::drop_idle_handles() noexcept {
    std::lock_guard lock(pool_mutex_);
    idle_exchanges_.clear();
}

std::shared_ptr<const Cancellation> UpstreamForwarder::current_stop() const {
    std::lock_guard lock(pool_mutex_);
    return stop_;
}

void UpstreamForwarder::stop() noexcept {
    std::lock_guard lock(pool_mutex_);
    stop_->cancel();
}

void UpstreamForwarder::resume() {
    std::lock_guard lock(pool_mutex_);
    if (stop_->cancelled()) {
        stop_ = Cancellation::create();
    }
}

bool UpstreamForwarder::stopping() const noexcept {
    std::lock_guard lock(pool_mutex_);
    return stop_->cancelled();
}

UpstreamResult UpstreamForwarder::forward(const ClientRequest& request) noexcept {
    UpstreamResult result;
    try {
        // The server checked the head already (ConnectionGate); this keeps the forwarder's own
        // promise whoever calls it: only an origin-form path and token-named headers go out.
        std::string target(request.path);
        if (!request.query.empty()) {
            target += '?';
            target += request.query;
        }
        if (!is_origin_form(target) ||
            !std::all_of(request.headers.begin(), request.headers.end(),
                         [](const ForwardHeader& h) {
                             return is_http_token(h.name) &&
                                    h.value.find_first_of("\r\n") == std::string::npos &&
                                    h.value.find('\0') == std::string::npos;
                         })) {
            result.kind = UpstreamResult::Kind::bad_request;
            result.message = "the request target or a header name is malformed";
            return result;
        }
        const std::vector<ForwardHeader> headers = forwardable_headers(request.headers);

        const std::shared_ptr<const Credentials> creds = credentials_.current();
        if (!creds) {
            result.kind = UpstreamResult::Kind::no_credentials;
            result.message =
                fmt::format("no AWS credentials available (source: {})", credentials_.source());
            return result;
        }

        const std::string signed_path = upstream_.base_path + std::string(request.path);
        SigningRequest to_sign;
        to_sign.method = request.method;
        to_sign.path = signed_path;
        to_sign.query = request.query;
        to_sign.payload = request.body;
        to_sign.headers.push_back(HttpHeader{"host", upstream_.host});
        for (const ForwardHeader& h : headers) {
            if (is_signed_proxy_header(h.name)) {
                to_sign.headers.push_back(HttpHeader{h.name, h.value});
            }
        }
        SignedHeaders signature;
        {
            std::lock_guard lock(signer_mutex_);
            signature = signer_.sign(to_sign, *creds, WallClock::now());
        }
        if (signature.authorization.empty()) {
            result.kind = UpstreamResult::Kind::signing_failed;
            result.message = "request signing failed";
            return result;
        }

        CurlSlist list;
        if (!build_upstream_headers(upstream_, headers, signature, list)) {
            result.kind = UpstreamResult::Kind::dropped;
            return result;
        }

        // The host comes from upstream_url_ only; the client's path and query are set as
        // those parts (already checked to be origin form), never pasted into a URL string.
        CurlUrl url = upstream_url_.dup();
        CURLUcode url_rc = url.set(CURLUPART_PATH, signed_path.c_str());
        if (url_rc == CURLUE_OK && !request.query.empty()) {
            url_rc = url.set(CURLUPART_QUERY, std::string(request.query).c_str());
        }
        if (url_rc != CURLUE_OK) {
            result.kind = UpstreamResult::Kind::failed;
            result.message = fmt::format("request URL: {}", curl_url_strerror(url_rc));
            return result;
        }

        ExchangeRequest exchange_request;
        exchange_request.method = request.method;
        exchange_request.url_parts = &url;
        exchange_request.path_as_is = true;
        exchange_request.http_1_1 = true;
        exchange_request.headers = &list;
        exchange_request.body = request.body;
        exchange_request.transport = &transport_;
        exchange_request.max_body = max_response_bytes_;
        const std::shared_ptr<const Cancellation> stop = current_stop();
        HttpExchange exchange = take_exchange();
        auto answer = exchange.perform(exchange_request, stop.get());
        give_back(std::move(exchange));

        if (!answer) {
            result.kind = UpstreamResult::Kind::failed;
            result.timed_out = answer.error().code == HttpErrc::timeout;
            result.message = answer.error().message;
            return result;
        }
        result.kind = UpstreamResult::Kind::answered;
        result.status = answer.value().status;
        result.headers = relayable_headers(answer.value().headers);
        result.body = std::move(answer.value().body);
        return result;
    } catch (...) {
        // Out of memory or no curl handle.
        result.kind = UpstreamResult::Kind::dropped;
        return result;
    }
}

}  // namespace proxy_detail

}  // namespace xrayd
