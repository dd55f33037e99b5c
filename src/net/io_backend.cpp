// Receive backend choice: the io_uring probe, the epoll fallback and the per-core helpers.
#include <xrayd/net/io_backend.h>

#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <xrayd/common/error_text.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/common/sysctl.h>

#include "io_uring.h"

namespace xrayd {

namespace {

using net_detail::BufferRing;
using net_detail::IoUring;

std::string errno_message(int error) {
    return error_text(error);
}

// Why io_uring_setup failed, with what usually causes it.
std::string setup_failure(int error) {
    std::string text = "io_uring_setup: " + errno_message(error);
    switch (error) {
    case ENOSYS: return text + " (kernel without io_uring, or io_uring blocked by seccomp)";
    case EPERM: {
        // kernel.io_uring_disabled exists from Linux 6.6 on.
        const long sysctl = read_sysctl("kernel.io_uring_disabled").value_or(-1);
        if (sysctl == 2) {
            return text + " (disabled by sysctl kernel.io_uring_disabled=2)";
        }
        if (sysctl == 1) {
            return text + " (sysctl kernel.io_uring_disabled=1 and this process is not in "
                          "kernel.io_uring_group)";
        }
        return text + " (blocked by seccomp or the container runtime)";
    }
    case ENOMEM:
        return text + " (RLIMIT_MEMLOCK too low? raise it, e.g. LimitMEMLOCK= in the unit)";
    default: return text;
    }
}

struct ProbeDeleter {
    void operator()(io_uring_probe* p) const noexcept { ::io_uring_free_probe(p); }
};

// The checks behind probe_io_uring(); "" when everything the receiver needs works.
std::string probe_failure() {
    // Declared before the ring: the ring's exit cancels the receive before these go away.
    std::array<char, 512> buffers{};
    int pair[2] = {-1, -1};
    if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
        return "socketpair: " + errno_message(errno);
    }
    const UniqueFd reader(pair[0]);
    const UniqueFd writer(pair[1]);
    BufferRing buffer_ring;
    IoUring ring;

    int rc = ring.init(4, 16);
    if (rc < 0) {
        return setup_failure(-rc);
    }
    const std::unique_ptr<io_uring_probe, ProbeDeleter> ops(::io_uring_get_probe_ring(ring.get()));
    if (!ops) {
        return "io_uring opcode probe failed (needs Linux 5.6 or later)";
    }
    struct Needed {
        int op;
        const char* name;
    };
    for (const Needed n :
         {Needed{IORING_OP_RECVMSG, "RECVMSG"}, Needed{IORING_OP_POLL_ADD, "POLL_ADD"},
          Needed{IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}}) {
        if (::io_uring_opcode_supported(ops.get(), n.op) == 0) {
            return fmt::format("io_uring lacks the {} operation", n.name);
        }
    }
    if ((ring.features() & IORING_FEAT_FAST_POLL) == 0) {
        return "io_uring lacks fast poll (needs Linux 5.7 or later)";
    }
    rc = buffer_ring.init(ring, 2, 0);
    if (rc == -EINVAL) {
        return "io_uring cannot register a provided buffer ring (needs Linux 5.19 or later)";
    }
    if (rc == -ENOMEM || rc == -EAGAIN) {
        return fmt::format("io_uring_register_buf_ring: {} (RLIMIT_MEMLOCK too low?)",
                           errno_message(-rc));
    }
    if (rc < 0) {
        return "io_uring_register_buf_ring: " + errno_message(-rc);
    }
    constexpr unsigned half = buffers.size() / 2;
    buffer_ring.add(buffers.data(), half, 0, 0);
    buffer_ring.add(buffers.data() + half, half, 1, 1);
    buffer_ring.publish(2);

    // A real multishot recvmsg (Linux 6.0): one datagram must arrive in a provided buffer
    // with the request still armed afterwards.
    const char probe_byte = 'x';
    if (::send(writer.get(), &probe_byte, 1, 0) != 1) {
        return "socketpair send: " + errno_message(errno);
    }
    msghdr message{};
    io_uring_sqe* sqe = ring.next_sqe();
    if (sqe == nullptr) {
        return "io_uring_get_sqe: no submission entry";
    }
    ::io_uring_prep_recvmsg_multishot(sqe, reader.get(), &message, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = buffer_ring.group();
    rc = ::io_uring_submit(ring.get());
    if (rc < 0) {
        return "io_uring_submit: " + errno_message(-rc);
    }
    __kernel_timespec timeout{};
    timeout.tv_sec = 2;
    io_uring_cqe* cqe = nullptr;
    rc = ::io_uring_wait_cqe_timeout(ring.get(), &cqe, &timeout);
    if (rc < 0) {
        return "multishot recvmsg did not complete: " + errno_message(-rc);
    }
    const int res = cqe->res;
    const unsigned flags = cqe->flags;
    ::io_uring_cqe_seen(ring.get(), cqe);
    if (res == -EINVAL) {
        return "io_uring lacks multishot recvmsg (needs Linux 6.0 or later)";
    }
    if (res < 0) {
        return "multishot recvmsg: " + errno_message(-res);
    }
    if ((flags & IORING_CQE_F_BUFFER) == 0 || (flags & IORING_CQE_F_MORE) == 0) {
        return "io_uring lacks multishot recvmsg with provided buffers (needs Linux 6.0 or later)";
    }
    return {};
}

}  // namespace

std::optional<IoBackend> parse_io_backend(std::string_view name) noexcept {
    if (name == "auto") {
        return IoBackend::auto_;
    }
    if (name == "io_uring") {
        return IoBackend::io_uring;
    }
    if (name == "epoll") {
        return IoBackend::epoll;
    }
    return std::nullopt;
}

std::string_view to_string(IoBackend backend) noexcept {
    switch (backend) {
    case IoBackend::io_uring: return "io_uring";
    case IoBackend::epoll: return "epoll";
    case IoBackend::auto_: break;
    }
    return "auto";
}

IoUringSupport probe_io_uring() noexcept {
    try {
        std::string failure = probe_failure();
        if (failure.empty()) {
            return IoUringSupport{true, {}};
        }
        return IoUringSupport{false, std::move(failure)};
    } catch (...) {
        // Only string formatting can throw (out of memory); io_uring is then moot anyway.
        return IoUringSupport{false, "out of memory while probing"};
    }
}

IoBackend resolve_io_backend(IoBackend requested, const IoUringSupport& support) {
    switch (requested) {
    case IoBackend::epoll: return IoBackend::epoll;
    case IoBackend::io_uring:
        if (!support.available) {
            throw StartupError(
                fmt::format("The io_uring receive backend was requested but is unavailable: {}. "
                            "Use --io-backend=epoll (or auto to fall back automatically).",
                            support.reason));
        }
        return IoBackend::io_uring;
    case IoBackend::auto_: break;
    }
    return support.available ? IoBackend::io_uring : IoBackend::epoll;
}

std::string backend_choice_message(IoBackend requested, const IoUringSupport& support) {
    if (requested == IoBackend::epoll) {
        return "Receive backend: epoll";
    }
    if (support.available) {
        return "Receive backend: io_uring";
    }
    return fmt::format("Receive backend: epoll (io_uring unavailable: {})", support.reason);
}

std::unique_ptr<Receiver> make_receiver(IoBackend requested, UniqueFd socket,
                                        DatagramHandler& handler, Counters& counters,
                                        Logger& logger, ReceiverOptions options,
                                        const IoUringSupport& support) {
    if (resolve_io_backend(requested, support) == IoBackend::epoll) {
        return make_epoll_receiver(std::move(socket), handler, counters, logger, options);
    }
    if (requested == IoBackend::io_uring) {
        return make_io_uring_receiver(std::move(socket), handler, counters, logger, options);
    }
    // auto: the probe passed, but this ring may still fail (memory for a bigger ring).
    // The socket must survive a failed attempt, so hand over a duplicate.
    UniqueFd copy(::fcntl(socket.get(), F_DUPFD_CLOEXEC, 0));
    if (!copy) {
        throw StartupError(fmt::format("receiver: dup: {}", errno_message(errno)));
    }
    try {
        return make_io_uring_receiver(std::move(copy), handler, counters, logger, options);
    } catch (const StartupError& e) {
        logger.warn("{}; using the epoll backend for this socket", e.what());
    }
    return make_epoll_receiver(std::move(socket), handler, counters, logger, options);
}

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
            if (CPU_ISSET(cpu, &set)) {
                cpus.push_back(cpu);
            }
        }
    }
    if (cpus.empty()) {
        cpus.push_back(0);
    }
    return cpus;
}

int default_receiver_count(int cap) {
    const int cpus = static_cast<int>(allowed_cpus().size());
    if (cap < 1) {
        cap = 1;
    }
    return cpus < cap ? cpus : cap;
}

Result<void, int> pin_current_thread_to_cpu(int cpu) noexcept {
    if (cpu < 0 || cpu >= CPU_SETSIZE) {
        return fail(EINVAL);
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    const int rc = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
    if (rc != 0) {
        return fail(rc);
    }
    return {};
}

}  // namespace xrayd
