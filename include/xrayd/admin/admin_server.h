// AdminServer: the loopback HTTP listener for health checks and Prometheus (/healthz, /readyz,
// /metrics), on libmicrohttpd like the sampling proxy.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <xrayd/admin/health_state.h>
#include <xrayd/admin/metrics.h>
#include <xrayd/common/time.h>
#include <xrayd/http/connection_gate.h>
#include <xrayd/log/logger.h>
#include <xrayd/stats/counters.h>
#include <xrayd/stats/latency_histogram.h>

namespace xrayd {

struct AdminOptions {
    std::string address = "127.0.0.1:2100";  // host:port (port 0: any free port, see port())
    // /readyz fails once uploads have been failing for longer than this.
    Duration ready_failure_threshold = std::chrono::seconds(60);
    MetricLabels build_info;  // labels of xrayd_build_info
    // Connections open at once, and from one source address (see ConnectionGate: at the limit
    // the oldest connection still waiting for its head makes room).
    unsigned max_connections = 32;
    unsigned max_per_peer = 16;
    std::chrono::milliseconds head_timeout = default_head_timeout;  // accept to end of head
    std::chrono::seconds idle_timeout{10};  // a silent client is cut after this
    // Called on the listener thread before /readyz and /metrics are answered, so the daemon can
    // store values it samples (queue depth, memory in use) into the HealthState. May be empty.
    // IMPORTANT: runs concurrently with every other thread: read only thread-safe state.
    std::function<void(HealthState&)> refresh;
};

// GET or HEAD (others: 405; unknown paths: 404; all with a text/plain body):
//   /healthz  200 "ok": the process serves requests (liveness only).
//   /readyz   200 "ready", or 503 "not ready: <reason>" (HealthState::readiness()).
//   /metrics  200, Prometheus text format 0.0.4 (format_metrics()).
// One internal libmicrohttpd thread serves every connection (answers are small and in memory),
// behind a ConnectionGate: a malformed head or one announcing a body gets 400, a head not
// whole within head_timeout 408, and idle or trickling clients cannot hold /healthz up. Every
// answer closes its connection. The gate's refusals are counted in `counters`.
// Lifetime: the references outlive the server. start()/stop() from one control thread.
class AdminServer {
public:
    AdminServer(AdminOptions options, Counters& counters, HealthState& health,
                const LatencyHistogram& latency, Logger& logger);
    ~AdminServer();  // stop()
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    // Binds and starts serving. Throws StartupError ("admin http server failed to listen:
    // listen tcp 127.0.0.1:2100: bind: address already in use") when the address cannot be
    // used. Start-up only.
    void start();
    // Stops accepting, closes every connection and joins the thread. Idempotent.
    void stop() noexcept;

    // The bound port (0 before start()).
    [[nodiscard]] std::uint16_t port() const noexcept;
    // SIGHUP reload. Any thread.
    void set_ready_failure_threshold(Duration threshold) noexcept;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace xrayd
