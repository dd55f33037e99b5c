// ConnectionGate's event loop: accept, the request-head deadline and the strict head check in
// front of a libmicrohttpd listener (the connection limits: connection_gate_policy.cpp).
#include <xrayd/http/connection_gate.h>

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/common/thread_name.h>

#include "connection_gate_state.h"

namespace xrayd {
namespace {

// A rejected connection gets this long to read its answer (the gate drains what it sends
// meanwhile, so closing does not reset the answer away), then it is closed.
constexpr std::chrono::milliseconds drain_time{1000};
constexpr int max_events = 64;
constexpr std::chrono::milliseconds accept_pause{100};  // after EMFILE with nothing to shed
constexpr Duration log_interval = std::chrono::seconds(10);

std::string_view status_text(unsigned status) noexcept {
    switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    default: return "Service Unavailable";
    }
}

}  // namespace

ConnectionGate::State::State(ConnectionGateOptions o, UniqueFd listen, UniqueFd ep, EventFd wake,
                             Counters& c, Logger& log)
    : options(std::move(o)),
      listen_fd(std::move(listen)),
      epoll_fd(std::move(ep)),
      wake_fd(std::move(wake)),
      counters(c),
      logger(log),
      peek_buffer(options.max_head_bytes),
      bad_head_limiter(log_interval),
      shed_limiter(log_interval),
      timeout_limiter(log_interval) {}

ConnectionGate::ConnectionGate(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}

ConnectionGate::~ConnectionGate() {
    stop();
}

std::unique_ptr<ConnectionGate> ConnectionGate::create(ConnectionGateOptions options,
                                                       UniqueFd listen_fd, Counters& counters,
                                                       Logger& logger) {
    if (options.max_connections == 0 || options.max_per_peer == 0 || options.max_head_bytes < 64) {
        throw StartupError(
            fmt::format("{} listener: connection limits must be at least 1", options.name));
    }
    UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
    if (!ep.valid()) {
        throw StartupError(
            fmt::format("{} listener: epoll_create1: {}", options.name, std::strerror(errno)));
    }
    EventFd wake(fmt::format("{} listener", options.name));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the listening socket
    if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, listen_fd.get(), &ev) != 0) {
        throw StartupError(
            fmt::format("{} listener: epoll_ctl: {}", options.name, std::strerror(errno)));
    }
    auto state = std::make_unique<State>(std::move(options), std::move(listen_fd), std::move(ep),
                                         std::move(wake), counters, logger);
    ev.events = EPOLLIN;
    ev.data.ptr = &state->wake_fd;  // stop()
    if (::epoll_ctl(state->epoll_fd.get(), EPOLL_CTL_ADD, state->wake_fd.fd(), &ev) != 0) {
        throw StartupError(
            fmt::format("{} listener: epoll_ctl: {}", state->options.name, std::strerror(errno)));
    }
    return std::unique_ptr<ConnectionGate>(new ConnectionGate(std::move(state)));
}

void ConnectionGate::start(MHD_Daemon* daemon) {
    State& s = *state_;
    if (s.thread.joinable()) {
        return;
    }
    s.daemon = daemon;
    s.stopping.store(false);
    try {
        s.thread = std::thread([&s] {
            name_this_thread(s.options.name == "admin" ? "xrayd-admin-gate" : "xrayd-proxy-gate");
            s.run();
        });
    } catch (const std::system_error& e) {
        MHD_stop_daemon(daemon);
        s.daemon = nullptr;
        throw StartupError(
            fmt::format("{} listener: cannot start a thread: {}", s.options.name, e.what()));
    }
}

void ConnectionGate::stop() noexcept {
    if (!state_) {
        return;
    }
    State& s = *state_;
    if (s.thread.joinable()) {
        s.stopping.store(true);
        if (const int error = s.wake_fd.signal(); error != 0) {
            // The thread sees `stopping` at its next wake-up (a connection or a timeout).
            s.logger.error("{} listener: signalling its stop: {}", s.options.name,
                           std::strerror(error));
        }
        s.thread.join();
    }
    s.waiting.clear();
    s.draining.clear();
    s.listen_fd.reset();
    std::lock_guard lock(s.mutex);
    for (auto it = s.peers.begin(); it != s.peers.end();) {
        it->second.held = 0;
        it = it->second.served == 0 ? s.peers.erase(it) : std::next(it);
    }
    s.total_held = 0;
}

int ConnectionGate::listen_fd() const noexcept {
    return state_->listen_fd.get();
}

void ConnectionGate::State::run() noexcept {
    std::array<epoll_event, max_events> events{};
    while (!stopping.load(std::memory_order_relaxed)) {
        const int n =
            ::epoll_wait(epoll_fd.get(), events.data(), max_events, next_timeout_ms(Clock::now()));
        if (n < 0) {
            if (errno != EINTR) {
                logger.error("{} listener: epoll_wait: {}", options.name, std::strerror(errno));
                std::this_thread::sleep_for(accept_pause);
            }
            continue;
        }
        const TimePoint now = Clock::now();
        for (int i = 0; i < n; ++i) {
            void* tag = events[static_cast<std::size_t>(i)].data.ptr;
            if (tag == &wake_fd) {
                return;
            }
            if (tag == nullptr) {
                accept_all(now);
            } else {
                on_readable(static_cast<Held*>(tag), events[static_cast<std::size_t>(i)].events,
                            now);
            }
        }
        expire(Clock::now());
    }
}

int ConnectionGate::State::next_timeout_ms(TimePoint now) const noexcept {
    TimePoint next = TimePoint::max();
    if (!waiting.empty()) {
        next = waiting.front().deadline;
    }
    if (!draining.empty()) {
        next = std::min(next, draining.front().deadline);
    }
    if (accept_paused) {
        next = std::min(next, accept_paused_until);
    }
    if (next == TimePoint::max()) {
        return -1;
    }
    if (next <= now) {
        return 0;
    }
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
    return static_cast<int>(std::min<decltype(ms)>(ms, 60'000));
}

void ConnectionGate::State::accept_all(TimePoint now) noexcept {
    for (int i = 0; i < max_events; ++i) {
        sockaddr_storage addr{};
        socklen_t len = sizeof(addr);
        UniqueFd fd(::accept4(listen_fd.get(), reinterpret_cast<sockaddr*>(&addr), &len,
                              SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd.valid()) {
            const int error = errno;
            if (error == EAGAIN || error == EWOULDBLOCK) {
                return;
            }
            if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM) {
                // Out of descriptors: shed the oldest waiting head, or pause accepting a moment
                // (the listening socket would otherwise wake us in a loop).
                if (!waiting.empty()) {
                    counters.add(Counter::listener_connections_shed);
                    close_held(waiting.begin());
                    continue;
                }
                log_limited(shed_limiter, "accept failed, pausing", "", std::strerror(error));
                epoll_event ev{};
                (void)::epoll_ctl(epoll_fd.get(), EPOLL_CTL_MOD, listen_fd.get(), &ev);
                accept_paused = true;
                accept_paused_until = now + accept_pause;
                return;
            }
            continue;  // ECONNABORTED, EINTR, EPROTO...: that connection is gone; go on
        }
        try {
            admit(std::move(fd), addr, len, now);
        } catch (...) {
            // Out of memory: the connection (owned by fd, or by the list) is closed.
        }
    }
}

bool ConnectionGate::State::find(const Held* held, std::list<Held>::iterator& out) noexcept {
    // Events name an entry by address, and it may have been shed earlier in the same round:
    // compare addresses only (never read through `held`). At most max_connections entries.
    for (std::list<Held>* list : {&waiting, &draining}) {
        out = std::find_if(list->begin(), list->end(), [&](const Held& h) { return &h == held; });
        if (out != list->end()) {
            return true;
        }
    }
    return false;
}

void ConnectionGate::State::on_readable(Held* tag, std::uint32_t events, TimePoint now) noexcept {
    std::list<Held>::iterator it;
    if (!find(tag, it)) {
        return;  // shed earlier in this round
    }
    Held& held = *it;
    if (held.draining) {
        // Read and drop what the client still sends; close at its end.
        char sink[4096];
        const ssize_t n = ::recv(held.fd.get(), sink, sizeof(sink), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            close_held(it);
        }
        return;
    }
    const ssize_t n =
        ::recv(held.fd.get(), peek_buffer.data(), peek_buffer.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            close_held(it);
        }
        return;
    }
    if (n == 0) {
        close_held(it);  // closed before sending a whole head
        return;
    }
    const std::string_view bytes(peek_buffer.data(), static_cast<std::size_t>(n));
    const std::size_t from = held.peeked > 3 ? held.peeked - 3 : 0;
    const std::size_t end = bytes.substr(from).find("\r\n\r\n");
    if (end != std::string_view::npos) {
        const HeadCheck check = check_request_head(bytes.substr(0, from + end + 4), options.rules);
        if (check.ok()) {
            hand_over(it);
        } else {
            counters.add(Counter::listener_bad_request_head);
            log_limited(bad_head_limiter, "malformed request head refused", peer_text(held.peer),
                        check.reason);
            answer(it, check.status, check.reason, now);
        }
        return;
    }
    if (static_cast<std::size_t>(n) >= options.max_head_bytes) {
        counters.add(Counter::listener_bad_request_head);
        log_limited(bad_head_limiter, "request head too large", peer_text(held.peer), "");
        answer(it, 431, "the request head is over the size limit", now);
        return;
    }
    if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
        close_held(it);  // the client stopped sending before the head was whole
        return;
    }
    if (static_cast<std::size_t>(n) > held.peeked) {
        held.peeked = static_cast<std::size_t>(n);
        // Wake only when more than what was seen has arrived.
        const int low = static_cast<int>(held.peeked + 1);
        if (::setsockopt(held.fd.get(), SOL_SOCKET, SO_RCVLOWAT, &low, sizeof(low)) != 0) {
            close_held(it);
        }
    }
}

void ConnectionGate::State::answer(std::list<Held>::iterator it, unsigned status,
                                   std::string_view reason, TimePoint now) noexcept {
    release_held(*it);
    try {
        const std::string body = fmt::format("{} listener: {}\n", options.name, reason);
        const std::string response = fmt::format(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n"
            "Connection: close\r\n\r\n{}",
            status, status_text(status), body.size(), body);
        // A fresh socket's send buffer holds this small answer whole; a short write is dropped.
        (void)::send(it->fd.get(), response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    } catch (...) {
        // Out of memory: the connection is closed without an answer.
    }
    (void)::shutdown(it->fd.get(), SHUT_WR);
    const int one = 1;
    (void)::setsockopt(it->fd.get(), SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
    it->draining = true;
    it->deadline = now + drain_time;
    draining.splice(draining.end(), waiting, it);
    if (draining.size() > options.max_connections) {
        close_held(draining.begin());  // a flood of bad heads: drain fewer, not more fds
    }
}

void ConnectionGate::State::hand_over(std::list<Held>::iterator it) noexcept {
    (void)::epoll_ctl(epoll_fd.get(), EPOLL_CTL_DEL, it->fd.get(), nullptr);
    const int one = 1;
    if (::setsockopt(it->fd.get(), SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one)) != 0) {
        close_held(it);
        return;
    }
    release_held(*it);  // libmicrohttpd counts it again, as served (on_mhd_connection)
    const sockaddr_storage addr = it->addr;
    const socklen_t len = it->addr_len;
    const int fd = it->fd.release();
    waiting.erase(it);
    // libmicrohttpd owns the socket from here, and closes it also when this fails.
    if (MHD_add_connection(daemon, fd, reinterpret_cast<const sockaddr*>(&addr), len) != MHD_YES) {
        counters.add(Counter::listener_connections_shed);
        log_limited(shed_limiter, "libmicrohttpd refused a connection",
                    peer_text(peer_key(reinterpret_cast<const sockaddr*>(&addr))),
                    std::strerror(errno));
    }
}

void ConnectionGate::State::close_held(std::list<Held>::iterator it) noexcept {
    (void)::epoll_ctl(epoll_fd.get(), EPOLL_CTL_DEL, it->fd.get(), nullptr);
    if (it->draining) {
        draining.erase(it);
        return;
    }
    release_held(*it);
    waiting.erase(it);
}

void ConnectionGate::State::expire(TimePoint now) noexcept {
    while (!waiting.empty() && waiting.front().deadline <= now) {
        counters.add(Counter::listener_head_timeout);
        log_limited(timeout_limiter, "request head not received in time",
                    peer_text(waiting.front().peer), "");
        answer(waiting.begin(), 408, "the request head did not arrive in time", now);
    }
    while (!draining.empty() && draining.front().deadline <= now) {
        close_held(draining.begin());
    }
    if (accept_paused && accept_paused_until <= now) {
        accept_paused = false;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = nullptr;
        (void)::epoll_ctl(epoll_fd.get(), EPOLL_CTL_MOD, listen_fd.get(), &ev);
    }
}

void ConnectionGate::State::log_limited(RateLimiter& limiter, std::string_view what,
                                        std::string_view peer, std::string_view reason) noexcept {
    std::uint64_t suppressed = 0;
    if (!limiter.allow(Clock::now(), &suppressed)) {
        return;
    }
    logger.warn("{} listener: {}{}{}{}{} ({} similar suppressed)", options.name, what,
                peer.empty() ? "" : " from ", peer, reason.empty() ? "" : ": ", reason, suppressed);
}

}  // namespace xrayd
