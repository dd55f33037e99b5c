// SamplingProxy on libmicrohttpd: allow-list, limits, SigV4 re-signing, blocking forward.
#include <xrayd/proxy/sampling_proxy.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>

#include <xrayd/aws/sigv4.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/http/curl.h>
#include <xrayd/net/udp_socket.h>
#include <xrayd/proxy/upstream_url.h>

namespace xrayd {
namespace {

constexpr std::size_t max_idle_upstream_handles = 4;  // Go: MaxIdleConnsPerHost 2

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool istarts_with(std::string_view text, std::string_view prefix) noexcept {
    return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
        s.remove_suffix(1);
    }
    return s;
}

// Hop-by-hop headers (RFC 9110 7.6.1 and the ones Go's reverse proxy also strips).
bool is_hop_by_hop(std::string_view name) noexcept {
    return iequals(name, "Connection") || iequals(name, "Keep-Alive") ||
           istarts_with(name, "Proxy-") || iequals(name, "TE") || iequals(name, "Trailer") ||
           iequals(name, "Transfer-Encoding") || iequals(name, "Upgrade");
}

// The comma-separated tokens of every Connection header: more hop-by-hop header names.
std::vector<std::string> connection_tokens(const std::vector<ForwardHeader>& headers) {
    std::vector<std::string> tokens;
    for (const ForwardHeader& h : headers) {
        if (!iequals(h.name, "Connection")) {
            continue;
        }
        std::string_view rest = h.value;
        while (!rest.empty()) {
            const std::size_t comma = rest.find(',');
            const std::string_view token = trim(rest.substr(0, comma));
            if (!token.empty()) {
                tokens.emplace_back(token);
            }
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        }
    }
    return tokens;
}

std::string json_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
                } else {
                    out += c;
                }
        }
    }
    return out;
}

// One request between the calls libmicrohttpd makes for it. Created by the URI callback,
// freed by the completion callback.
struct RequestContext {
    std::string raw_uri;  // as received, query included
    std::string path;     // origin-form path
    std::string query;    // without '?'
    bool started = false;
    int reject_status = 0;  // answer with this once the body is read (404 / 405)
    TimePoint body_deadline{};
    std::string body;
};

MHD_Result collect_header(void* cls, MHD_ValueKind, const char* key, const char* value) {
    auto* headers = static_cast<std::vector<ForwardHeader>*>(cls);
    try {
        headers->push_back(ForwardHeader{key != nullptr ? key : "", value != nullptr ? value : ""});
    } catch (...) {
        return MHD_NO;
    }
    return MHD_YES;
}

// Upstream answer as collected by curl.
struct UpstreamReply {
    std::vector<ForwardHeader> headers;
    std::string body;
    std::size_t max_body = 0;
    bool too_large = false;
    const std::atomic<bool>* stopping = nullptr;
};

std::size_t on_upstream_body(char* data, std::size_t size, std::size_t count, void* user) noexcept {
    auto* reply = static_cast<UpstreamReply*>(user);
    const std::size_t n = size * count;
    if (reply->body.size() + n > reply->max_body) {
        reply->too_large = true;
        return 0;
    }
    try {
        reply->body.append(data, n);
    } catch (...) {
        return 0;
    }
    return n;
}

std::size_t on_upstream_header(char* data, std::size_t size, std::size_t count,
                               void* user) noexcept {
    auto* reply = static_cast<UpstreamReply*>(user);
    const std::string_view line(data, size * count);
    try {
        if (line.substr(0, 5) == "HTTP/") {
            reply->headers.clear();  // a new response (100 Continue, proxy CONNECT)
        } else if (const auto colon = line.find(':'); colon != std::string_view::npos) {
            reply->headers.push_back(ForwardHeader{std::string(trim(line.substr(0, colon))),
                                                   std::string(trim(line.substr(colon + 1)))});
        }
    } catch (...) {
        return 0;
    }
    return size * count;
}

int on_upstream_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) noexcept {
    const auto* reply = static_cast<UpstreamReply*>(user);
    return reply->stopping->load(std::memory_order_relaxed) ? 1 : 0;  // 1 aborts the transfer
}

// Go's text for an errno: the C message with a lower-case first letter.
std::string errno_text(int error) {
    std::string text = std::system_category().message(error);
    if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z') {
        text[0] = static_cast<char>(text[0] - 'A' + 'a');
    }
    return text;
}

// Binds and listens on `address`; Go's error text on failure.
Result<UniqueFd, std::string> listen_tcp(const std::string& address) {
    auto resolved = resolve_udp_address(address);
    if (!resolved) {
        return fail(resolved.error());
    }
    const UdpAddress& addr = resolved.value();
    const auto failure = [&](std::string_view step, int err) {
        return fail(fmt::format("listen tcp {}: {}: {}", addr.text, step, errno_text(err)));
    };
    UniqueFd fd(::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
        return failure("socket", errno);
    }
    const int one = 1;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        return failure("setsockopt", errno);
    }
    if (addr.dual_stack_wildcard) {
        const int zero = 0;
        if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0) {
            return failure("setsockopt", errno);
        }
    }
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) != 0) {
        return failure("bind", errno);
    }
    if (::listen(fd.get(), SOMAXCONN) != 0) {
        return failure("listen", errno);
    }
    return fd;
}

}  // namespace

std::vector<ForwardHeader> forwardable_headers(const std::vector<ForwardHeader>& client_headers) {
    const std::vector<std::string> named = connection_tokens(client_headers);
    std::vector<ForwardHeader> out;
    out.reserve(client_headers.size());
    for (const ForwardHeader& h : client_headers) {
        if (is_hop_by_hop(h.name) || iequals(h.name, "Host") || iequals(h.name, "Content-Length") ||
            iequals(h.name, "Expect") || iequals(h.name, "X-Forwarded-For") ||
            iequals(h.name, "Authorization") || iequals(h.name, "X-Amz-Date") ||
            iequals(h.name, "X-Amz-Security-Token")) {
            continue;
        }
        if (std::any_of(named.begin(), named.end(),
                        [&](const std::string& token) { return iequals(token, h.name); })) {
            continue;
        }
        out.push_back(h);
    }
    return out;
}

bool is_signed_proxy_header(std::string_view name) noexcept {
    return iequals(name, "Host") || iequals(name, "Content-Type") || istarts_with(name, "x-amz-");
}

struct SamplingProxy::State {
    State(SamplingProxyOptions opts, UpstreamUrl up, CredentialsProvider& creds, Counters& c,
          Logger& log)
        : options(std::move(opts)),
          upstream(std::move(up)),
          credentials(creds),
          counters(c),
          logger(log),
          signer(options.region, "xray"),
          error_limiter(options.error_log_interval),
          forward_all(options.forward_all) {}

    // libmicrohttpd callbacks.
    // libmicrohttpd callbacks: C code calls them, so nothing may escape (noexcept).
    static void* on_uri(void* cls, const char* uri, MHD_Connection* connection) noexcept;
    static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url,
                                 const char* method, const char* version, const char* upload_data,
                                 std::size_t* upload_data_size, void** request_state) noexcept;
    static void on_completed(void* cls, MHD_Connection* connection, void** request_state,
                             MHD_RequestTerminationCode why) noexcept;
    static void on_log(void* cls, const char* format, va_list args) noexcept;
    static std::size_t no_unescape(void* cls, MHD_Connection* connection, char* text) noexcept;

    MHD_Result handle(MHD_Connection* connection, RequestContext& request, std::string_view method,
                      const char* upload_data, std::size_t* upload_data_size);
    MHD_Result begin(MHD_Connection* connection, RequestContext& request, std::string_view method);
    MHD_Result forward(MHD_Connection* connection, RequestContext& request,
                       std::string_view method) noexcept;
    MHD_Result answer(MHD_Connection* connection, unsigned status,
                      std::vector<ForwardHeader> const& headers, std::string_view body) noexcept;
    MHD_Result answer_error(MHD_Connection* connection, unsigned status,
                            std::string_view message) noexcept;
    void log_upstream_error(std::string_view message) noexcept;

    CurlEasy take_handle();
    void give_back(CurlEasy&& easy) noexcept;

    const SamplingProxyOptions options;
    const UpstreamUrl upstream;
    CredentialsProvider& credentials;
    Counters& counters;
    Logger& logger;

    std::mutex signer_mutex;  // SigV4Signer is single-threaded; signing takes microseconds
    SigV4Signer signer;
    std::mutex pool_mutex;
    std::vector<CurlEasy> idle_handles;  // kept-alive upstream connections live in these
    RateLimiter error_limiter;
    std::atomic<bool> forward_all;  // options.forward_all, switchable at run time
    std::atomic<bool> stopping{false};

    UniqueFd listen_fd;
    MHD_Daemon* daemon = nullptr;
    std::uint16_t port = 0;
};

void* SamplingProxy::State::on_uri(void* /*cls*/, const char* uri, MHD_Connection*) noexcept {
    try {
        auto request = std::make_unique<RequestContext>();
        request->raw_uri = uri != nullptr ? uri : "";
        std::string_view target = request->raw_uri;
        // Absolute form ("http://host/path?q", what an HTTP-proxy-configured client sends).
        if (istarts_with(target, "http://") || istarts_with(target, "https://")) {
            target.remove_prefix(target.find("//") + 2);
            const std::size_t slash = target.find_first_of("/?");
            target = slash == std::string_view::npos ? std::string_view() : target.substr(slash);
        }
        const std::size_t question = target.find('?');
        request->path = target.substr(0, question);
        if (question != std::string_view::npos) {
            request->query = target.substr(question + 1);
        }
        if (request->path.empty()) {
            request->path = "/";
        }
        return request.release();
    } catch (...) {
        return nullptr;  // on_request then drops the connection
    }
}

std::size_t SamplingProxy::State::no_unescape(void*, MHD_Connection*, char* text) noexcept {
    // Paths are forwarded (and signed) exactly as the client sent them.
    return std::strlen(text);
}

void SamplingProxy::State::on_log(void* cls, const char* format, va_list args) noexcept {
    auto& state = *static_cast<State*>(cls);
    if (!state.logger.enabled(LogLevel::debug)) {
        return;
    }
    char line[512];
    std::vsnprintf(line, sizeof(line), format, args);
    std::string_view text(line);
    while (!text.empty() && text.back() == '\n') {
        text.remove_suffix(1);
    }
    state.logger.debug("proxy http server: {}", text);
}

void SamplingProxy::State::on_completed(void*, MHD_Connection*, void** request_state,
                                        MHD_RequestTerminationCode) noexcept {
    delete static_cast<RequestContext*>(*request_state);
    *request_state = nullptr;
}

MHD_Result SamplingProxy::State::on_request(void* cls, MHD_Connection* connection,
                                            const char* /*url*/, const char* method,
                                            const char* /*version*/, const char* upload_data,
                                            std::size_t* upload_data_size,
                                            void** request_state) noexcept {
    auto& state = *static_cast<State*>(cls);
    auto* request = static_cast<RequestContext*>(*request_state);
    if (request == nullptr) {
        return MHD_NO;  // the URI callback ran out of memory
    }
    try {
        return state.handle(connection, *request, method != nullptr ? method : "", upload_data,
                            upload_data_size);
    } catch (...) {
        return MHD_NO;  // out of memory: drop the connection, the SDK polls again later
    }
}

MHD_Result SamplingProxy::State::handle(MHD_Connection* connection, RequestContext& request,
                                        std::string_view method, const char* upload_data,
                                        std::size_t* upload_data_size) {
    if (!request.started) {
        request.started = true;
        return begin(connection, request, method);
    }
    if (*upload_data_size > 0) {
        const std::size_t n = *upload_data_size;
        if (request.body.size() + n > options.max_body_bytes) {
            // A chunked body past the cap: a response cannot be queued mid-body, so close.
            counters.add(Counter::proxy_too_large);
            logger.debug("Proxy request {} closed: body over {} bytes", request.raw_uri,
                         options.max_body_bytes);
            return MHD_NO;
        }
        if (Clock::now() > request.body_deadline) {
            logger.debug("Proxy request {} closed: body not received within {} ms", request.raw_uri,
                         options.body_timeout.count());
            return MHD_NO;
        }
        request.body.append(upload_data, n);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (request.reject_status == MHD_HTTP_NOT_FOUND) {
        return answer_error(
            connection, MHD_HTTP_NOT_FOUND,
            fmt::format("xrayd sampling proxy: {} is not an X-Ray sampling operation; only "
                        "/GetSamplingRules, /SamplingTargets and /SamplingStatisticSummaries "
                        "are forwarded (see --proxy-forward-all, Xrayd.ProxyForwardAll)",
                        request.path));
    }
    if (request.reject_status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        return answer(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                      {{"Allow", "POST"}, {"Content-Type", "application/json"}},
                      R"({"message":"xrayd sampling proxy: only POST is forwarded"})");
    }
    return forward(connection, request, method);
}

MHD_Result SamplingProxy::State::begin(MHD_Connection* connection, RequestContext& request,
                                       std::string_view method) {
    logger.debug("Received request on HTTP Proxy server : {}", request.raw_uri);
    if (!forward_all.load(std::memory_order_relaxed)) {
        const bool known =
            std::any_of(std::begin(default_proxy_paths), std::end(default_proxy_paths),
                        [&](std::string_view p) { return p == request.path; });
        if (!known) {
            request.reject_status = MHD_HTTP_NOT_FOUND;
        } else if (method != "POST") {
            request.reject_status = MHD_HTTP_METHOD_NOT_ALLOWED;
        }
        if (request.reject_status != 0) {
            counters.add(Counter::proxy_not_allowed);
        }
    }
    const char* length =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length != nullptr) {
        const unsigned long long declared = std::strtoull(length, nullptr, 10);
        if (declared > options.max_body_bytes) {
            if (request.reject_status == 0) {
                counters.add(Counter::proxy_too_large);
            }
            // Answered before the body is read: libmicrohttpd then closes the connection.
            return answer_error(connection, MHD_HTTP_CONTENT_TOO_LARGE,
                                fmt::format("xrayd sampling proxy: request body of {} bytes is "
                                            "over the limit of {} bytes",
                                            declared, options.max_body_bytes));
        }
    }
    request.body_deadline = Clock::now() + options.body_timeout;
    return MHD_YES;
}

MHD_Result SamplingProxy::State::answer(MHD_Connection* connection, unsigned status,
                                        std::vector<ForwardHeader> const& headers,
                                        std::string_view body) noexcept {
    MHD_Response* response = MHD_create_response_from_buffer(
        body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) {
        return MHD_NO;
    }
    for (const ForwardHeader& h : headers) {
        // libmicrohttpd refuses a few headers it manages itself; those are simply not relayed.
        (void)MHD_add_response_header(response, h.name.c_str(), h.value.c_str());
    }
    const MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
}

MHD_Result SamplingProxy::State::answer_error(MHD_Connection* connection, unsigned status,
                                              std::string_view message) noexcept {
    try {
        return answer(connection, status, {{"Content-Type", "application/json"}},
                      fmt::format(R"({{"message":"{}"}})", json_escape(message)));
    } catch (...) {
        return MHD_NO;
    }
}

void SamplingProxy::State::log_upstream_error(std::string_view message) noexcept {
    std::uint64_t suppressed = 0;
    if (!error_limiter.allow(Clock::now(), &suppressed)) {
        return;
    }
    if (suppressed > 0) {
        logger.error("proxy: X-Ray endpoint {} unreachable: {} ({} similar errors suppressed)",
                     upstream.origin, message, suppressed);
    } else {
        logger.error("proxy: X-Ray endpoint {} unreachable: {}", upstream.origin, message);
    }
}

CurlEasy SamplingProxy::State::take_handle() {
    {
        std::lock_guard lock(pool_mutex);
        if (!idle_handles.empty()) {
            CurlEasy easy = std::move(idle_handles.back());
            idle_handles.pop_back();
            return easy;
        }
    }
    return CurlEasy::create();
}

void SamplingProxy::State::give_back(CurlEasy&& easy) noexcept {
    std::lock_guard lock(pool_mutex);
    if (idle_handles.size() < max_idle_upstream_handles) {
        try {
            idle_handles.push_back(std::move(easy));
        } catch (...) {
            // Dropped: the handle (and its connection) is closed.
        }
    }
}

MHD_Result SamplingProxy::State::forward(MHD_Connection* connection, RequestContext& request,
                                         std::string_view method) noexcept {
    try {
        std::vector<ForwardHeader> client_headers;
        MHD_get_connection_values(connection, MHD_HEADER_KIND, collect_header, &client_headers);
        const std::vector<ForwardHeader> headers = forwardable_headers(client_headers);

        const std::shared_ptr<const Credentials> creds = credentials.current();
        if (!creds) {
            counters.add(Counter::proxy_no_credentials);
            log_upstream_error(
                fmt::format("no AWS credentials available (source: {})", credentials.source()));
            return answer_error(connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "xrayd sampling proxy: no AWS credentials available");
        }

        const std::string signed_path = upstream.base_path + request.path;
        SigningRequest to_sign;
        to_sign.method = method;
        to_sign.path = signed_path;
        to_sign.query = request.query;
        to_sign.payload = request.body;
        to_sign.headers.push_back(HttpHeader{"host", upstream.host});
        for (const ForwardHeader& h : headers) {
            if (is_signed_proxy_header(h.name)) {
                to_sign.headers.push_back(HttpHeader{h.name, h.value});
            }
        }
        SignedHeaders signature;
        {
            std::lock_guard lock(signer_mutex);
            signature = signer.sign(to_sign, *creds, WallClock::now());
        }
        if (signature.authorization.empty()) {
            counters.add(Counter::proxy_no_credentials);
            log_upstream_error("request signing failed");
            return answer_error(connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "xrayd sampling proxy: request signing failed");
        }

        CurlSlist list;
        bool ok = list.append(fmt::format("Host: {}", upstream.host).c_str());
        bool has_accept = false;
        bool has_content_type = false;
        for (const ForwardHeader& h : headers) {
            has_accept = has_accept || iequals(h.name, "Accept");
            has_content_type = has_content_type || iequals(h.name, "Content-Type");
            // "Name;" is how curl sends a header with an empty value.
            ok =
                ok && list.append(h.value.empty() ? fmt::format("{};", h.name).c_str()
                                                  : fmt::format("{}: {}", h.name, h.value).c_str());
        }
        ok = ok && list.append(fmt::format("Authorization: {}", signature.authorization).c_str());
        ok = ok && list.append(fmt::format("X-Amz-Date: {}", signature.amz_date).c_str());
        if (!signature.security_token.empty()) {
            ok = ok &&
                 list.append(
                     fmt::format("X-Amz-Security-Token: {}", signature.security_token).c_str());
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
        if (!ok) {
            return MHD_NO;
        }

        std::string url = upstream.origin + signed_path;
        if (!request.query.empty()) {
            url += '?';
            url += request.query;
        }

        CurlEasy easy = take_handle();
        curl_easy_reset(easy.get());
        UpstreamReply reply;
        reply.max_body = options.max_response_bytes;
        reply.stopping = &stopping;
        char error_buffer[CURL_ERROR_SIZE] = {};
        CURLcode rc = CURLE_OK;
        const auto set = [&](CURLcode r) {
            if (rc == CURLE_OK) {
                rc = r;
            }
        };
        set(easy.set(CURLOPT_URL, url.c_str()));
        set(easy.set(CURLOPT_PATH_AS_IS, 1L));
        set(easy.set(CURLOPT_ERRORBUFFER, error_buffer));
        set(easy.set(CURLOPT_NOSIGNAL, 1L));
        set(easy.set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1)));
        set(easy.set(CURLOPT_HTTPHEADER, list.get()));
        set(easy.set(CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options.upstream_connect_timeout.count())));
        set(easy.set(CURLOPT_TIMEOUT_MS, static_cast<long>(options.upstream_timeout.count())));
        set(easy.set(CURLOPT_PROXY, options.proxy.c_str()));
        if (!options.proxy.empty() && !options.no_proxy.empty()) {
            set(easy.set(CURLOPT_NOPROXY, options.no_proxy.c_str()));
        }
        if (!options.ca_bundle.empty()) {
            set(easy.set(CURLOPT_CAINFO, options.ca_bundle.c_str()));
        }
        if (options.no_verify_ssl) {
            set(easy.set(CURLOPT_SSL_VERIFYPEER, 0L));
            set(easy.set(CURLOPT_SSL_VERIFYHOST, 0L));
        }
        set(easy.set(CURLOPT_PROTOCOLS_STR, "http,https"));
        set(easy.set(CURLOPT_WRITEFUNCTION, &on_upstream_body));
        set(easy.set(CURLOPT_WRITEDATA, &reply));
        set(easy.set(CURLOPT_HEADERFUNCTION, &on_upstream_header));
        set(easy.set(CURLOPT_HEADERDATA, &reply));
        set(easy.set(CURLOPT_XFERINFOFUNCTION, &on_upstream_progress));
        set(easy.set(CURLOPT_XFERINFODATA, &reply));
        set(easy.set(CURLOPT_NOPROGRESS, 0L));
        const std::string method_copy(method);
        if (method == "GET" && request.body.empty()) {
            set(easy.set(CURLOPT_HTTPGET, 1L));
        } else if (method == "HEAD") {
            set(easy.set(CURLOPT_NOBODY, 1L));
        } else {
            set(easy.set(CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body.size())));
            set(easy.set(CURLOPT_POSTFIELDS, request.body.data()));
            set(easy.set(CURLOPT_CUSTOMREQUEST, method_copy.c_str()));
        }
        if (rc == CURLE_OK) {
            rc = curl_easy_perform(easy.get());
        }
        long status = 0;
        if (rc == CURLE_OK && easy.info(CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) {
            status = 0;
        }
        // Nothing of this exchange may point into this stack frame once the handle is pooled.
        (void)easy.set(CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
        (void)easy.set(CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
        give_back(std::move(easy));

        if (rc != CURLE_OK || status < 100) {
            counters.add(Counter::proxy_upstream_error);
            if (stopping.load(std::memory_order_relaxed)) {
                return answer_error(connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                                    "xrayd sampling proxy: shutting down");
            }
            std::string message = reply.too_large ? fmt::format("response larger than {} bytes",
                                                                options.max_response_bytes)
                                                  : std::string(curl_easy_strerror(rc));
            if (!reply.too_large && error_buffer[0] != '\0') {
                message += fmt::format(": {}", error_buffer);
            }
            log_upstream_error(message);
            const unsigned code =
                rc == CURLE_OPERATION_TIMEDOUT ? MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_BAD_GATEWAY;
            return answer_error(connection, code,
                                fmt::format("xrayd sampling proxy: X-Ray endpoint {} "
                                            "unreachable: {}",
                                            upstream.origin, message));
        }

        std::vector<ForwardHeader> relayed;
        const std::vector<std::string> named = connection_tokens(reply.headers);
        for (ForwardHeader& h : reply.headers) {
            if (is_hop_by_hop(h.name) || iequals(h.name, "Content-Length") ||
                std::any_of(named.begin(), named.end(),
                            [&](const std::string& token) { return iequals(token, h.name); })) {
                continue;
            }
            relayed.push_back(std::move(h));
        }
        counters.add(Counter::proxy_forwarded);
        return answer(connection, static_cast<unsigned>(status), relayed, reply.body);
    } catch (...) {
        // Out of memory or no curl handle: drop the connection, the SDK retries later.
        return MHD_NO;
    }
}

SamplingProxy::SamplingProxy(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}

SamplingProxy::~SamplingProxy() {
    stop();
}

std::unique_ptr<SamplingProxy> SamplingProxy::create(SamplingProxyOptions options,
                                                     CredentialsProvider& credentials,
                                                     Counters& counters, Logger& logger) {
    if (auto resolved = resolve_udp_address(options.address); !resolved) {
        throw StartupError(resolved.error());
    }
    if (options.max_connections == 0) {
        throw StartupError("proxy: the connection limit must be at least 1");
    }
    UpstreamUrl upstream = parse_upstream_url(options.upstream);
    logger.info("HTTP Proxy server using X-Ray Endpoint : {}", options.upstream);
    auto state = std::make_unique<State>(std::move(options), std::move(upstream), credentials,
                                         counters, logger);
    return std::unique_ptr<SamplingProxy>(new SamplingProxy(std::move(state)));
}

bool SamplingProxy::start() {
    State& s = *state_;
    if (s.daemon != nullptr) {
        return true;
    }
    s.logger.info("Starting proxy http server on {}", s.options.address);
    auto listening = listen_tcp(s.options.address);
    if (!listening) {
        const std::string message = "proxy http server failed to listen: " + listening.error();
        if (!s.options.listen_failure_non_fatal) {
            throw StartupError(message);
        }
        s.logger.error("{}", message);
        return false;
    }
    s.listen_fd = std::move(listening.value());
    s.stopping.store(false, std::memory_order_relaxed);
    const unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
                               MHD_USE_ITC | MHD_USE_ERROR_LOG;
    s.daemon = MHD_start_daemon(
        flags, 0, nullptr, nullptr, &State::on_request, &s, MHD_OPTION_EXTERNAL_LOGGER,
        &State::on_log, &s, MHD_OPTION_LISTEN_SOCKET, static_cast<MHD_socket>(s.listen_fd.get()),
        MHD_OPTION_URI_LOG_CALLBACK, &State::on_uri, &s, MHD_OPTION_UNESCAPE_CALLBACK,
        &State::no_unescape, &s, MHD_OPTION_NOTIFY_COMPLETED, &State::on_completed, &s,
        MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned int>(s.options.max_connections),
        MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned int>(s.options.idle_timeout.count()),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<std::size_t>(s.options.max_header_bytes),
        MHD_OPTION_END);
    if (s.daemon == nullptr) {
        s.listen_fd.reset();
        const std::string message =
            "proxy http server failed to listen: libmicrohttpd could not start on " +
            s.options.address;
        if (!s.options.listen_failure_non_fatal) {
            throw StartupError(message);
        }
        s.logger.error("{}", message);
        return false;
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    if (::getsockname(s.listen_fd.get(), reinterpret_cast<sockaddr*>(&bound), &length) == 0) {
        if (bound.ss_family == AF_INET) {
            s.port = ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
        } else if (bound.ss_family == AF_INET6) {
            s.port = ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
        }
        // The bound address, with the real port when port 0 was asked for.
        s.logger.debug("Listening on TCP {}",
                       format_socket_address(reinterpret_cast<const sockaddr*>(&bound), length));
    }
    return true;
}

void SamplingProxy::set_forward_all(bool forward_all) noexcept {
    state_->forward_all.store(forward_all, std::memory_order_relaxed);
}

void SamplingProxy::stop() noexcept {
    if (!state_ || state_->daemon == nullptr) {
        return;
    }
    State& s = *state_;
    s.stopping.store(true, std::memory_order_relaxed);  // aborts upstream exchanges in flight
    // Quiesce hands the listening socket back (we own it and close it), then stop joins
    // every connection thread.
    (void)MHD_quiesce_daemon(s.daemon);
    MHD_stop_daemon(s.daemon);
    s.daemon = nullptr;
    s.listen_fd.reset();
    s.port = 0;
    std::lock_guard lock(s.pool_mutex);
    s.idle_handles.clear();
}

std::uint16_t SamplingProxy::port() const noexcept {
    return state_->port;
}

bool SamplingProxy::serving() const noexcept {
    return state_->daemon != nullptr;
}

}  // namespace xrayd
