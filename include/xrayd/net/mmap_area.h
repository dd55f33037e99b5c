// MmapArea: the one owner of an anonymous memory mapping; unmaps it on destruction.
#pragma once

#include <cstddef>
#include <utility>

#include <xrayd/common/result.h>

namespace xrayd {

// Move-only owner of private, anonymous, zero-filled, page-aligned memory (receive slots).
// Any thread may use it; only one may own it.
class MmapArea {
public:
    MmapArea() noexcept = default;
    ~MmapArea() { reset(); }

    MmapArea(MmapArea&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    MmapArea& operator=(MmapArea&& other) noexcept {
        if (this != &other) {
            reset();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    MmapArea(const MmapArea&) = delete;
    MmapArea& operator=(const MmapArea&) = delete;

    // Maps at least `bytes` bytes (rounded up to whole pages). Pages are faulted in when first
    // touched (see SlotPool for what is prefaulted): memory that is never written costs nothing.
    // The error is an errno value; `bytes` == 0 is EINVAL.
    [[nodiscard]] static Result<MmapArea, int> create(std::size_t bytes) noexcept;

    [[nodiscard]] char* data() const noexcept { return data_; }
    // The mapped size: `bytes` rounded up to the page size.
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool valid() const noexcept { return data_ != nullptr; }

    // Unmaps now (if mapped). munmap errors are ignored: nothing useful can be done.
    void reset() noexcept;

private:
    MmapArea(char* data, std::size_t size) noexcept : data_(data), size_(size) {}

    char* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace xrayd
