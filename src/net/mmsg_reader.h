// MmsgReader and DropStamp: the recvmmsg batch read and SO_RXQ_OVFL drop accounting shared by
// the receiver backends.
#pragma once

#include <sys/socket.h>

#include <xrayd_config.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include <xrayd/common/unique_fd.h>
#include <xrayd/log/logger.h>
#include <xrayd/net/receiver.h>
#include <xrayd/stats/counters.h>

#include "slot_pool.h"

namespace xrayd::net_detail {

// Turns one socket's kernel drop count into kernel_drops. The kernel keeps one cumulative
// count per socket (sk_drops) and shows it two ways: stamped on each delivered datagram
// (SO_RXQ_OVFL, the value when that datagram was queued) and on demand (SO_MEMINFO's
// SK_MEMINFO_DROPS, the value now). SO_RXQ_OVFL alone misses a burst's drops until the next
// datagram is delivered, so both feed one high-water mark: what is counted is the highest
// value seen from either, and each drop exactly once (the same kernel counter behind both,
// so taking the maximum never double counts; an older stamp read after a newer SO_MEMINFO
// value adds nothing). One per socket, shared by every path that reads that socket.
// Borrows `counters` (must outlive it). Thread-safe: the receiver thread notes stamps while
// another thread (metrics, summary, exit) syncs.
class DropStamp {
public:
    explicit DropStamp(Counters& counters) noexcept : counters_(counters) {}

    // Counts the drops a SO_RXQ_OVFL control message reports; ignores any other message (and
    // does nothing where the platform has no SO_RXQ_OVFL). Correct across the 32-bit wrap.
    void note(const cmsghdr& c) noexcept;
    // note() for every control message of a message recvmsg/recvmmsg filled in.
    void note_all(const msghdr& h) noexcept;
    // Reads the socket's drop count now (SO_MEMINFO) and counts what was not counted yet.
    // False (nothing counted) when the socket cannot tell (getsockopt failed).
    bool sync(int fd) noexcept;
    // Counts up to the kernel's cumulative count `dropped` if it is ahead of what was counted.
    void advance_to(std::uint32_t dropped) noexcept;

private:
    Counters& counters_;
    std::atomic<std::uint32_t> last_{0};
};

// A receiver's socket with what other threads may ask about it: its kernel drops (synced from
// any thread) and whether the receiver failed, which closes it (the socket then leaves its
// SO_REUSEPORT group, so the kernel sends its share of the traffic to the group's other
// sockets). Owns the socket; borrows `counters` (must outlive it).
class ReceiveSocket {
public:
    ReceiveSocket(UniqueFd socket, Counters& counters) noexcept
        : socket_(std::move(socket)), drops_(counters), counters_(counters) {}

    // The descriptor, -1 once closed. Receiver thread only (the one thread that closes it).
    [[nodiscard]] int fd() const noexcept { return socket_.get(); }
    [[nodiscard]] DropStamp& drops() noexcept { return drops_; }
    // DropStamp::sync while the socket is open. Any thread.
    void sync_drops() noexcept;
    // Any thread.
    [[nodiscard]] bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
    // Receiver thread, after a fatal error of `operation` (errno `error`) in the `backend`
    // receiver: counts the last drops, closes the socket, counts receivers_failed, logs an Error.
    void fail(Logger& logger, std::string_view backend, const char* operation, int error) noexcept;

private:
    UniqueFd socket_;
    std::mutex mutex_;  // closing against sync_drops() from another thread
    DropStamp drops_;
    Counters& counters_;
    std::atomic<bool> failed_{false};
};

// Why read_batch stopped; `error` is the errno for `failed`, 0 otherwise.
enum class ReadStatus {
    full,         // a whole batch was read: more may be waiting
    drained,      // the socket ran empty (a partial batch, or EAGAIN before any datagram)
    interrupted,  // EINTR before any datagram: try again
    failed,       // any other recvmmsg error
};

struct ReadResult {
    ReadStatus status;
    int error;
    std::size_t datagrams = 0;  // handed to the handler by this call
};

// Owns the mmsghdr, iovec and control arrays for receive slots 0..count-1 of a SlotPool and
// reads one batch from a socket into them with recvmmsg(MSG_DONTWAIT). Datagram i lands at
// slots.slot(i) + offset, at most slots.slot_bytes() - offset bytes of it; what follows keeps
// the pool's padding guarantee. Allocates at construction only.
// IMPORTANT: the pool must outlive the reader and must not be moved from while it is in use
// (the iovecs point into its mapping); count <= slots.count() and offset < slots.slot_bytes().
// Move-only; one thread uses it.
class MmsgReader {
public:
    MmsgReader(const SlotPool& slots, std::size_t count, std::size_t offset);
    MmsgReader(const MmsgReader&) = delete;
    MmsgReader& operator=(const MmsgReader&) = delete;
    MmsgReader(MmsgReader&&) noexcept = default;
    MmsgReader& operator=(MmsgReader&&) noexcept = default;
    ~MmsgReader() = default;

    // One recvmmsg call on the non-blocking socket `fd`: notes each datagram's drop stamp in
    // `drops` and hands the batch (MSG_TRUNC flagged, length clamped to the slot) to `handler`
    // as one span, if there is any datagram. Errors are reported, not logged: the caller owns
    // the rate-limited log. Datagrams are stamped `received_at` (see Datagram), or with the
    // time of the read when none is given.
    [[nodiscard]] ReadResult read_batch(int fd, DatagramHandler& handler, DropStamp& drops,
                                        std::optional<TimePoint> received_at = {}) noexcept;

private:
#ifdef XRAYD_HAVE_SO_RXQ_OVFL
    static constexpr std::size_t control_bytes = CMSG_SPACE(sizeof(std::uint32_t));
#else
    static constexpr std::size_t control_bytes = 1;
#endif
    struct alignas(cmsghdr) ControlBuffer {
        std::array<char, control_bytes> bytes;
    };

    std::vector<mmsghdr> messages_;
    std::vector<iovec> iovecs_;
    std::vector<ControlBuffer> controls_;
    std::vector<Datagram> batch_;
    std::size_t payload_bytes_ = 0;
};

}  // namespace xrayd::net_detail
