// MmsgReader and DropStamp: the recvmmsg batch read and SO_RXQ_OVFL drop accounting.
#include "mmsg_reader.h"

#include <linux/sock_diag.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <span>

#include <xrayd/common/error_text.h>

namespace xrayd::net_detail {

void DropStamp::note([[maybe_unused]] const cmsghdr& c) noexcept {
#ifdef XRAYD_HAVE_SO_RXQ_OVFL
    if (c.cmsg_level != SOL_SOCKET || c.cmsg_type != SO_RXQ_OVFL ||
        c.cmsg_len < CMSG_LEN(sizeof(std::uint32_t))) {
        return;
    }
    std::uint32_t dropped = 0;
    std::memcpy(&dropped, CMSG_DATA(&c), sizeof dropped);
    advance_to(dropped);
#endif
}

void DropStamp::advance_to(std::uint32_t dropped) noexcept {
    std::uint32_t last = last_.load(std::memory_order_relaxed);
    // Ahead means less than half the 32-bit range ahead (unsigned arithmetic: correct across
    // the wrap); a stamp older than what was counted is behind and adds nothing.
    while (dropped != last && static_cast<std::uint32_t>(dropped - last) < (1u << 31)) {
        if (last_.compare_exchange_weak(last, dropped, std::memory_order_relaxed)) {
            counters_.add(Counter::kernel_drops, static_cast<std::uint32_t>(dropped - last));
            return;
        }
    }
}

bool DropStamp::sync(int fd) noexcept {
    std::array<std::uint32_t, SK_MEMINFO_VARS> meminfo{};
    socklen_t length = sizeof meminfo;
    if (::getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo.data(), &length) != 0 ||
        length < (SK_MEMINFO_DROPS + 1) * sizeof(std::uint32_t)) {
        return false;
    }
    advance_to(meminfo[SK_MEMINFO_DROPS]);
    return true;
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

void ReceiveSocket::sync_drops() noexcept {
    const std::lock_guard lock(mutex_);
    if (socket_) {
        (void)drops_.sync(socket_.get());
    }
}

void ReceiveSocket::fail(Logger& logger, std::string_view backend, const char* operation,
                         int error) noexcept {
    {
        const std::lock_guard lock(mutex_);
        (void)drops_.sync(socket_.get());
        socket_.reset();
    }
    failed_.store(true, std::memory_order_release);
    counters_.add(Counter::receivers_failed);
    logger.error("daemon: socket: err: {}: {}: this {} receiver stopped and closed its socket; "
                 "the kernel sends its share of the traffic to the other receivers "
                 "(receivers_failed)",
                 operation, error_text(error), backend);
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
