// MmapArea: anonymous mappings for receive slots.
#include <xrayd/net/mmap_area.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace xrayd {

Result<MmapArea, int> MmapArea::create(std::size_t bytes) noexcept {
    if (bytes == 0) {
        return fail(EINVAL);
    }
    const long page = ::sysconf(_SC_PAGESIZE);
    const std::size_t page_bytes = page > 0 ? static_cast<std::size_t>(page) : 4096;
    if (bytes > SIZE_MAX - page_bytes) {
        return fail(ENOMEM);
    }
    const std::size_t size = (bytes + page_bytes - 1) / page_bytes * page_bytes;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return fail(errno);
    }
    return MmapArea(static_cast<char*>(p), size);
}

void MmapArea::reset() noexcept {
    if (data_ != nullptr) {
        (void)::munmap(data_, size_);
    }
    data_ = nullptr;
    size_ = 0;
}

}  // namespace xrayd
