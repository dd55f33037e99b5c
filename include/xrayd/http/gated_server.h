// GatedServer: a libmicrohttpd daemon behind a ConnectionGate, started and stopped in the one
// safe order. The listeners of the daemon (sampling proxy, admin server, OTLP receiver) are this
// plus their request handlers.
#pragma once

#include <microhttpd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <xrayd/common/unique_fd.h>
#include <xrayd/http/connection_gate.h>
#include <xrayd/log/logger.h>
#include <xrayd/stats/counters.h>

namespace xrayd {

struct GatedServerOptions {
    // The gate's limits; gate.name ("proxy", "admin", "otlp") also names the server in its log
    // lines and errors, and gate.max_connections is libmicrohttpd's connection limit too.
    ConnectionGateOptions gate;
    std::string address;  // as configured, for the error message only
    // true: a thread per connection (handlers that wait, such as a call upstream); false:
    // `polling_threads` internal polling threads share every connection (libmicrohttpd's
    // thread pool when more than one): handlers that compute without waiting. Bodies arrive
    // without holding a thread either way.
    bool thread_per_connection = false;
    unsigned polling_threads = 1;
    MHD_AccessHandlerCallback handler = nullptr;
    void* handler_cls = nullptr;
    std::chrono::seconds idle_timeout{30};  // libmicrohttpd's timeout, reset by every byte
    std::size_t memory_limit = 0;           // per connection; 0: libmicrohttpd's default
    // More libmicrohttpd options, without MHD_OPTION_END. A callback with its closure: the
    // function pointer cast to intptr_t in `value`, the closure in `ptr_value`
    // (MHD_OPTION_ARRAY's convention).
    std::vector<MHD_OptionItem> extra;
};

// The part of a GatedServerOptions that every listener's options give the same way: its name
// and address, the connection limits (max_per_peer never above max_connections), the head
// deadline and libmicrohttpd's idle timeout. `ListenerOptions` is SamplingProxyOptions,
// AdminOptions or OtlpReceiverOptions. The handler, the threads and the head budget are the
// caller's.
template <typename ListenerOptions>
[[nodiscard]] GatedServerOptions gated_server_options(std::string name,
                                                      const ListenerOptions& options) {
    GatedServerOptions server;
    server.gate.name = std::move(name);
    server.gate.max_connections = options.max_connections;
    server.gate.max_per_peer = std::min(options.max_connections, options.max_per_peer);
    server.gate.head_timeout = options.head_timeout;
    server.address = options.address;
    server.idle_timeout = options.idle_timeout;
    return server;
}

// The header budget of a listener that takes request bodies (proxy, OTLP receiver): half of it
// for the head the gate peeks at, all of it as libmicrohttpd's per-connection memory.
inline void set_header_budget(GatedServerOptions& server, std::size_t max_header_bytes) {
    server.gate.max_head_bytes = std::max<std::size_t>(max_header_bytes / 2, 1024);
    server.memory_limit = max_header_bytes;
}

// Error-log messages of libmicrohttpd go to `logger` at Debug ("<name> http server: ...").
// Threads: start() and stop() from one control thread. Lifetime: `counters`, `logger` and the
// handlers' closures outlive the server.
class GatedServer {
public:
    // Serves on `listen_fd` (listening, non-blocking: listen_tcp's). Throws StartupError
    // ("<name> http server failed to listen: libmicrohttpd could not start on <address>", or the
    // gate's) when it cannot; nothing is left running then.
    [[nodiscard]] static std::unique_ptr<GatedServer> start(GatedServerOptions options,
                                                            UniqueFd listen_fd, Counters& counters,
                                                            Logger& logger);
    ~GatedServer();  // stop()
    GatedServer(const GatedServer&) = delete;
    GatedServer& operator=(const GatedServer&) = delete;

    // The gate stops accepting and closes the heads it holds; then libmicrohttpd closes every
    // connection and joins its threads (a handler running finishes first). Idempotent.
    void stop() noexcept;

    // The listening socket (getsockname: the bound port and address).
    [[nodiscard]] int listen_fd() const noexcept;

private:
    GatedServer(std::string name, Logger& logger) noexcept;
    static void on_log(void* cls, const char* format, va_list args) noexcept;

    std::string name_;
    Logger& logger_;
    std::unique_ptr<ConnectionGate> gate_;  // owns the listening socket
    MHD_Daemon* daemon_ = nullptr;
};

// Adds "Connection: close" to `response`, queues it and releases the caller's reference (also
// on failure): every answer of a gated server closes its connection, so that every request head
// passes the gate. MHD_NO when the header or the queueing fails (libmicrohttpd then drops the
// connection).
[[nodiscard]] MHD_Result queue_closing_response(MHD_Connection* connection, unsigned status,
                                                MHD_Response* response) noexcept;

}  // namespace xrayd
