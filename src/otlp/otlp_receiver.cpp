// OtlpReceiver on libmicrohttpd: POST /v1/traces checked, read and handed to the sink.
#include <xrayd/otlp/otlp_receiver.h>

#include <microhttpd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <optional>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/http/gated_server.h>
#include <xrayd/http/header_text.h>
#include <xrayd/net/tcp_listener.h>
#include <xrayd/net/udp_socket.h>
#include <xrayd/otlp/otlp_response.h>

namespace xrayd::otlp {
namespace {

constexpr std::string_view protobuf_type = "application/x-protobuf";
constexpr std::string_view json_type = "application/json";

// The encoding a Content-Type names: its media type (parameters such as "; charset=utf-8"
// ignored, case-insensitive per RFC 9110 8.3.1); nullopt for any other type or none.
std::optional<OtlpEncoding> encoding_of(const char* content_type) noexcept {
    if (content_type == nullptr) {
        return std::nullopt;
    }
    std::string_view type = content_type;
    type = trim_ows(type.substr(0, type.find(';')));
    if (ascii_iequals(type, protobuf_type)) {
        return OtlpEncoding::protobuf;
    }
    if (ascii_iequals(type, json_type)) {
        return OtlpEncoding::json;
    }
    return std::nullopt;
}

// One request between libmicrohttpd's calls: made on the first, freed by on_completed.
struct RequestContext {
    OtlpEncoding encoding = OtlpEncoding::protobuf;  // of the body and of the answer
    bool gzip = false;
    // A refusal decided from the head (404, 405, 415): answered once the body has been read
    // (discarded), so that the client is reading when the answer comes.
    unsigned reject_status = 0;
    std::int32_t reject_code = 0;
    std::string reject_message;
    TimePoint body_deadline{};
    std::string body;
};

}  // namespace

struct OtlpReceiver::State {
    State(OtlpReceiverOptions o, OtlpSink& s, Counters& c, Logger& log)
        : options(std::move(o)),
          retry_after(std::to_string(options.retry_after.count())),
          sink(s),
          counters(c),
          logger(log),
          bad_request_limiter(options.error_log_interval) {}

    // libmicrohttpd callbacks: C code calls them, so nothing may escape (noexcept).
    static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url,
                                 const char* method, const char* version, const char* upload_data,
                                 std::size_t* upload_data_size, void** request_state) noexcept;
    static void on_completed(void* cls, MHD_Connection* connection, void** request_state,
                             MHD_RequestTerminationCode why) noexcept;

    MHD_Result begin(MHD_Connection* connection, RequestContext& request, std::string_view url,
                     std::string_view method);
    MHD_Result receive(RequestContext& request, const char* data, std::size_t size);
    MHD_Result finish(MHD_Connection* connection, RequestContext& request);
    MHD_Result refuse(MHD_Connection* connection, const RequestContext& request, unsigned status,
                      std::int32_t code, std::string_view message);
    MHD_Result answer(MHD_Connection* connection, unsigned status, OtlpEncoding encoding,
                      std::string_view body, bool retry, bool allow_post) noexcept;
    MHD_Result answer_unavailable(MHD_Connection* connection) noexcept;
    void log_refusal(std::string_view what) noexcept;

    const OtlpReceiverOptions options;
    const std::string retry_after;  // the header's value, made once
    OtlpSink& sink;
    Counters& counters;
    Logger& logger;
    RateLimiter bad_request_limiter;

    std::unique_ptr<GatedServer> server;  // while serving
    std::uint16_t port = 0;
    std::string bound;
};

void OtlpReceiver::State::on_completed(void*, MHD_Connection*, void** request_state,
                                       MHD_RequestTerminationCode) noexcept {
    delete static_cast<RequestContext*>(*request_state);
    *request_state = nullptr;
}

MHD_Result OtlpReceiver::State::on_request(void* cls, MHD_Connection* connection, const char* url,
                                           const char* method, const char* /*version*/,
                                           const char* upload_data, std::size_t* upload_data_size,
                                           void** request_state) noexcept {
    auto& state = *static_cast<State*>(cls);
    auto* request = static_cast<RequestContext*>(*request_state);
    try {
        if (request == nullptr) {
            request = new RequestContext;
            *request_state = request;  // on_completed frees it
            return state.begin(connection, *request, url != nullptr ? url : "",
                               method != nullptr ? method : "");
        }
        if (*upload_data_size > 0) {
            const std::size_t n = std::exchange(*upload_data_size, 0);
            return state.receive(*request, upload_data, n);
        }
        return state.finish(connection, *request);
    } catch (const std::bad_alloc&) {
        // Out of memory: a bare 503 (no allocation of ours) asks the SDK to retry later. Mid-body
        // libmicrohttpd cannot queue it and drops the connection: the SDK retries all the same.
        return state.answer_unavailable(connection);
    } catch (...) {
        return MHD_NO;
    }
}

MHD_Result OtlpReceiver::State::begin(MHD_Connection* connection, RequestContext& request,
                                      std::string_view url, std::string_view method) {
    const char* type =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const std::optional<OtlpEncoding> encoding = encoding_of(type);
    request.encoding = encoding.value_or(OtlpEncoding::protobuf);
    const char* coding =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
    const std::string_view coding_text = trim_ows(coding != nullptr ? coding : "");
    request.gzip = ascii_iequals(coding_text, "gzip");
    const bool known_coding =
        request.gzip || coding_text.empty() || ascii_iequals(coding_text, "identity");
    if (url != traces_path) {
        request.reject_status = MHD_HTTP_NOT_FOUND;
        request.reject_code = rpc_not_found;
        // The path is not repeated: the message is logged, and the path is the client's text.
        request.reject_message =
            fmt::format("xrayd: unknown path; OTLP traces go to POST {}", traces_path);
    } else {
        counters.add(Counter::otlp_requests);
        if (method != "POST") {
            request.reject_status = MHD_HTTP_METHOD_NOT_ALLOWED;
            request.reject_code = rpc_unimplemented;
            request.reject_message = fmt::format("xrayd: only POST {} is served", traces_path);
        } else if (!encoding) {
            request.reject_status = MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
            request.reject_code = rpc_unimplemented;
            request.reject_message =
                fmt::format("xrayd: Content-Type must be {} or {}", protobuf_type, json_type);
        } else if (!known_coding) {
            request.reject_status = MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
            request.reject_code = rpc_unimplemented;
            request.reject_message = "xrayd: Content-Encoding must be gzip or identity";
        }
    }
    const char* length =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    // The gate let only 1*DIGIT of at most 18 digits through: strtoull cannot overflow.
    const unsigned long long declared = length != nullptr ? std::strtoull(length, nullptr, 10) : 0;
    if (declared > options.max_body_bytes) {
        if (request.reject_status == 0) {
            counters.add(Counter::otlp_requests_too_large);
        }
        // Answered before the body is read: libmicrohttpd then closes the connection.
        return refuse(connection, request, MHD_HTTP_CONTENT_TOO_LARGE, rpc_resource_exhausted,
                      fmt::format("xrayd: request body of {} bytes is over the limit of {} bytes",
                                  declared, options.max_body_bytes));
    }
    if (request.reject_status == 0) {
        request.body.reserve(declared);
    }
    request.body_deadline = Clock::now() + options.body_timeout;
    return MHD_YES;
}

MHD_Result OtlpReceiver::State::receive(RequestContext& request, const char* data,
                                        std::size_t size) {
    if (request.body.size() + size > options.max_body_bytes) {
        // A chunked body past the cap: a response cannot be queued mid-body, so close.
        if (request.reject_status == 0) {
            counters.add(Counter::otlp_requests_too_large);
        }
        log_refusal("chunked body over the size limit, connection closed");
        return MHD_NO;
    }
    if (Clock::now() > request.body_deadline) {
        log_refusal("body not received in time, connection closed");
        return MHD_NO;
    }
    if (request.reject_status == 0) {
        request.body.append(data, size);
    }
    return MHD_YES;
}

MHD_Result OtlpReceiver::State::finish(MHD_Connection* connection, RequestContext& request) {
    if (request.reject_status != 0) {
        return refuse(connection, request, request.reject_status, request.reject_code,
                      request.reject_message);
    }
    std::string body = std::move(request.body);
    if (request.gzip) {
        auto inflated = gunzip(body, options.max_inflated_bytes);
        if (!inflated) {
            switch (inflated.error()) {
            case OtlpErrc::out_of_memory: return answer_unavailable(connection);
            case OtlpErrc::gzip_too_large:
                counters.add(Counter::otlp_requests_too_large);
                return refuse(connection, request, MHD_HTTP_CONTENT_TOO_LARGE,
                              rpc_resource_exhausted,
                              fmt::format("xrayd: request body inflates past the limit of {} "
                                          "bytes",
                                          options.max_inflated_bytes));
            default:
                counters.add(Counter::otlp_requests_invalid);
                return refuse(connection, request, MHD_HTTP_BAD_REQUEST, rpc_invalid_argument,
                              to_string(inflated.error()));
            }
        }
        body = std::move(inflated.value());
    }
    auto read = read_export_request(body, request.encoding, options.limits);
    if (!read) {
        if (read.error() == OtlpErrc::out_of_memory) {
            return answer_unavailable(connection);
        }
        counters.add(Counter::otlp_requests_invalid);
        return refuse(connection, request, MHD_HTTP_BAD_REQUEST, rpc_invalid_argument,
                      to_string(read.error()));
    }
    const OtlpExportRequest& export_request = read.value();
    counters.add(Counter::otlp_spans_received, export_request.spans);
    std::string message;
    if (export_request.refused_spans > 0) {
        counters.add(Counter::otlp_spans_rejected_too_large, export_request.refused_spans);
        message = fmt::format("{} span(s) over X-Ray's limit of {} bytes per span refused",
                              export_request.refused_spans, options.limits.max_span_bytes);
    }
    const std::size_t accepted = export_request.accepted_spans();
    // Nothing to deliver (no span, or all refused): answered at once, the sink never sees it.
    if (accepted > 0 &&
        sink.offer(request.encoding, std::move(body), export_request) == OfferResult::full) {
        counters.add(Counter::otlp_spans_dropped_buffer_full, accepted);
        return refuse(connection, request, MHD_HTTP_SERVICE_UNAVAILABLE, rpc_unavailable,
                      "xrayd: memory budget full, retry later");
    }
    const std::string response =
        export_response(request.encoding, export_request.refused_spans, message);
    return answer(connection, MHD_HTTP_OK, request.encoding, response, false, false);
}

MHD_Result OtlpReceiver::State::refuse(MHD_Connection* connection, const RequestContext& request,
                                       unsigned status, std::int32_t code,
                                       std::string_view message) {
    if (status != MHD_HTTP_SERVICE_UNAVAILABLE) {
        log_refusal(message);
    }
    const std::string body = status_body(request.encoding, code, message);
    return answer(connection, status, request.encoding, body,
                  status == MHD_HTTP_SERVICE_UNAVAILABLE, status == MHD_HTTP_METHOD_NOT_ALLOWED);
}

MHD_Result OtlpReceiver::State::answer(MHD_Connection* connection, unsigned status,
                                       OtlpEncoding encoding, std::string_view body, bool retry,
                                       bool allow_post) noexcept {
    MHD_Response* response = MHD_create_response_from_buffer(
        body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) {
        return MHD_NO;
    }
    const std::string_view type = encoding == OtlpEncoding::json ? json_type : protobuf_type;
    // The literals are NUL-terminated: their data() is a C string.
    (void)MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type.data());
    if (retry) {
        (void)MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, retry_after.c_str());
    }
    if (allow_post) {
        (void)MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "POST");
    }
    return queue_closing_response(connection, status, response);
}

MHD_Result OtlpReceiver::State::answer_unavailable(MHD_Connection* connection) noexcept {
    MHD_Response* response = MHD_create_response_from_buffer(0, nullptr, MHD_RESPMEM_PERSISTENT);
    if (response == nullptr) {
        return MHD_NO;
    }
    (void)MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, retry_after.c_str());
    return queue_closing_response(connection, MHD_HTTP_SERVICE_UNAVAILABLE, response);
}

void OtlpReceiver::State::log_refusal(std::string_view what) noexcept {
    std::uint64_t suppressed = 0;
    if (!bad_request_limiter.allow(Clock::now(), &suppressed)) {
        return;
    }
    if (suppressed > 0) {
        logger.warn("otlp: request refused: {} ({} similar refusals suppressed)", what, suppressed);
    } else {
        logger.warn("otlp: request refused: {}", what);
    }
}

OtlpReceiver::OtlpReceiver(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}

OtlpReceiver::~OtlpReceiver() {
    stop();
}

std::unique_ptr<OtlpReceiver> OtlpReceiver::create(OtlpReceiverOptions options, OtlpSink& sink,
                                                   Counters& counters, Logger& logger) {
    if (auto resolved = resolve_udp_address(options.address); !resolved) {
        throw StartupError("otlp: " + resolved.error());
    }
    if (options.max_connections == 0 || options.threads == 0) {
        throw StartupError("otlp: the connection limit and the threads must be at least 1");
    }
    if (options.max_body_bytes == 0 || options.max_inflated_bytes < options.max_body_bytes) {
        throw StartupError("otlp: the body limits must be at least 1 byte, the inflated one at "
                           "least the body limit");
    }
    auto state = std::make_unique<State>(std::move(options), sink, counters, logger);
    return std::unique_ptr<OtlpReceiver>(new OtlpReceiver(std::move(state)));
}

void OtlpReceiver::start() {
    State& s = *state_;
    if (s.server) {
        return;
    }
    auto listening = listen_tcp(s.options.address);
    if (!listening) {
        throw StartupError("otlp http server failed to listen: " + listening.error());
    }
    GatedServerOptions server = gated_server_options("otlp", s.options);
    set_header_budget(server, s.options.max_header_bytes);
    // A pool of threads that live as long as the receiver, not a thread per connection: every
    // request comes on a new connection (each answer closes it), and a thread per connection
    // cost a thread start, a stack and a fresh set of JSON parsers (thread_local, so they are
    // reused only by a thread that lives on) per request. Reading and checking a request takes
    // well under a millisecond for the SDKs' 512 spans and tens for a body at the size limit:
    // with more than one thread, such a request delays only the connections of its own thread.
    server.polling_threads = s.options.threads;
    server.handler = &State::on_request;
    server.handler_cls = &s;
    server.extra = {
        {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<std::intptr_t>(&State::on_completed), &s}};
    s.server =
        GatedServer::start(std::move(server), std::move(listening.value()), s.counters, s.logger);
    s.port = bound_port(s.server->listen_fd());
    s.bound = local_address(s.server->listen_fd());
    s.logger.info("Listening for OTLP/HTTP on {} (POST {})", s.bound, traces_path);
}

void OtlpReceiver::stop() noexcept {
    if (!state_) {
        return;
    }
    state_->server.reset();  // stops accepting, joins every connection thread
    state_->port = 0;
    state_->bound.clear();
}

std::string OtlpReceiver::bound_address() const {
    return state_->bound;
}

std::uint16_t OtlpReceiver::port() const noexcept {
    return state_->port;
}

}  // namespace xrayd::otlp
