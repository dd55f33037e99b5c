// IoUring and BufferRing: owners of an io_uring instance and of a registered provided buffer ring.
#pragma once

#include <liburing.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <iterator>

#include <xrayd/net/mmap_area.h>

namespace xrayd::net_detail {

// One io_uring (liburing's struct io_uring). Neither copyable nor movable: liburing's struct
// is used in place. Exits the ring (cancelling every request, dropping every registration)
// on destruction. One thread at a time.
class IoUring {
public:
    IoUring() noexcept = default;
    ~IoUring() { exit(); }

    // Exits the ring now (as the destructor does): its requests end and drop the files they
    // hold. Idempotent.
    void exit() noexcept {
        if (ready_) {
            ::io_uring_queue_exit(&ring_);
            ready_ = false;
        }
    }
    IoUring(const IoUring&) = delete;
    IoUring& operator=(const IoUring&) = delete;

    // Sets the ring up with `entries` submission slots and `cq_entries` completion slots (a
    // power of two >= 2 x entries). With `deferred`, first asks for DEFER_TASKRUN (Linux 6.1:
    // completions are posted only when the owning thread waits for them, and a wait for more
    // than one is not interrupted per completion), which needs SINGLE_ISSUER and so starts the
    // ring disabled: the thread that will drive it calls enable() first. Otherwise, or on older
    // kernels, asks for COOP_TASKRUN (Linux 5.19: no inter-processor interrupt per completion,
    // the receiver enters the kernel anyway), then for neither. Returns 0 or -errno.
    [[nodiscard]] int init(unsigned entries, unsigned cq_entries, bool deferred = false) noexcept {
        if (ready_) {
            return -EBUSY;
        }
        constexpr unsigned attempts[] = {
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
            IORING_SETUP_COOP_TASKRUN, 0};
        int rc = -EINVAL;
        for (std::size_t i = deferred ? 0 : 1; i < std::size(attempts) && rc == -EINVAL; ++i) {
            io_uring_params params{};
            params.flags = IORING_SETUP_CQSIZE | attempts[i];
            params.cq_entries = cq_entries;
            rc = ::io_uring_queue_init_params(entries, &ring_, &params);
            if (rc == 0) {
                features_ = params.features;
                flags_ = params.flags;
            }
        }
        if (rc < 0) {
            return rc;
        }
        ready_ = true;
        return 0;
    }

    // Whether completions are deferred to the owning thread's waits (DEFER_TASKRUN).
    [[nodiscard]] bool deferred() const noexcept {
        return (flags_ & IORING_SETUP_DEFER_TASKRUN) != 0;
    }

    // Enables a ring started disabled, making the calling thread its only submitter; from then
    // on only this thread may submit or wait. 0 (also when it was never disabled) or -errno.
    [[nodiscard]] int enable() noexcept {
        if ((flags_ & IORING_SETUP_R_DISABLED) == 0) {
            return 0;
        }
        // Debian's liburing 2.3 declares io_uring_enable_rings() but does not export it.
        if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr,
                      0) < 0) {
            return -errno;
        }
        flags_ &= ~IORING_SETUP_R_DISABLED;
        return 0;
    }

    [[nodiscard]] io_uring* get() noexcept { return &ring_; }
    [[nodiscard]] unsigned features() const noexcept { return features_; }

    // A free submission entry, submitting what is queued once if the queue is full; nullptr
    // if there is still none (the ring is broken).
    [[nodiscard]] io_uring_sqe* next_sqe() noexcept {
        io_uring_sqe* sqe = ::io_uring_get_sqe(&ring_);
        if (sqe == nullptr && ::io_uring_submit(&ring_) >= 0) {
            sqe = ::io_uring_get_sqe(&ring_);
        }
        return sqe;
    }

private:
    io_uring ring_{};
    bool ready_ = false;
    unsigned features_ = 0;
    unsigned flags_ = 0;
};

// A provided buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19) in its own page-aligned
// mapping. liburing 2.3 has no io_uring_setup_buf_ring, so the mapping and registration are
// done here. The ring's registration ends with the IoUring, so declare a BufferRing before the
// IoUring it is registered with (members are destroyed in reverse order).
class BufferRing {
public:
    // Registers `entries` (a power of two, 1..32768) as buffer group `group`. Returns 0 or
    // -errno (-EINVAL on kernels without buffer rings).
    [[nodiscard]] int init(IoUring& ring, unsigned entries, std::uint16_t group) noexcept {
        if (entries == 0 || entries > 32768 || (entries & (entries - 1)) != 0) {
            return -EINVAL;
        }
        auto area = MmapArea::create(entries * sizeof(io_uring_buf));
        if (!area) {
            return -area.error();
        }
        area_ = std::move(area.value());
        ring_ = reinterpret_cast<io_uring_buf_ring*>(area_.data());
        ::io_uring_buf_ring_init(ring_);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(area_.data());
        reg.ring_entries = entries;
        reg.bgid = group;
        const int rc = ::io_uring_register_buf_ring(ring.get(), &reg, 0);
        if (rc < 0) {
            ring_ = nullptr;
            area_.reset();
            return rc;
        }
        mask_ = ::io_uring_buf_ring_mask(entries);
        group_ = group;
        return 0;
    }

    // Queues `buffer` (`length` bytes, id `id`) as the `offset`-th of the next publish().
    void add(void* buffer, unsigned length, std::uint16_t id, int offset) noexcept {
        ::io_uring_buf_ring_add(ring_, buffer, length, id, mask_, offset);
    }
    // Makes the `count` buffers queued by add() visible to the kernel.
    void publish(int count) noexcept { ::io_uring_buf_ring_advance(ring_, count); }

    [[nodiscard]] std::uint16_t group() const noexcept { return group_; }

private:
    MmapArea area_;
    io_uring_buf_ring* ring_ = nullptr;
    int mask_ = 0;
    std::uint16_t group_ = 0;
};

}  // namespace xrayd::net_detail
