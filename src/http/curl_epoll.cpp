// CurlEpoll: epoll + curl_multi_socket_action for one libcurl multi.
#include <xrayd/http/curl_epoll.h>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>

namespace xrayd {
namespace {

// Ready descriptors handled per wait: more than the sockets a pool keeps (one a slot, plus the
// eventfd); any left over stay ready (level-triggered) for the next wait.
constexpr int max_events = 64;

std::uint32_t epoll_events_for(int what) noexcept {
    std::uint32_t events = 0;
    if ((what & CURL_POLL_IN) != 0) {
        events |= EPOLLIN;
    }
    if ((what & CURL_POLL_OUT) != 0) {
        events |= EPOLLOUT;
    }
    return events;
}

int curl_select_for(std::uint32_t events) noexcept {
    int select = 0;
    if ((events & EPOLLIN) != 0) {
        select |= CURL_CSELECT_IN;
    }
    if ((events & EPOLLOUT) != 0) {
        select |= CURL_CSELECT_OUT;
    }
    if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
        select |= CURL_CSELECT_ERR;
    }
    return select;
}

}  // namespace

CurlEpoll::CurlEpoll(std::string_view what, Logger& logger, RateLimiter& internal_errors)
    : what_(what),
      logger_(logger),
      internal_errors_(internal_errors),
      wake_(what),
      multi_(CurlMulti::create()) {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_.valid()) {
        throw StartupError(fmt::format("{}: epoll_create1: {}", what, std::strerror(errno)));
    }
    quiet_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!quiet_.valid()) {
        throw StartupError(fmt::format("{}: epoll_create1: {}", what, std::strerror(errno)));
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = wake_.fd();
    for (const int set : {epoll_.get(), quiet_.get()}) {
        if (::epoll_ctl(set, EPOLL_CTL_ADD, wake_.fd(), &event) != 0) {
            throw StartupError(fmt::format("{}: epoll_ctl: {}", what, std::strerror(errno)));
        }
    }
    for (const CURLMcode rc :
         {multi_.set(CURLMOPT_SOCKETFUNCTION, static_cast<curl_socket_callback>(&on_socket)),
          multi_.set(CURLMOPT_SOCKETDATA, static_cast<void*>(this)),
          multi_.set(CURLMOPT_TIMERFUNCTION, static_cast<curl_multi_timer_callback>(&on_timer)),
          multi_.set(CURLMOPT_TIMERDATA, static_cast<void*>(this))}) {
        if (rc != CURLM_OK) {
            throw StartupError(
                fmt::format("{}: libcurl rejected the socket and timer callbacks: {}", what,
                            curl_multi_strerror(rc)));
        }
    }
}

bool CurlEpoll::run_timers() noexcept {
    if (!timer_armed_ || Clock::now() < deadline_) {
        return true;
    }
    const std::uint64_t calls = timer_calls_;
    int running = 0;
    const CURLMcode rc = curl_multi_socket_action(multi_.get(), CURL_SOCKET_TIMEOUT, 0, &running);
    if (timer_calls_ == calls && timer_armed_) {
        // curl did not move its deadline: it tells only changes, so the deadline it gave still
        // stands (our clock ran a little ahead of its rounding). Again in a millisecond, not in
        // a busy loop.
        deadline_ = std::max(deadline_, Clock::now() + std::chrono::milliseconds(1));
    }
    if (rc != CURLM_OK) {
        log_failure("curl_multi_socket_action (timer)", curl_multi_strerror(rc));
        return false;
    }
    return true;
}

void CurlEpoll::wait(int timeout_ms, bool answers_may_wait) noexcept {
    std::array<epoll_event, max_events> events{};
    const int limit = wait_limit(timeout_ms, Clock::now());
    int ready = 0;
    if (answers_may_wait && limit != 0 && nothing_to_send()) {
        // Sleep on the eventfd alone, then take whatever the sockets have without waiting:
        // the answers that came meanwhile ride on this one wake-up.
        epoll_event woken{};
        if (::epoll_wait(quiet_.get(), &woken, 1, limit) < 0 && errno != EINTR) {
            log_failure("epoll_wait (eventfd)", std::strerror(errno));
        }
        ready = ::epoll_wait(epoll_.get(), events.data(), max_events, 0);
    } else {
        ready = ::epoll_wait(epoll_.get(), events.data(), max_events, limit);
    }
    if (ready < 0 && errno != EINTR) {  // EINTR: a signal; the caller's loop comes back
        log_failure("epoll_wait", std::strerror(errno));
    }
    for (int i = 0; i < ready; ++i) {
        const epoll_event& event = events[static_cast<std::size_t>(i)];
        if (event.data.fd == wake_.fd()) {
            drain_wakeups();
        } else {
            act(event.data.fd, event.events);
        }
    }
    (void)run_timers();  // logged
}

void CurlEpoll::wakeup() noexcept {
    if (const int error = wake_.signal(); error != 0) {
        log_failure("waking the transfers (eventfd write)", std::strerror(error));
    }
}

void CurlEpoll::log_failure(std::string_view what, std::string_view detail) noexcept {
    std::uint64_t suppressed = 0;
    if (internal_errors_.allow(Clock::now(), &suppressed)) {
        logger_.error("{} failed ({}): {}", what, what_, detail);
    }
}

int CurlEpoll::on_socket(CURL* /*easy*/, curl_socket_t socket, int what, void* self,
                         void* /*socket_state*/) noexcept {
    auto& loop = *static_cast<CurlEpoll*>(self);
    if (what == CURL_POLL_REMOVE) {
        loop.unwatch(socket);
    } else {
        loop.watch(socket, epoll_events_for(what));
    }
    // 0 even when epoll refused the socket (logged): -1 would abort every transfer of the
    // multi, while the one transfer on that socket still ends at its own timeout.
    return 0;
}

int CurlEpoll::on_timer(CURLM* /*multi*/, long timeout_ms, void* self) noexcept {
    auto& loop = *static_cast<CurlEpoll*>(self);
    ++loop.timer_calls_;
    loop.timer_armed_ = timeout_ms >= 0;  // -1: no deadline
    if (loop.timer_armed_) {
        loop.deadline_ = Clock::now() + std::chrono::milliseconds(timeout_ms);
    }
    return 0;
}

curl_socket_t CurlEpoll::on_open(void* self, curlsocktype /*purpose*/,
                                 curl_sockaddr* address) noexcept {
    auto& loop = *static_cast<CurlEpoll*>(self);
    const curl_socket_t socket =
        ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    if (socket == CURL_SOCKET_BAD) {
        return socket;  // curl reports the connect failure with this errno
    }
    if (Watch* watch = loop.watch_of(socket)) {
        *watch = Watch{.ours = true};
    }
    return socket;
}

int CurlEpoll::on_close(void* self, curl_socket_t socket) noexcept {
    auto& loop = *static_cast<CurlEpoll*>(self);
    if (Watch* watch = loop.watch_of(socket)) {
        // Out of the set first: a copy of the descriptor in a forked child would keep it there.
        if (watch->in_set && ::epoll_ctl(loop.epoll_.get(), EPOLL_CTL_DEL, socket, nullptr) != 0 &&
            errno != ENOENT) {
            loop.log_failure("epoll_ctl (removing a closing socket)", std::strerror(errno));
        }
        *watch = Watch{};
    }
    return ::close(socket) == 0 ? 0 : 1;
}

CURLcode CurlEpoll::attach(CurlEasy& easy) noexcept {
    CurlFirstError set;
    set(easy.set(CURLOPT_OPENSOCKETFUNCTION, static_cast<curl_opensocket_callback>(&on_open)));
    set(easy.set(CURLOPT_OPENSOCKETDATA, static_cast<void*>(this)));
    set(easy.set(CURLOPT_CLOSESOCKETFUNCTION, static_cast<curl_closesocket_callback>(&on_close)));
    set(easy.set(CURLOPT_CLOSESOCKETDATA, static_cast<void*>(this)));
    return set.code();
}

CurlEpoll::Watch* CurlEpoll::watch_of(curl_socket_t socket) noexcept {
    if (socket < 0) {
        return nullptr;
    }
    const auto index = static_cast<std::size_t>(socket);
    if (index >= watches_.size()) {
        try {
            watches_.resize(std::max(index + 1, 2 * watches_.size()));
        } catch (...) {
            return nullptr;
        }
    }
    return &watches_[index];
}

void CurlEpoll::watch(curl_socket_t socket, std::uint32_t events) noexcept {
    Watch* watch = watch_of(socket);
    if (watch == nullptr) {  // no bookkeeping: ADD, or MOD when it is in the set already
        (void)epoll_ctl_or_log(EPOLL_CTL_ADD, socket, events);
        return;
    }
    watch->parked = false;
    if (watch->in_set && watch->events == events) {
        return;  // a kept-alive connection's next request: nothing to tell the kernel
    }
    if (!epoll_ctl_or_log(watch->in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, socket, events)) {
        watch->in_set = false;
        return;
    }
    watch->in_set = true;
    watch->events = events;
}

void CurlEpoll::unwatch(curl_socket_t socket) noexcept {
    Watch* watch = watch_of(socket);
    if (watch != nullptr && watch->ours && watch->in_set) {
        // A connection curl keeps for the next request (or is about to close, which on_close
        // hears): it stays in the set, so that request needs no epoll_ctl.
        watch->parked = true;
        return;
    }
    // ENOENT/EBADF: not in the set, or closed already, which took it out.
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, socket, nullptr) != 0 && errno != ENOENT &&
        errno != EBADF) {
        log_failure("epoll_ctl (removing a transfer's socket)", std::strerror(errno));
    }
    if (watch != nullptr) {
        watch->in_set = false;
    }
}

bool CurlEpoll::epoll_ctl_or_log(int op, curl_socket_t socket, std::uint32_t events) noexcept {
    epoll_event event{};
    event.events = events;
    event.data.fd = socket;
    if (::epoll_ctl(epoll_.get(), op, socket, &event) == 0) {
        return true;
    }
    // Bookkeeping can be stale for a descriptor curl closed without on_close (the kernel then
    // dropped it from the set) and reused: try the other op.
    if ((op == EPOLL_CTL_ADD && errno == EEXIST) || (op == EPOLL_CTL_MOD && errno == ENOENT)) {
        op = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (::epoll_ctl(epoll_.get(), op, socket, &event) == 0) {
            return true;
        }
    }
    log_failure("epoll_ctl (a transfer's socket)", std::strerror(errno));
    return false;
}

void CurlEpoll::act(curl_socket_t socket, std::uint32_t events) noexcept {
    if (Watch* watch = watch_of(socket); watch != nullptr && watch->parked) {
        // An idle kept-alive connection the server closed or wrote to: out of the set, or it
        // would fire on every wait. curl finds it dead when it next looks at it.
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, socket, nullptr) != 0 && errno != ENOENT) {
            log_failure("epoll_ctl (removing an idle connection)", std::strerror(errno));
        }
        *watch = Watch{.ours = true};
        return;
    }
    int running = 0;
    // A socket curl has let go of since epoll_wait is ignored by curl (CURLM_OK).
    if (const CURLMcode rc =
            curl_multi_socket_action(multi_.get(), socket, curl_select_for(events), &running);
        rc != CURLM_OK) {
        log_failure("curl_multi_socket_action", curl_multi_strerror(rc));
    }
}

void CurlEpoll::drain_wakeups() noexcept {
    if (const int error = wake_.drain(); error != 0) {
        log_failure("draining wake-ups (eventfd read)", std::strerror(error));
    }
}

bool CurlEpoll::nothing_to_send() const noexcept {
    return std::none_of(watches_.begin(), watches_.end(), [](const Watch& w) {
        return w.in_set && !w.parked && (w.events & EPOLLOUT) != 0;
    });
}

int CurlEpoll::wait_limit(int timeout_ms, TimePoint now) const noexcept {
    if (!timer_armed_) {
        return timeout_ms;
    }
    if (deadline_ <= now) {
        return 0;
    }
    // Rounded up: waking just before curl's deadline would only arm it again.
    const auto until = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - now).count();
    return timeout_ms < 0 ? static_cast<int>(std::min<std::int64_t>(until, 60'000))
                          : static_cast<int>(std::min<std::int64_t>(until, timeout_ms));
}

}  // namespace xrayd
