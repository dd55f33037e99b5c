// Receiver: the backend-neutral interface that reads datagrams from one UDP socket in batches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include <xrayd/common/time.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/flow/flow_control.h>
#include <xrayd/log/logger.h>
#include <xrayd/stats/counters.h>

namespace xrayd {

// One received datagram, in a receive slot owned by the receiver.
struct Datagram {
    // IMPORTANT: at least `padding` (ReceiverOptions) readable and writable bytes follow
    // data[len], so parsers that need padding (simdjson) can parse in place. The bytes are
    // only valid during the on_datagrams() call that delivered them.
    char* data;
    std::size_t len;  // may be 0: an empty datagram is delivered too
    bool truncated;   // the datagram was larger than the slot (MSG_TRUNC); `len` is the slot size
    // No later than the datagram's arrival: when the receiver read it, or, after a paced
    // sleep (DeliveryPace), when that sleep began, so a batcher's linger counts the sleep too.
    TimePoint received_at;
};

// Consumes batches. Called on the receiver's thread only.
class DatagramHandler {
public:
    virtual ~DatagramHandler() = default;
    // IMPORTANT: must not keep `data` pointers after returning: the slots are reused for the
    // next batch. The handler counts datagrams_received and rejected_too_large (truncated).
    virtual void on_datagrams(std::span<Datagram> batch) noexcept = 0;
};

struct ReceiverOptions {
    std::size_t slot_bytes = 65536;  // largest datagram delivered whole
    std::size_t padding = 64;        // writable bytes guaranteed after each datagram
    std::size_t batch = 32;          // datagrams per receive call (and slots preallocated)
    // io_uring only: receive slots handed to the kernel as a provided buffer ring, a power of
    // two in [batch, 32768]. 0 picks 2 x batch rounded up to a power of two, so the kernel
    // keeps at least `batch` free slots while the handler works on a batch. Each slot reserves
    // slot_bytes + padding + 64 bytes; only its first page and the pages datagrams reach become
    // resident. A paced receiver (DeliveryPace) gathers at most half of them per wake-up.
    std::size_t ring_buffers = 0;
    // Asked before each sleep how to pace wake-ups (flow/flow_control.h). Borrowed, must outlive
    // the receiver; null: no pacing, wake for every arrival.
    const PaceSource* pace = nullptr;
};

// Reads one socket until stopped. Backends: "epoll" (epoll + recvmmsg) and "io_uring"
// (multishot recvmsg into a provided buffer ring); see io_backend.h for the choice.
// Lifetime: the owner destroys it only after run() has returned (or was never called).
class Receiver {
public:
    virtual ~Receiver() = default;
    // Receives and hands batches to the handler until stop(). Call on the thread that owns
    // this receiver, once at a time.
    virtual void run() noexcept = 0;
    // Any thread, any number of times, also before run(): run() reads what the socket
    // already holds (bounded), hands it to the handler and returns. A stopped receiver stays
    // stopped.
    virtual void stop() noexcept = 0;
    // The backend's name, for logs: "epoll" or "io_uring".
    [[nodiscard]] virtual std::string_view backend() const noexcept = 0;
    // Receive slots it preallocated (the buffer ring for io_uring, one batch for epoll).
    [[nodiscard]] virtual std::size_t receive_slots() const noexcept = 0;

    // Counts the socket's kernel drops not counted yet, read from SO_MEMINFO: SO_RXQ_OVFL
    // reports a burst's drops only with the next delivered datagram, so /metrics, the summary
    // and the exit summary call this first. run() does it too before it returns. Any thread,
    // also while run() runs; nothing to do once the socket is closed.
    virtual void sync_kernel_drops() noexcept = 0;

    // True once run() ended on a fatal error (a broken epoll or io_uring) instead of stop().
    // The receiver then reads out what its socket holds, closes it so that the kernel spreads
    // its share of the SO_REUSEPORT group's traffic over the other sockets, counts
    // receivers_failed and logs an Error. Any thread.
    [[nodiscard]] virtual bool failed() const noexcept = 0;
};

// The epoll + recvmmsg backend. Takes ownership of `socket` (a non-blocking UDP socket, e.g.
// from open_udp_sockets). `handler`, `counters` and `logger` are borrowed and must outlive the
// receiver. Counts kernel_drops (from SO_RXQ_OVFL, when the socket has it enabled).
// Preallocates `options.batch` page-aligned slots of `slot_bytes + padding` (rounded up to a
// cache line); nothing is allocated per datagram.
// Throws StartupError if the options are invalid (zero slot_bytes or batch) or the
// epoll/eventfd/memory set-up fails.
[[nodiscard]] std::unique_ptr<Receiver> make_epoll_receiver(UniqueFd socket,
                                                            DatagramHandler& handler,
                                                            Counters& counters, Logger& logger,
                                                            ReceiverOptions options = {});

// The io_uring backend: one ring per receiver with a multishot recvmsg on `socket` and a
// provided buffer ring of `options.ring_buffers` slots (preallocated, padded like epoll's, each
// preceded by room for the kernel's io_uring_recvmsg_out header and the SO_RXQ_OVFL cmsg).
// Completions are reaped up to `options.batch` at a time and handed over as one span; the
// slots go back to the kernel when the handler returns. Same ownership, counting and stop
// contract as make_epoll_receiver; at stop the multishot request is cancelled, what it already
// received is handed over, then the socket is read out with recvmmsg. Also counts
// ring_buffers_exhausted: the buffer ring ran empty (-ENOBUFS) and the request was re-armed;
// nothing is lost, the datagrams wait in the socket buffer.
// Throws StartupError if the options are invalid or the ring, the buffer ring or the memory
// cannot be set up (prefer make_receiver in io_backend.h, which probes first).
[[nodiscard]] std::unique_ptr<Receiver> make_io_uring_receiver(UniqueFd socket,
                                                               DatagramHandler& handler,
                                                               Counters& counters, Logger& logger,
                                                               ReceiverOptions options = {});

}  // namespace xrayd
