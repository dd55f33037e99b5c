// The io_uring receiver backend: multishot recvmsg into a provided buffer ring.
#include <xrayd/net/receiver.h>

#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>

#include <xrayd_config.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <xrayd/common/error_text.h>
#include <xrayd/common/event_fd.h>
#include <xrayd/common/startup_error.h>

#include <xrayd/flow/flow_control.h>
#include <xrayd/net/wake_pacer.h>
#include "io_uring.h"
#include "mmsg_reader.h"
#include "slot_pool.h"

namespace xrayd {

namespace {

using net_detail::BufferRing;
using net_detail::IoUring;
using net_detail::MmsgReader;
using net_detail::ReadResult;
using net_detail::ReadStatus;
using net_detail::ReceiveSocket;
using net_detail::SlotPool;

// Each provided buffer starts with what multishot recvmsg writes before the payload: the
// io_uring_recvmsg_out header, the source address (not asked for: msg_namelen = 0) and the
// control messages (msg_controllen bytes, room for SO_RXQ_OVFL's drop count). Sizing the
// control room so the header fills one cache line puts every payload on a cache line.
constexpr std::size_t header_bytes = 64;
constexpr std::size_t control_room = header_bytes - sizeof(io_uring_recvmsg_out);
static_assert(control_room >= CMSG_SPACE(sizeof(std::uint32_t)));

constexpr std::uint64_t receive_tag = 1;
constexpr std::uint64_t stop_tag = 2;
constexpr std::uint64_t cancel_tag = 3;
constexpr std::uint16_t buffer_group = 0;
constexpr unsigned submission_entries = 8;       // the receive, the stop poll and a cancel at most
constexpr std::size_t max_ring_buffers = 32768;  // the kernel's limit for a buffer ring
constexpr std::size_t max_slot_bytes = std::size_t{1} << 30;
// At stop: completions reaped while waiting for the cancelled receive to end, then recvmmsg
// calls reading the socket out (as the epoll backend does).
constexpr int max_rounds_at_stop = 4096;
// A cancel at stop normally completes at once; wait at most this many 1 s timeouts for it.
constexpr int max_cancel_timeouts = 5;
constexpr auto error_log_interval = std::chrono::seconds(10);

std::size_t round_up_power_of_two(std::size_t n) noexcept {
    std::size_t p = 1;
    while (p < n) {
        p <<= 1;
    }
    return p;
}

class IoUringReceiver final : public Receiver {
public:
    IoUringReceiver(UniqueFd socket, EventFd stop_event, SlotPool slots, std::size_t batch,
                    DatagramHandler& handler, const PaceSource* pace, Counters& counters,
                    Logger& logger)
        : socket_(std::move(socket), counters),
          stop_event_(std::move(stop_event)),
          slots_(std::move(slots)),
          handler_(handler),
          pace_(pace),
          logger_(logger),
          counters_(counters),
          // The final drain reads into the same slots, payload at the same offset, so its
          // datagrams get the same padding guarantee.
          drain_reader_(slots_, batch, header_bytes),
          cqes_(batch),
          bids_(batch),
          batch_(batch) {
        message_.msg_name = nullptr;
        message_.msg_namelen = 0;
        message_.msg_iov = nullptr;
        message_.msg_iovlen = 0;
        message_.msg_control = nullptr;
        message_.msg_controllen = control_room;
        message_.msg_flags = 0;
    }

    // Creates the ring, registers the buffer ring and hands it every slot. "" or what failed.
    [[nodiscard]] std::string setup() {
        const std::size_t buffers = slots_.count();
        const auto cq_entries = static_cast<unsigned>(round_up_power_of_two(2 * buffers + 16));
        int rc = ring_.init(submission_entries, cq_entries, /*deferred=*/true);
        if (rc < 0) {
            return fmt::format("io_uring_queue_init: {}", error_text(-rc));
        }
        rc = buffer_ring_.init(ring_, static_cast<unsigned>(buffers), buffer_group);
        if (rc < 0) {
            return fmt::format("io_uring_register_buf_ring: {}", error_text(-rc));
        }
        for (std::size_t i = 0; i < buffers; ++i) {
            buffer_ring_.add(slots_.slot(i), buffer_bytes(), static_cast<std::uint16_t>(i),
                             static_cast<int>(i));
        }
        buffer_ring_.publish(static_cast<int>(buffers));
        return {};
    }

    void run() noexcept override {
        if (!enabled_) {
            // A DEFER_TASKRUN ring belongs to the thread that enables it: this one.
            const int rc = ring_.enable();
            if (rc < 0) {
                drain_socket();
                fail("io_uring enable", -rc);
                return;
            }
            enabled_ = true;
        }
        if (!stop_requested_.load(std::memory_order_acquire)) {
            if (!stop_armed_) {
                arm_stop();
            }
            if (!receive_armed_) {
                arm_receive();
            }
        }
        io_uring* ring = ring_.get();
        // Only a DEFER_TASKRUN ring can sleep through arrivals: its completions are posted
        // when the receiver waits, and a timed wait is not cut short by each one. A sleep ends
        // when its time is up (or at the latest with the hold limit, also at stop).
        const bool paced = ring_.deferred();
        WakePacer pacer(slots_.count() / 2);
        unsigned reaped = 0;  // completions since the last wait
        int fatal = 0;        // the errno that broke the ring, 0 while it works
        TimePoint woke = Clock::now();
        while (!stop_requested_.load(std::memory_order_acquire)) {
            if (::io_uring_cq_ready(ring) == 0) {
                // Everything the last wake-up brought is handled: wait for more, submitting a
                // pending re-arm (if any) on the way.
                const Duration sleep =
                    paced ? pacer.next_sleep(reaped, woke, pace_of(pace_)) : Duration::zero();
                reaped = 0;
                int rc = 0;
                if (sleep > Duration::zero()) {
                    // What this sleep collects arrived after the last wake-up.
                    stamp_ = woke;
                    __kernel_timespec timeout{};
                    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(sleep);
                    timeout.tv_sec = ns.count() / 1'000'000'000;
                    timeout.tv_nsec = ns.count() % 1'000'000'000;
                    io_uring_cqe* cqe = nullptr;
                    rc = ::io_uring_submit_and_wait_timeout(
                        ring, &cqe, static_cast<unsigned>(slots_.count()), &timeout, nullptr);
                    if (rc == -ETIME) {
                        rc = 0;
                    }
                } else {
                    stamp_.reset();
                    rc = ::io_uring_submit_and_wait(ring, 1);
                }
                woke = Clock::now();
                if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
                    // Only a broken ring gets here; nothing can be received any more.
                    fatal = -rc;
                    break;
                }
            } else if (::io_uring_sq_ready(ring) > 0) {
                const int rc = ::io_uring_submit(ring);
                if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
                    log_error("io_uring_submit", -rc);
                }
            }
            reaped += reap(true);
        }
        stamp_.reset();
        finish();
        if (fatal != 0) {
            fail("io_uring_enter", fatal);
            return;
        }
        socket_.sync_drops();
    }

    void sync_kernel_drops() noexcept override { socket_.sync_drops(); }
    [[nodiscard]] bool failed() const noexcept override { return socket_.failed(); }

    void stop() noexcept override {
        stop_requested_.store(true, std::memory_order_release);
        if (const int error = stop_event_.signal(); error != 0) {
            // The flag still stops the loop at its next wake-up (a datagram or the pace).
            logger_.error("io_uring receiver: signalling its stop: {}", error_text(error));
        }
    }

    [[nodiscard]] std::string_view backend() const noexcept override { return "io_uring"; }
    [[nodiscard]] std::size_t receive_slots() const noexcept override { return slots_.count(); }

private:
    [[nodiscard]] unsigned buffer_bytes() const noexcept {
        return static_cast<unsigned>(header_bytes + payload_bytes());
    }
    [[nodiscard]] std::size_t payload_bytes() const noexcept {
        return slots_.slot_bytes() - header_bytes;
    }

    // Queues the multishot recvmsg; io_uring_submit_and_wait in run() submits it.
    void arm_receive() noexcept {
        io_uring_sqe* sqe = ring_.next_sqe();
        if (sqe == nullptr) {
            log_error("io_uring_get_sqe", EBUSY);
            return;
        }
        ::io_uring_prep_recvmsg_multishot(sqe, socket_.fd(), &message_, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = buffer_ring_.group();
        ::io_uring_sqe_set_data64(sqe, receive_tag);
        receive_armed_ = true;
    }

    // A one-shot poll on the stop eventfd: its completion wakes submit_and_wait.
    void arm_stop() noexcept {
        io_uring_sqe* sqe = ring_.next_sqe();
        if (sqe == nullptr) {
            log_error("io_uring_get_sqe", EBUSY);
            return;
        }
        ::io_uring_prep_poll_add(sqe, stop_event_.fd(), POLLIN);
        ::io_uring_sqe_set_data64(sqe, stop_tag);
        stop_armed_ = true;
    }

    // Reaps up to one batch of completions, hands their datagrams to the handler as one span,
    // then gives the slots back to the kernel. Re-arms the receive when the multishot request
    // ended (buffer ring empty, error) and `rearm`. Returns the completions reaped.
    unsigned reap(bool rearm) noexcept {
        io_uring* ring = ring_.get();
        const unsigned n =
            ::io_uring_peek_batch_cqe(ring, cqes_.data(), static_cast<unsigned>(cqes_.size()));
        if (n == 0) {
            return 0;
        }
        const TimePoint now = stamp_ ? *stamp_ : Clock::now();
        std::size_t datagrams = 0;
        std::size_t taken = 0;
        for (unsigned i = 0; i < n; ++i) {
            const io_uring_cqe* cqe = cqes_[i];
            if (cqe->user_data != receive_tag) {
                continue;  // the stop poll or a cancel: stop() has already set the flag
            }
            const int res = cqe->res;
            const unsigned flags = cqe->flags;
            if ((flags & IORING_CQE_F_MORE) == 0) {
                receive_armed_ = false;
            }
            if ((flags & IORING_CQE_F_BUFFER) != 0) {
                const auto bid = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
                if (bid < slots_.count()) {
                    bids_[taken++] = bid;
                    if (res >= 0 && take(bid, res, now, batch_[datagrams])) {
                        ++datagrams;
                    }
                }
            }
            if (res < 0) {
                on_receive_error(-res);
            }
        }
        ::io_uring_cq_advance(ring, n);
        if (datagrams > 0) {
            handler_.on_datagrams(std::span<Datagram>(batch_.data(), datagrams));
        }
        for (std::size_t i = 0; i < taken; ++i) {
            buffer_ring_.add(slots_.slot(bids_[i]), buffer_bytes(), bids_[i], static_cast<int>(i));
        }
        if (taken > 0) {
            buffer_ring_.publish(static_cast<int>(taken));
        }
        // Re-armed after the slots went back, so an exhausted ring has room again.
        if (rearm && !receive_armed_ && !stop_requested_.load(std::memory_order_acquire)) {
            arm_receive();
        }
        return n;
    }

    // Fills `out` from the slot the kernel wrote `res` bytes to (a malformed completion becomes
    // an empty truncated datagram, so it is counted). Always true.
    bool take(std::uint16_t bid, int res, TimePoint now, Datagram& out) noexcept {
        char* buffer = slots_.slot(bid);
        io_uring_recvmsg_out* header = ::io_uring_recvmsg_validate(buffer, res, &message_);
        if (header == nullptr) {
            // Not a layout the kernel should produce; handed over as an empty truncated
            // datagram so it is counted (received, too large) rather than vanishing.
            out = Datagram{buffer, 0, true, now};
            return true;
        }
#ifdef XRAYD_HAVE_SO_RXQ_OVFL
        for (cmsghdr* c = ::io_uring_recvmsg_cmsg_firsthdr(header, &message_); c != nullptr;
             c = ::io_uring_recvmsg_cmsg_nexthdr(header, &message_, c)) {
            socket_.drops().note(*c);
        }
#endif
        std::size_t len = ::io_uring_recvmsg_payload_length(header, res, &message_);
        if (len > payload_bytes()) {
            len = payload_bytes();
        }
        out = Datagram{static_cast<char*>(::io_uring_recvmsg_payload(header, &message_)), len,
                       (header->flags & MSG_TRUNC) != 0, now};
        return true;
    }

    void on_receive_error(int error) noexcept {
        if (error == ENOBUFS) {
            // Every slot was with the handler or in the completion queue: the request ended
            // and is re-armed once the slots are back. The datagrams wait in the socket.
            counters_.add(Counter::ring_buffers_exhausted);
            if (logger_.enabled(LogLevel::debug) && exhausted_limit_.allow(Clock::now(), nullptr)) {
                logger_.debug("daemon: socket: io_uring receive buffers exhausted ({} times)",
                              counters_.get(Counter::ring_buffers_exhausted));
            }
            return;
        }
        if (error == ECANCELED) {
            return;  // cancelled at stop
        }
        log_error("recvmsg", error);
    }

    // After stop: cancel the multishot receive and hand over what it already received, then
    // read out what the socket still holds with recvmmsg (bounded, as the epoll backend does).
    void finish() noexcept {
        io_uring* ring = ring_.get();
        if (receive_armed_) {
            io_uring_sqe* sqe = ring_.next_sqe();
            if (sqe != nullptr) {
                ::io_uring_prep_cancel64(sqe, receive_tag, 0);
                ::io_uring_sqe_set_data64(sqe, cancel_tag);
            }
            const int rc = ::io_uring_submit(ring);
            if (rc < 0) {
                log_error("io_uring_submit", -rc);
            }
            int timeouts = 0;
            for (int round = 0; receive_armed_ && round < max_rounds_at_stop; ++round) {
                if (::io_uring_cq_ready(ring) == 0) {
                    __kernel_timespec timeout{};
                    timeout.tv_sec = 1;
                    io_uring_cqe* cqe = nullptr;
                    const int wait = ::io_uring_wait_cqe_timeout(ring, &cqe, &timeout);
                    if (wait == -ETIME && ++timeouts < max_cancel_timeouts) {
                        continue;  // the cancel's completion is late: keep waiting, bounded
                    }
                    if (wait < 0 && wait != -EINTR) {
                        log_error("io_uring_wait_cqe", -wait);
                        break;
                    }
                }
                (void)reap(false);
            }
        }
        while (reap(false) > 0) {
        }
        if (receive_armed_) {
            // The kernel may still own slots of the buffer ring: reading into them with
            // recvmmsg could overwrite a datagram it is delivering. Say so rather than risk it.
            logger_.error("io_uring receive not cancelled at stop; datagrams still queued on "
                          "the socket are not read");
            return;
        }
        drain_socket();
    }

    void drain_socket() noexcept {
        for (int round = 0; round < max_rounds_at_stop; ++round) {
            const ReadResult read =
                drain_reader_.read_batch(socket_.fd(), handler_, socket_.drops());
            if (read.status == ReadStatus::failed) {
                log_error("recvmmsg", read.error);
            }
            if (read.status != ReadStatus::full && read.status != ReadStatus::interrupted) {
                return;
            }
        }
    }

    // After a fatal error: exits the ring first (its receive request holds the socket open),
    // then closes the socket (ReceiveSocket::fail).
    void fail(const char* operation, int error) noexcept {
        ring_.exit();
        socket_.fail(logger_, backend(), operation, error);
    }

    void log_error(const char* operation, int error) noexcept {
        std::uint64_t suppressed = 0;
        if (!error_limit_.allow(Clock::now(), &suppressed)) {
            return;
        }
        if (suppressed > 0) {
            logger_.error("daemon: socket: err: {}: {} ({} similar errors suppressed)", operation,
                          error_text(error), suppressed);
        } else {
            logger_.error("daemon: socket: err: {}: {}", operation, error_text(error));
        }
    }

    // Declaration order is destruction order reversed: the ring goes first (ending the
    // receive and the buffer ring registration), then the memory the kernel was writing to.
    ReceiveSocket socket_;
    EventFd stop_event_;
    SlotPool slots_;
    BufferRing buffer_ring_;
    IoUring ring_;
    DatagramHandler& handler_;
    const PaceSource* pace_;  // null: no pacing
    Logger& logger_;
    Counters& counters_;       // ring_buffers_exhausted; the socket counts its own drops
    MmsgReader drain_reader_;  // recvmmsg into slots_ 0..batch-1, only once the ring is done
    msghdr message_{};
    std::vector<io_uring_cqe*> cqes_;
    std::vector<std::uint16_t> bids_;
    std::vector<Datagram> batch_;
    bool receive_armed_ = false;
    bool stop_armed_ = false;
    bool enabled_ = false;
    // Set during a paced sleep: the received_at of what it collects (see Datagram).
    std::optional<TimePoint> stamp_;
    std::atomic<bool> stop_requested_{false};
    RateLimiter error_limit_{error_log_interval};
    RateLimiter exhausted_limit_{error_log_interval};
};

}  // namespace

std::unique_ptr<Receiver> make_io_uring_receiver(UniqueFd socket, DatagramHandler& handler,
                                                 Counters& counters, Logger& logger,
                                                 ReceiverOptions options) {
    if (!socket) {
        throw StartupError("io_uring receiver: invalid socket");
    }
    if (options.slot_bytes == 0 || options.batch == 0) {
        throw StartupError("io_uring receiver: slot_bytes and batch must be greater than zero");
    }
    if (options.slot_bytes > max_slot_bytes) {
        throw StartupError("io_uring receiver: slot_bytes must be at most 1 GiB");
    }
    if (options.batch > 1024) {
        // The final drain's recvmmsg processes at most UIO_MAXIOV (1024) messages per call.
        throw StartupError("io_uring receiver: batch must be at most 1024");
    }
    std::size_t buffers = options.ring_buffers;
    if (buffers == 0) {
        buffers = round_up_power_of_two(2 * options.batch);
    }
    if (buffers < options.batch || buffers > max_ring_buffers || (buffers & (buffers - 1)) != 0) {
        throw StartupError(fmt::format(
            "io_uring receiver: ring_buffers ({}) must be a power of two between batch ({}) "
            "and {}",
            buffers, options.batch, max_ring_buffers));
    }
    auto slots = SlotPool::create(buffers, header_bytes + options.slot_bytes, options.padding);
    if (!slots) {
        throw StartupError(fmt::format("io_uring receiver: cannot map {} receive slots: {}",
                                       buffers, error_text(slots.error())));
    }
    EventFd stop_event("io_uring receiver");
    auto receiver = std::make_unique<IoUringReceiver>(std::move(socket), std::move(stop_event),
                                                      std::move(slots.value()), options.batch,
                                                      handler, options.pace, counters, logger);
    const std::string failed = receiver->setup();
    if (!failed.empty()) {
        throw StartupError("io_uring receiver: " + failed);
    }
    return receiver;
}

}  // namespace xrayd
