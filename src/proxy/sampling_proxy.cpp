// SamplingProxy's server half on libmicrohttpd: listening, the request callbacks, the
// allow-list and limits, and the answers (the forwarding itself is proxy_forwarding.cpp).
#include <xrayd/proxy/sampling_proxy.h>

#include <microhttpd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include <xrayd/common/json_text.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/http/base_url.h>
#include <xrayd/http/gated_server.h>
#include <xrayd/http/request_head.h>
#include <xrayd/log/remote_text.h>
#include <xrayd/net/tcp_listener.h>
#include <xrayd/net/udp_socket.h>

#include "proxy_forwarding.h"

namespace xrayd {
namespace {

using proxy_detail::UpstreamForwarder;
using proxy_detail::UpstreamResult;

// One request between the calls libmicrohttpd makes for it. Created by the URI callback,
// freed by the completion callback.
struct RequestContext {
    std::string raw_uri;  // as received, query included
    std::string path;     // origin-form path
    std::string query;    // without '?'
    bool started = false;
    bool bad_target = false;  // not in origin form: 400 at once (ConnectionGate refuses it first)
    int reject_status = 0;    // answer with this once the body is read (404 / 405)
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

}  // namespace

struct SamplingProxy::State {
    State(SamplingProxyOptions opts, BaseUrl upstream, CredentialsProvider& credentials,
          Counters& c, Logger& log)
        : options(std::move(opts)),
          forwarder(options, std::move(upstream), credentials),
          counters(c),
          logger(log),
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

    const SamplingProxyOptions options;
    UpstreamForwarder forwarder;  // owns the upstream URL, signer and connection pool
    Counters& counters;
    Logger& logger;

    RateLimiter error_limiter;
    std::atomic<bool> forward_all;  // options.forward_all, switchable at run time

    std::unique_ptr<GatedServer> server;  // while serving
    std::uint16_t port = 0;
};

void* SamplingProxy::State::on_uri(void* /*cls*/, const char* uri, MHD_Connection*) noexcept {
    try {
        auto request = std::make_unique<RequestContext>();
        request->raw_uri = uri != nullptr ? uri : "";
        const std::string_view target = request->raw_uri;
        // Only origin form ("/path?query"): any other form could name another host.
        request->bad_target = !is_origin_form(target);
        const std::size_t question = target.find('?');
        request->path = target.substr(0, question);
        if (question != std::string_view::npos) {
            request->query = target.substr(question + 1);
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
            logger.debug("Proxy request {} closed: body over {} bytes", RemoteText{request.raw_uri},
                         options.max_body_bytes);
            return MHD_NO;
        }
        if (Clock::now() > request.body_deadline) {
            logger.debug("Proxy request {} closed: body not received within {} ms",
                         RemoteText{request.raw_uri}, options.body_timeout.count());
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
    logger.debug("Received request on HTTP Proxy server : {}", RemoteText{request.raw_uri});
    if (request.bad_target) {
        return answer_error(connection, MHD_HTTP_BAD_REQUEST,
                            "xrayd sampling proxy: the request target is not in origin form");
    }
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
    return queue_closing_response(connection, status, response);
}

MHD_Result SamplingProxy::State::answer_error(MHD_Connection* connection, unsigned status,
                                              std::string_view message) noexcept {
    try {
        std::string body = R"({"message":)";
        append_json_string(body, message);
        body += '}';
        return answer(connection, status, {{"Content-Type", "application/json"}}, body);
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
                     forwarder.upstream().origin, message, suppressed);
    } else {
        logger.error("proxy: X-Ray endpoint {} unreachable: {}", forwarder.upstream().origin,
                     message);
    }
}

MHD_Result SamplingProxy::State::forward(MHD_Connection* connection, RequestContext& request,
                                         std::string_view method) noexcept {
    try {
        std::vector<ForwardHeader> client_headers;
        MHD_get_connection_values(connection, MHD_HEADER_KIND, collect_header, &client_headers);
        UpstreamResult result = forwarder.forward(proxy_detail::ClientRequest{
            method, request.path, request.query, request.body, client_headers});
        switch (result.kind) {
        case UpstreamResult::Kind::answered:
            counters.add(Counter::proxy_forwarded);
            return answer(connection, static_cast<unsigned>(result.status), result.headers,
                          result.body);
        case UpstreamResult::Kind::no_credentials:
            counters.add(Counter::proxy_no_credentials);
            log_upstream_error(result.message);
            return answer_error(connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "xrayd sampling proxy: no AWS credentials available");
        case UpstreamResult::Kind::bad_request:
            return answer_error(connection, MHD_HTTP_BAD_REQUEST,
                                "xrayd sampling proxy: " + result.message);
        case UpstreamResult::Kind::signing_failed:
            counters.add(Counter::proxy_no_credentials);
            log_upstream_error(result.message);
            return answer_error(connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "xrayd sampling proxy: request signing failed");
        case UpstreamResult::Kind::failed: {
            counters.add(Counter::proxy_upstream_error);
            if (forwarder.stopping()) {
                return answer_error(connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                                    "xrayd sampling proxy: shutting down");
            }
            log_upstream_error(result.message);
            const unsigned code =
                result.timed_out ? MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_BAD_GATEWAY;
            return answer_error(connection, code,
                                fmt::format("xrayd sampling proxy: X-Ray endpoint {} "
                                            "unreachable: {}",
                                            forwarder.upstream().origin, result.message));
        }
        case UpstreamResult::Kind::dropped: break;
        }
        return MHD_NO;
    } catch (...) {
        // Out of memory: drop the connection, the SDK retries later.
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
    BaseUrl upstream = parse_base_url(options.upstream, "X-Ray endpoint");
    logger.info("HTTP Proxy server using X-Ray Endpoint : {}", options.upstream);
    auto state = std::make_unique<State>(std::move(options), std::move(upstream), credentials,
                                         counters, logger);
    return std::unique_ptr<SamplingProxy>(new SamplingProxy(std::move(state)));
}

bool SamplingProxy::start() {
    State& s = *state_;
    if (s.server) {
        return true;
    }
    s.logger.info("Starting proxy http server on {}", s.options.address);
    try {
        auto listening = listen_tcp(s.options.address);
        if (!listening) {
            throw StartupError("proxy http server failed to listen: " + listening.error());
        }
        GatedServerOptions server = gated_server_options("proxy", s.options);
        set_header_budget(server, s.options.max_header_bytes);
        server.thread_per_connection = true;  // each request waits for X-Ray
        server.handler = &State::on_request;
        server.handler_cls = &s;
        server.extra = {
            {MHD_OPTION_URI_LOG_CALLBACK, reinterpret_cast<std::intptr_t>(&State::on_uri), &s},
            {MHD_OPTION_UNESCAPE_CALLBACK, reinterpret_cast<std::intptr_t>(&State::no_unescape),
             &s},
            {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<std::intptr_t>(&State::on_completed),
             &s},
        };
        s.forwarder.resume();
        s.server = GatedServer::start(std::move(server), std::move(listening.value()), s.counters,
                                      s.logger);
    } catch (const StartupError& e) {
        if (!s.options.listen_failure_non_fatal) {
            throw;
        }
        s.logger.error("{}", e.what());
        return false;
    }
    s.port = bound_port(s.server->listen_fd());
    // The bound address, with the real port when port 0 was asked for.
    s.logger.debug("Listening on TCP {}", local_address(s.server->listen_fd()));
    return true;
}

void SamplingProxy::set_forward_all(bool forward_all) noexcept {
    state_->forward_all.store(forward_all, std::memory_order_relaxed);
}

void SamplingProxy::stop() noexcept {
    if (!state_ || !state_->server) {
        return;
    }
    State& s = *state_;
    s.forwarder.stop();  // aborts upstream exchanges in flight
    s.server.reset();    // stops accepting, joins every connection thread
    s.port = 0;
    s.forwarder.drop_idle_handles();
}

std::uint16_t SamplingProxy::port() const noexcept {
    return state_->port;
}

bool SamplingProxy::serving() const noexcept {
    return state_->server != nullptr;
}

}  // namespace xrayd
