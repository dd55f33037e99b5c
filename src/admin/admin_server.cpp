// AdminServer: /healthz, /readyz and /metrics on libmicrohttpd.
#include <xrayd/admin/admin_server.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/net/tcp_listener.h>
#include <xrayd/net/udp_socket.h>

namespace xrayd {
namespace {

constexpr std::string_view text_plain = "text/plain; charset=utf-8";
constexpr std::string_view prometheus_text = "text/plain; version=0.0.4; charset=utf-8";

std::uint16_t bound_port(int fd) noexcept {
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
        return 0;
    }
    if (bound.ss_family == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
    }
    if (bound.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
    }
    return 0;
}

}  // namespace

struct AdminServer::State {
    AdminOptions options;
    Counters& counters;
    HealthState& health;
    const LatencyHistogram& latency;
    Logger& logger;
    std::atomic<Clock::rep> threshold;
    std::unique_ptr<ConnectionGate> gate;  // owns the listening socket while serving
    MHD_Daemon* daemon = nullptr;
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
    static void on_log(void* cls, const char* format, va_list args) noexcept;
    MHD_Result handle(MHD_Connection* connection, std::string_view url, std::string_view method);
};

void AdminServer::State::on_log(void* cls, const char* format, va_list args) noexcept {
    auto* s = static_cast<State*>(cls);
    std::array<char, 512> line{};
    // libmicrohttpd passes a printf format and its arguments.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    const int n = std::vsnprintf(line.data(), line.size(), format, args);
#pragma GCC diagnostic pop
    if (n > 0) {
        std::string_view text(line.data(),
                              std::min<std::size_t>(static_cast<std::size_t>(n), line.size() - 1));
        while (!text.empty() && text.back() == '\n') {
            text.remove_suffix(1);
        }
        s->logger.debug("admin http server: {}", text);
    }
}

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
    // One request per connection: the next head must pass the ConnectionGate too.
    if (MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES) {
        MHD_destroy_response(response);
        return MHD_NO;
    }
    const MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
}

AdminServer::AdminServer(AdminOptions options, Counters& counters, HealthState& health,
                         const LatencyHistogram& latency, Logger& logger)
    : state_(std::make_unique<State>(std::move(options), counters, health, latency, logger)) {}

AdminServer::~AdminServer() {
    stop();
}

void AdminServer::start() {
    State& s = *state_;
    if (s.daemon != nullptr) {
        return;
    }
    auto listening = listen_tcp(s.options.address);
    if (!listening) {
        throw StartupError("admin http server failed to listen: " + listening.error());
    }
    ConnectionGateOptions gate_options;
    gate_options.name = "admin";
    gate_options.max_connections = s.options.max_connections;
    gate_options.max_per_peer = std::min(s.options.max_connections, s.options.max_per_peer);
    gate_options.head_timeout = s.options.head_timeout;
    gate_options.max_head_bytes = 8 * 1024;
    gate_options.rules.allow_body = false;
    s.gate = ConnectionGate::create(std::move(gate_options), std::move(listening.value()),
                                    s.counters, s.logger);
    // The gate accepts and checks each request head; libmicrohttpd gets the connection after.
    const unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                               MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG;
    s.daemon = MHD_start_daemon(
        flags, 0, nullptr, nullptr, &State::on_request, &s, MHD_OPTION_EXTERNAL_LOGGER,
        &State::on_log, &s, MHD_OPTION_NOTIFY_CONNECTION, &ConnectionGate::on_mhd_connection,
        s.gate.get(), MHD_OPTION_CONNECTION_LIMIT,
        static_cast<unsigned int>(s.options.max_connections), MHD_OPTION_CONNECTION_TIMEOUT,
        static_cast<unsigned int>(s.options.idle_timeout.count()), MHD_OPTION_END);
    if (s.daemon == nullptr) {
        s.gate.reset();
        throw StartupError("admin http server failed to listen: libmicrohttpd could not start "
                           "on " +
                           s.options.address);
    }
    MHD_Daemon* started = std::exchange(s.daemon, nullptr);
    s.gate->start(started);  // on a StartupError it has stopped the daemon
    s.daemon = started;
    s.port = bound_port(s.gate->listen_fd());
    s.logger.info("Admin http server on {} (/healthz, /readyz, /metrics)",
                  local_address(s.gate->listen_fd()));
}

void AdminServer::stop() noexcept {
    if (!state_ || state_->daemon == nullptr) {
        return;
    }
    State& s = *state_;
    // The gate stops accepting first; libmicrohttpd's close notifications still reach it.
    s.gate->stop();
    MHD_stop_daemon(s.daemon);
    s.daemon = nullptr;
    s.gate.reset();
}

std::uint16_t AdminServer::port() const noexcept {
    return state_->port;
}

void AdminServer::set_ready_failure_threshold(Duration threshold) noexcept {
    state_->threshold.store(threshold.count(), std::memory_order_relaxed);
}

}  // namespace xrayd
