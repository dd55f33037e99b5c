// Receive backend choice: the io_uring run-time probe, the epoll fallback and per-core helpers.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <xrayd/common/result.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/log/logger.h>
#include <xrayd/net/receiver.h>
#include <xrayd/stats/counters.h>

namespace xrayd {

// --io-backend=auto|io_uring|epoll. auto_ is io_uring when the probe passes, else epoll.
enum class IoBackend { auto_, io_uring, epoll };

// "auto", "io_uring" or "epoll" (exactly); nullopt for anything else.
[[nodiscard]] std::optional<IoBackend> parse_io_backend(std::string_view name) noexcept;
// The flag spelling: "auto", "io_uring", "epoll".
[[nodiscard]] std::string_view to_string(IoBackend backend) noexcept;

// What the probe found. `reason` is empty when available, else one line saying why not,
// e.g. "io_uring_setup: Operation not permitted (disabled by sysctl kernel.io_uring_disabled=2)".
struct IoUringSupport {
    bool available = false;
    std::string reason;
};

// Builds a throwaway ring and checks everything the io_uring receiver needs: ring set-up
// (sysctl kernel.io_uring_disabled, seccomp, container policy, RLIMIT_MEMLOCK), the RECVMSG,
// POLL_ADD and ASYNC_CANCEL opcodes, fast poll, provided buffer ring registration (Linux 5.19)
// and a real multishot recvmsg (Linux 6.0) on a socketpair. Never throws, never crashes; takes
// about a millisecond. Start-up only, any thread; call once and pass the result around.
[[nodiscard]] IoUringSupport probe_io_uring() noexcept;

// The backend to build for `requested` given the probe result: io_uring or epoll, never auto_.
// Throws StartupError when io_uring was requested explicitly and is unavailable; the message
// names the reason and the fix (--io-backend=epoll).
[[nodiscard]] IoBackend resolve_io_backend(IoBackend requested, const IoUringSupport& support);

// The line the daemon logs once at Info: "Receive backend: io_uring", "Receive backend: epoll"
// (asked for) or "Receive backend: epoll (io_uring unavailable: <reason>)".
[[nodiscard]] std::string backend_choice_message(IoBackend requested,
                                                 const IoUringSupport& support);

// Builds the receiver for resolve_io_backend(requested, support); same ownership and errors as
// make_epoll_receiver / make_io_uring_receiver. With auto_, an io_uring set-up that fails
// despite the probe (e.g. memory) is logged at Warn and the epoll backend is built instead.
// Start-up only. `support` is the result of one probe_io_uring() call (tests pass a fake one).
[[nodiscard]] std::unique_ptr<Receiver> make_receiver(IoBackend requested, UniqueFd socket,
                                                      DatagramHandler& handler, Counters& counters,
                                                      Logger& logger, ReceiverOptions options,
                                                      const IoUringSupport& support);

// The CPUs this process may run on (sched_getaffinity), ascending; {0} if that fails.
[[nodiscard]] std::vector<int> allowed_cpus();

// Receiver threads by default: one per CPU the process may run on, at most `cap` (>= 1).
[[nodiscard]] int default_receiver_count(int cap = 8);

// Pins the calling thread to `cpu`. The error is an errno value (EINVAL: not an allowed CPU).
// Call from the thread to pin (receiver i on allowed_cpus()[i % size], typically).
[[nodiscard]] Result<void, int> pin_current_thread_to_cpu(int cpu) noexcept;

}  // namespace xrayd
