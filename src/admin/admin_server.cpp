// AdminServer: /healthz, /readyz and /metrics on libmicrohttpd.
#include <xrayd/admin/admin_server.h>

#include <microhttpd.h>

#include <algorithm>
#include <atomic>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/http/gated_server.h>
#include <xrayd/net/tcp_listener.h>
#include <xrayd/net/udp_socket.h>

namespace xrayd {
namespace {

constexpr std::string_view text_plain = "text/plain; charset=utf-8";
constexpr std::string_view prometheus_text = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace

struct AdminServer::State {
    AdminOptions options;
    Counters& counters;
    HealthState& health;
    const LatencyHistogram& latency;
    Logger& logger;
    std::atomic<Clock::rep> threshold;
    std::unique_ptr<GatedServer> server;  // while serving
    std::uint16_t port = 0;

    State(AdminOptions o, Counters& c, HealthState& h, const LatencyHistogram& l, Logger& log)
        : options(std::move(o)),
          counters(c),
          health(h),
          latency(l),
          logger(log),
          threshold(options.ready_failure_threshold.count()) {}

    static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url,
                                 const char* method, const char* version, const char* upload_data,
                                 std::size_t* upload_data_size, void** request_state) noexcept;
    MHD_Result handle(MHD_Connection* connection, std::string_view url, std::string_view method);
};

MHD_Result AdminServer::State::on_request(void* cls, MHD_Connection* connection, const char* url,
                                          const char* method, const char* /*version*/,
                                          const char* /*upload_data*/,
                                          std::size_t* upload_data_size,
                                          void** request_state) noexcept {
    auto* s = static_cast<State*>(cls);
    (void)request_state;
    // The gate refuses heads that announce a body; anything else is consumed and ignored.
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    try {
        return s->handle(connection, url == nullptr ? "" : url, method == nullptr ? "" : method);
    } catch (...) {
        return MHD_NO;  // out of memory: drop the connection
    }
}

MHD_Result AdminServer::State::handle(MHD_Connection* connection, std::string_view url,
                                      std::string_view method) {
    unsigned status = MHD_HTTP_OK;
    std::string body;
    std::string_view type = text_plain;
    const bool known = url == "/healthz" || url == "/readyz" || url == "/metrics";
    if (!known) {
        status = MHD_HTTP_NOT_FOUND;
        body = "not found: try /healthz, /readyz or /metrics\n";
    } else if (method != "GET" && method != "HEAD") {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        body = "method not allowed: use GET\n";
    } else if (url == "/healthz") {
        body = "ok\n";
    } else {
        if (options.refresh) {
            options.refresh(health);
        }
        const Readiness r =
            health.readiness(Clock::now(), Duration(threshold.load(std::memory_order_relaxed)));
        if (url == "/readyz") {
            status = r.ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
            body = !r.ready           ? "not ready: " + r.reason + "\n"
                   : r.reason.empty() ? std::string("ready\n")
                                      : "ready, degraded: " + r.reason + "\n";
        } else {
            body = format_metrics(counters.snapshot(), health, r.ready, latency.snapshot(),
                                  options.build_info);
            type = prometheus_text;
        }
    }
    MHD_Response* response = MHD_create_response_from_buffer(
        body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) {
        return MHD_NO;
    }
    (void)MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                  std::string(type).c_str());
    (void)MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        (void)MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    return queue_closing_response(connection, status, response);
}

AdminServer::AdminServer(AdminOptions options, Counters& counters, HealthState& health,
                         const LatencyHistogram& latency, Logger& logger)
    : state_(std::make_unique<State>(std::move(options), counters, health, latency, logger)) {}

AdminServer::~AdminServer() {
    stop();
}

void AdminServer::start() {
    State& s = *state_;
    if (s.server) {
        return;
    }
    auto listening = listen_tcp(s.options.address);
    if (!listening) {
        throw StartupError("admin http server failed to listen: " + listening.error());
    }
    GatedServerOptions server = gated_server_options("admin", s.options);
    server.gate.max_head_bytes = 8 * 1024;  // GETs of three paths: no body, small heads
    server.gate.rules.allow_body = false;
    server.handler = &State::on_request;
    server.handler_cls = &s;
    s.server =
        GatedServer::start(std::move(server), std::move(listening.value()), s.counters, s.logger);
    s.port = bound_port(s.server->listen_fd());
    s.logger.info("Admin http server on {} (/healthz, /readyz, /metrics)",
                  local_address(s.server->listen_fd()));
}

void AdminServer::stop() noexcept {
    if (state_) {
        state_->server.reset();  // stops it
    }
}

std::uint16_t AdminServer::port() const noexcept {
    return state_->port;
}

void AdminServer::set_ready_failure_threshold(Duration threshold) noexcept {
    state_->threshold.store(threshold.count(), std::memory_order_relaxed);
}

}  // namespace xrayd
