// ConnectionGate's connection limits: the per-peer and total counts of held and served
// connections, and which connection is shed or refused when a limit is reached.
#include <xrayd/http/connection_gate.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "connection_gate_state.h"

namespace xrayd {
namespace {

// A non-null socket_context: "this connection was counted as served".
char served_marker;

}  // namespace

std::string ConnectionGate::State::peer_key(const sockaddr* addr) {
    if (addr == nullptr) {
        return {};
    }
    if (addr->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
        return std::string(reinterpret_cast<const char*>(&in->sin_addr), sizeof(in->sin_addr));
    }
    if (addr->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
        const auto* bytes = reinterpret_cast<const char*>(&in6->sin6_addr);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            return std::string(bytes + 12, 4);  // ::ffff:a.b.c.d counts as a.b.c.d
        }
        return std::string(bytes, sizeof(in6->sin6_addr));
    }
    return {};
}

std::string ConnectionGate::State::peer_text(std::string_view key) {
    char text[INET6_ADDRSTRLEN] = "?";
    if (key.size() == 4) {
        (void)::inet_ntop(AF_INET, key.data(), text, sizeof(text));
    } else if (key.size() == 16) {
        (void)::inet_ntop(AF_INET6, key.data(), text, sizeof(text));
    }
    return text;
}

void ConnectionGate::on_mhd_connection(void* cls, MHD_Connection* connection, void** socket_context,
                                       MHD_ConnectionNotificationCode code) noexcept {
    State& s = *static_cast<ConnectionGate*>(cls)->state_;
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    try {
        const std::string key = State::peer_key(info != nullptr ? info->client_addr : nullptr);
        std::lock_guard lock(s.mutex);
        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
            ++s.peers[key].served;
            ++s.total_served;
            *socket_context = &served_marker;
        } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context == &served_marker) {
            *socket_context = nullptr;
            --s.total_served;
            auto it = s.peers.find(key);
            if (it != s.peers.end()) {
                --it->second.served;
                if (it->second.served == 0 && it->second.held == 0) {
                    s.peers.erase(it);
                }
            }
        }
    } catch (...) {
        // Out of memory: this connection is not counted (the limits are then a little loose).
    }
}

bool ConnectionGate::State::make_room_locked(const std::string& peer, int& shed) noexcept {
    PeerCount& count = peers[peer];
    if (count.held + count.served >= options.max_per_peer) {
        auto it = std::find_if(waiting.begin(), waiting.end(),
                               [&](const Held& h) { return h.peer == peer; });
        if (it == waiting.end()) {
            return false;
        }
        --count.held;
        --total_held;
        (void)::epoll_ctl(epoll_fd.get(), EPOLL_CTL_DEL, it->fd.get(), nullptr);
        waiting.erase(it);
        counters.add(Counter::listener_connections_shed);
        ++shed;
    }
    if (total_held + total_served >= options.max_connections) {
        if (waiting.empty()) {
            return false;
        }
        auto it = waiting.begin();
        auto p = peers.find(it->peer);
        if (p != peers.end()) {
            --p->second.held;
            if (p->second.held == 0 && p->second.served == 0) {
                peers.erase(p);
            }
        }
        --total_held;
        (void)::epoll_ctl(epoll_fd.get(), EPOLL_CTL_DEL, it->fd.get(), nullptr);
        waiting.erase(it);
        counters.add(Counter::listener_connections_shed);
        ++shed;
    }
    return true;
}

void ConnectionGate::State::admit(UniqueFd fd, const sockaddr_storage& addr, socklen_t len,
                                  TimePoint now) {
    std::string peer = peer_key(reinterpret_cast<const sockaddr*>(&addr));
    int shed = 0;
    {
        std::lock_guard lock(mutex);
        if (!make_room_locked(peer, shed)) {
            auto p = peers.find(peer);
            if (p != peers.end() && p->second.held == 0 && p->second.served == 0) {
                peers.erase(p);
            }
            counters.add(Counter::listener_connections_shed);
            log_limited(shed_limiter, "connection refused: every slot is being served",
                        peer_text(peer), "");
            static constexpr std::string_view busy =
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n"
                "Retry-After: 1\r\n\r\n";
            (void)::send(fd.get(), busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            return;
        }
        ++peers[peer].held;
        ++total_held;
    }
    if (shed > 0) {
        log_limited(shed_limiter, "closed the oldest connection still waiting for its head", "",
                    "connection limit reached");
    }
    Held& held = waiting.emplace_back();
    held.fd = std::move(fd);
    held.peer = std::move(peer);
    held.addr = addr;
    held.addr_len = len;
    held.deadline = now + options.head_timeout;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = &held;
    if (::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, held.fd.get(), &ev) != 0) {
        close_held(std::prev(waiting.end()));
    }
}

void ConnectionGate::State::release_held(const Held& held) noexcept {
    std::lock_guard lock(mutex);
    auto p = peers.find(held.peer);
    if (p != peers.end()) {
        --p->second.held;
        if (p->second.held == 0 && p->second.served == 0) {
            peers.erase(p);
        }
    }
    --total_held;
}

}  // namespace xrayd
