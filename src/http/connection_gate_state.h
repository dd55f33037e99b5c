// ConnectionGate::State, private to src/http: what the gate's event loop (connection_gate.cpp)
// and its shedding and accounting policy (connection_gate_policy.cpp) share.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <xrayd/common/event_fd.h>
#include <xrayd/common/time.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/http/connection_gate.h>
#include <xrayd/log/logger.h>
#include <xrayd/stats/counters.h>

namespace xrayd {

struct ConnectionGate::State {
    // One connection the gate holds: waiting for its head, or draining after the gate's answer.
    struct Held {
        UniqueFd fd;
        std::string peer;
        sockaddr_storage addr{};
        socklen_t addr_len = 0;
        TimePoint deadline{};
        std::size_t peeked = 0;  // bytes seen so far (SO_RCVLOWAT is one more)
        bool draining = false;
    };

    struct PeerCount {
        unsigned held = 0;    // waiting for the head in the gate (not draining)
        unsigned served = 0;  // handed over, not yet closed by libmicrohttpd
    };

    // The source IP address as bytes (port left out): the key of the per-peer counts.
    [[nodiscard]] static std::string peer_key(const sockaddr* addr);
    // A peer_key() as text, for the log ("?" when it is none).
    [[nodiscard]] static std::string peer_text(std::string_view key);

    State(ConnectionGateOptions o, UniqueFd listen, UniqueFd ep, EventFd wake, Counters& c,
          Logger& log);

    // The event loop (connection_gate.cpp): accept, peek at each head until its deadline, then
    // answer it or hand it over to libmicrohttpd.
    void run() noexcept;
    void accept_all(TimePoint now) noexcept;
    void on_readable(Held* tag, std::uint32_t events, TimePoint now) noexcept;
    void answer(std::list<Held>::iterator it, unsigned status, std::string_view reason,
                TimePoint now) noexcept;
    void hand_over(std::list<Held>::iterator it) noexcept;
    void close_held(std::list<Held>::iterator it) noexcept;
    void expire(TimePoint now) noexcept;
    [[nodiscard]] int next_timeout_ms(TimePoint now) const noexcept;
    void log_limited(RateLimiter& limiter, std::string_view what, std::string_view peer,
                     std::string_view reason) noexcept;
    [[nodiscard]] bool find(const Held* held, std::list<Held>::iterator& out) noexcept;

    // The shedding and accounting policy (connection_gate_policy.cpp): the per-peer and total
    // counts, and which connection gives way when a limit is reached.
    void admit(UniqueFd fd, const sockaddr_storage& addr, socklen_t len, TimePoint now);
    bool make_room_locked(const std::string& peer, int& shed) noexcept;
    void release_held(const Held& held) noexcept;  // uncounts a waiting connection

    const ConnectionGateOptions options;
    UniqueFd listen_fd;
    UniqueFd epoll_fd;
    EventFd wake_fd;  // stop() signals it
    Counters& counters;
    Logger& logger;
    MHD_Daemon* daemon = nullptr;
    std::thread thread;
    std::atomic<bool> stopping{false};
    TimePoint accept_paused_until{};
    bool accept_paused = false;

    // Gate thread only: heads in accept order (so by deadline), then answered connections.
    std::list<Held> waiting;
    std::list<Held> draining;
    std::vector<char> peek_buffer;

    // Shared with libmicrohttpd's threads.
    std::mutex mutex;
    std::unordered_map<std::string, PeerCount> peers;
    unsigned total_held = 0;
    unsigned total_served = 0;

    RateLimiter bad_head_limiter;
    RateLimiter shed_limiter;
    RateLimiter timeout_limiter;
};

}  // namespace xrayd
