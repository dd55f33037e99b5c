// ConnectionGate: the front door of a libmicrohttpd listener (the sampling proxy, the admin
// server). It accepts, keeps the connection limits, gives each request head a total deadline,
// checks the head strictly, and hands only connections with a complete, valid head to
// libmicrohttpd.
#pragma once

#include <microhttpd.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <xrayd/common/unique_fd.h>
#include <xrayd/http/request_head.h>
#include <xrayd/log/logger.h>
#include <xrayd/stats/counters.h>

namespace xrayd {

// Internal constants, not flags: the limits below protect a daemon that serves a handful of
// SDK clients, and none of them is worth a setting until a user needs it.
// The request head of one connection must be whole this long after accept; trickled bytes do
// not extend it (a slowloris client is cut at this point, answered 408).
inline constexpr std::chrono::milliseconds default_head_timeout{10000};

struct ConnectionGateOptions {
    std::string name;  // "proxy" or "admin": the log lines say which listener
    // Connections open at once, waiting for their head or served by libmicrohttpd.
    unsigned max_connections = 256;
    // Of those, from one source IP address.
    unsigned max_per_peer = 64;
    std::chrono::milliseconds head_timeout = default_head_timeout;
    std::size_t max_head_bytes = 16 * 1024;  // a longer head: 431
    RequestHeadRules rules;
};

// How a gate works, and why (see also the commit that brought it):
// - libmicrohttpd 0.9.75 reads headers leniently (a name with a space before the colon, an
//   obsolete fold, conflicting lengths) and its timeout is reset by every byte. So the gate
//   owns accept() and reads the head itself, with MSG_PEEK: the bytes stay in the socket, and
//   once the whole head has arrived and passed check_request_head() the socket goes to
//   libmicrohttpd (MHD_add_connection), which reads exactly the bytes that were checked. A
//   rejected head gets one answer (400, 408 or 431) from the gate and libmicrohttpd never sees
//   the connection. SO_RCVLOWAT (peeked + 1) makes epoll wait for new bytes, not spin.
// - Servers using a gate answer every request with "Connection: close", so every head on
//   every connection passes the gate (a keep-alive connection would let the second head past).
// - Limits: when a new connection would pass max_per_peer or max_connections, the oldest
//   connection still waiting for its head (of that peer, or of anyone) is closed to make room:
//   idle and trickling clients cannot lock out a client that sends its request at once. Only
//   when every connection is being served is the new one refused (503, counted).
//
// Threads: create(), start() and stop() from one control thread; the gate runs one thread of
// its own; on_mhd_connection() is called by libmicrohttpd's threads.
// Lifetime: `counters` and `logger` outlive the gate. IMPORTANT: order of use is create(),
// MHD_start_daemon(... MHD_OPTION_NOTIFY_CONNECTION, &ConnectionGate::on_mhd_connection,
// gate ...), start(daemon); then stop(), MHD_stop_daemon(), and only then destroy the gate.
class ConnectionGate {
public:
    // Takes the listening socket (non-blocking). Throws StartupError when epoll or an eventfd
    // cannot be created.
    [[nodiscard]] static std::unique_ptr<ConnectionGate> create(ConnectionGateOptions options,
                                                                UniqueFd listen_fd,
                                                                Counters& counters, Logger& logger);
    ~ConnectionGate();  // stop()
    ConnectionGate(const ConnectionGate&) = delete;
    ConnectionGate& operator=(const ConnectionGate&) = delete;

    // Starts accepting and handing connections to `daemon` (started with MHD_USE_ITC and
    // MHD_USE_NO_LISTEN_SOCKET). When the thread cannot start, stops `daemon` (so the caller
    // has nothing to undo but forgetting it) and throws StartupError.
    void start(MHD_Daemon* daemon);

    // Stops accepting, closes the listening socket and every connection still waiting for its
    // head, and joins the thread. Connections already handed over stay libmicrohttpd's.
    // Idempotent; noexcept.
    void stop() noexcept;

    // The MHD_OPTION_NOTIFY_CONNECTION callback (`cls` is the gate): counts the connections
    // libmicrohttpd serves against the limits.
    static void on_mhd_connection(void* cls, MHD_Connection* connection, void** socket_context,
                                  MHD_ConnectionNotificationCode code) noexcept;

    // The listening socket, for getsockname() (the bound port).
    [[nodiscard]] int listen_fd() const noexcept;

private:
    struct State;  // src/http/connection_gate_state.h
    explicit ConnectionGate(std::unique_ptr<State> state) noexcept;
    std::unique_ptr<State> state_;
};

}  // namespace xrayd
