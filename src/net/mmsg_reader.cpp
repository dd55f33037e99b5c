// MmsgReader and DropStamp: the recvmmsg batch read and SO_RXQ_OVFL drop accounting.
#include "mmsg_reader.h"

#include <cerrno>
#include <cstring>
#include <span>

namespace xrayd::net_detail {

void DropStamp::note([[maybe_unused]] const cmsghdr& c) noexcept {
#ifdef XRAYD_HAVE_SO_RXQ_OVFL
    if (c.cmsg_level != SOL_SOCKET || c.cmsg_type != SO_RXQ_OVFL ||
        c.cmsg_len < CMSG_LEN(sizeof(std::uint32_t))) {
        return;
    }
    std::uint32_t dropped = 0;
    std::memcpy(&dropped, CMSG_DATA(&c), sizeof dropped);
    if (dropped != last_) {
        // Unsigned arithmetic: correct across the 32-bit wrap.
        counters_.add(Counter::kernel_drops, static_cast<std::uint32_t>(dropped - last_));
        last_ = dropped;
    }
#endif
}

void DropStamp::note_all([[maybe_unused]] const msghdr& h) noexcept {
#ifdef XRAYD_HAVE_SO_RXQ_OVFL
    // CMSG_NXTHDR takes non-const pointers but only reads through them.
    auto& message = const_cast<msghdr&>(h);
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
        note(*c);
    }
#endif
}

MmsgReader::MmsgReader(const SlotPool& slots, std::size_t count, std::size_t offset)
    : messages_(count),
      iovecs_(count),
      controls_(count),
      batch_(count),
      payload_bytes_(slots.slot_bytes() - offset) {
    for (std::size_t i = 0; i < count; ++i) {
        iovecs_[i].iov_base = slots.slot(i) + offset;
        iovecs_[i].iov_len = payload_bytes_;
        msghdr& h = messages_[i].msg_hdr;
        h.msg_name = nullptr;
        h.msg_namelen = 0;
        h.msg_iov = &iovecs_[i];
        h.msg_iovlen = 1;
    }
}

ReadResult MmsgReader::read_batch(int fd, DatagramHandler& handler, DropStamp& drops,
                                  std::optional<TimePoint> received_at) noexcept {
    const std::size_t capacity = messages_.size();
    // recvmmsg overwrites msg_controllen and msg_flags: reset them for every call.
    for (std::size_t i = 0; i < capacity; ++i) {
        msghdr& h = messages_[i].msg_hdr;
#ifdef XRAYD_HAVE_SO_RXQ_OVFL
        h.msg_control = controls_[i].bytes.data();
        h.msg_controllen = control_bytes;
#else
        h.msg_control = nullptr;
        h.msg_controllen = 0;
#endif
        h.msg_flags = 0;
    }
    const int n =
        ::recvmmsg(fd, messages_.data(), static_cast<unsigned>(capacity), MSG_DONTWAIT, nullptr);
    if (n < 0) {
        const int error = errno;
        if (error == EINTR) {
            return {ReadStatus::interrupted, 0};
        }
        if (error == EAGAIN || error == EWOULDBLOCK) {
            return {ReadStatus::drained, 0};
        }
        return {ReadStatus::failed, error};
    }
    const TimePoint now = received_at ? *received_at : Clock::now();
    const auto count = static_cast<std::size_t>(n);
    for (std::size_t i = 0; i < count; ++i) {
        const msghdr& h = messages_[i].msg_hdr;
        drops.note_all(h);
        std::size_t len = messages_[i].msg_len;
        if (len > payload_bytes_) {
            len = payload_bytes_;
        }
        batch_[i] = Datagram{static_cast<char*>(iovecs_[i].iov_base), len,
                             (h.msg_flags & MSG_TRUNC) != 0, now};
    }
    if (count > 0) {
        handler.on_datagrams(std::span<Datagram>(batch_.data(), count));
    }
    // A partial batch: the queue was empty before the batch filled, no need to ask again.
    return {count < capacity ? ReadStatus::drained : ReadStatus::full, 0, count};
}

}  // namespace xrayd::net_detail
