// MmsgReader and DropStamp: the recvmmsg batch read and SO_RXQ_OVFL drop accounting shared by
// the receiver backends.
#pragma once

#include <sys/socket.h>

#include <xrayd_config.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include <xrayd/net/receiver.h>
#include <xrayd/stats/counters.h>

#include "slot_pool.h"

namespace xrayd::net_detail {

// Turns the SO_RXQ_OVFL stamps of one socket into kernel_drops. The kernel stamps each datagram
// with the socket's cumulative drop count (once it is non-zero); the difference to the last stamp
// seen is what was dropped since. One per socket, shared by every path that reads that socket.
// Borrows `counters` (must outlive it). One thread uses it.
class DropStamp {
public:
    explicit DropStamp(Counters& counters) noexcept : counters_(counters) {}

    // Counts the drops a SO_RXQ_OVFL control message reports; ignores any other message (and
    // does nothing where the platform has no SO_RXQ_OVFL). Correct across the 32-bit wrap.
    void note(const cmsghdr& c) noexcept;
    // note() for every control message of a message recvmsg/recvmmsg filled in.
    void note_all(const msghdr& h) noexcept;

private:
    Counters& counters_;
    std::uint32_t last_ = 0;
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
