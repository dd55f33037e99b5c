// CurlEpoll: a libcurl multi driven through epoll and curl_multi_socket_action: curl's sockets
// stay registered between waits (a kept-alive connection's too, between its requests), its
// timer is a stored deadline, and an eventfd ends a wait from any thread. Replaces
// curl_multi_perform + curl_multi_poll, which build and tear down a poll set on every wait and
// poll each transfer's socket again inside perform.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include <xrayd/common/event_fd.h>
#include <xrayd/common/time.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/http/curl.h>
#include <xrayd/log/logger.h>

namespace xrayd {

// Owns the multi handle, one epoll fd and one eventfd, and installs itself as the multi's
// CURLMOPT_SOCKETFUNCTION and CURLMOPT_TIMERFUNCTION. Each easy handle is attach()ed once, then
// added and removed through multi(); run_timers() and wait() drive them; completions are read
// from multi().next_message() as before.
//
// Threads: one thread calls everything except wakeup() (any thread).
// Lifetime: `logger` and `internal_errors` outlive it. Not movable: libcurl holds its address.
// IMPORTANT: remove every easy handle from multi() before its CurlEasy is destroyed; the
// CurlEpoll must outlive them (an earlier member of their owner, as in CurlSlotPool).
class CurlEpoll {
public:
    // Throws StartupError when libcurl, epoll or the eventfd cannot be set up. `what` names the
    // owner in log lines ("uploads").
    CurlEpoll(std::string_view what, Logger& logger, RateLimiter& internal_errors);
    // The multi goes first: closing its cached connections calls on_socket and on_close.
    ~CurlEpoll() = default;
    CurlEpoll(const CurlEpoll&) = delete;
    CurlEpoll& operator=(const CurlEpoll&) = delete;
    CurlEpoll(CurlEpoll&&) = delete;
    CurlEpoll& operator=(CurlEpoll&&) = delete;

    [[nodiscard]] CurlMulti& multi() noexcept { return multi_; }

    // Opens and closes the handle's connection sockets through this loop
    // (CURLOPT_OPENSOCKETFUNCTION, CURLOPT_CLOSESOCKETFUNCTION), so a kept-alive connection can
    // stay in the epoll set between requests: the loop sees every close. Close-on-exec too.
    // Not CURLE_OK when libcurl rejects an option.
    [[nodiscard]] CURLcode attach(CurlEasy& easy) noexcept;

    // Runs curl's timer when its deadline has passed (curl_multi_socket_action on
    // CURL_SOCKET_TIMEOUT): this starts what curl_multi_add_handle added (curl asks for a
    // deadline of "now") and ends transfers past their timeouts. False when libcurl failed
    // (logged).
    [[nodiscard]] bool run_timers() noexcept;

    // Waits up to `timeout_ms` (less when curl's deadline comes first) for socket readiness or
    // wakeup(), hands each ready socket to curl, then runs a due timer. Failures are logged;
    // an interrupted wait (EINTR) just returns.
    // `answers_may_wait`: the caller has sent every request whole and can start the next
    // without an answer, so an answer arriving need not end the wait: it is handled when the
    // wait ends anyway (timeout, curl's deadline, wakeup()). That saves the thread a wake-up
    // per request. Ignored while curl still has something to send (a socket wants EPOLLOUT).
    void wait(int timeout_ms, bool answers_may_wait = false) noexcept;

    // Ends a wait() early, or makes the next one return at once. Any thread.
    void wakeup() noexcept;

    // Logs "<what> failed (<owner>): <detail>" at error level, rate-limited. Any thread.
    void log_failure(std::string_view what, std::string_view detail) noexcept;

private:
    // What the epoll set holds for one descriptor.
    struct Watch {
        std::uint32_t events = 0;
        bool in_set = false;
        bool parked = false;  // curl let go of it (CURL_POLL_REMOVE) but keeps the connection
        bool ours = false;    // opened by on_open, so on_close will tell when it goes
    };

    static int on_socket(CURL* easy, curl_socket_t socket, int what, void* self,
                         void* socket_state) noexcept;
    static int on_timer(CURLM* multi, long timeout_ms, void* self) noexcept;
    static curl_socket_t on_open(void* self, curlsocktype purpose, curl_sockaddr* address) noexcept;
    static int on_close(void* self, curl_socket_t socket) noexcept;
    // The entry of `socket`, grown on demand; nullptr when out of memory (then handled
    // without bookkeeping).
    [[nodiscard]] Watch* watch_of(curl_socket_t socket) noexcept;
    void watch(curl_socket_t socket, std::uint32_t events) noexcept;
    void unwatch(curl_socket_t socket) noexcept;
    [[nodiscard]] bool epoll_ctl_or_log(int op, curl_socket_t socket,
                                        std::uint32_t events) noexcept;
    void act(curl_socket_t socket, std::uint32_t events) noexcept;
    void drain_wakeups() noexcept;
    [[nodiscard]] int wait_limit(int timeout_ms, TimePoint now) const noexcept;
    // True when no socket in the set waits to send (EPOLLOUT).
    [[nodiscard]] bool nothing_to_send() const noexcept;

    std::string_view what_;
    Logger& logger_;
    RateLimiter& internal_errors_;
    EventFd wake_;  // in epoll_ and quiet_ for EPOLLIN
    UniqueFd epoll_;
    UniqueFd quiet_;  // a second epoll set holding wake_ alone: a wait that answers do not end
    // curl's deadline (CURLMOPT_TIMERFUNCTION): it stands until curl sets another or clears it.
    bool timer_armed_ = false;
    TimePoint deadline_{};
    std::uint64_t timer_calls_ = 0;  // tells run_timers() whether curl moved the deadline
    std::vector<Watch> watches_;     // by descriptor
    CurlMulti multi_;                // last: destroyed first, while the fds are still open
};

}  // namespace xrayd
