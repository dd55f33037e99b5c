// Whole writes and reads on file descriptors: the loops around write(2) and pread(2) that a
// short transfer or EINTR needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace xrayd {

// Writes all of `data`, retrying after EINTR and short writes. 0, or the errno of the failure
// (what was written before it is in `*written` when given, which is incremented, never reset).
[[nodiscard]] int write_all(int fd, std::string_view data,
                            std::uint64_t* written = nullptr) noexcept;

// Reads exactly `length` bytes at `offset` into `out`. 0, or the errno of the failure; EIO when
// the file ends first.
[[nodiscard]] int pread_all(int fd, std::uint64_t offset, char* out, std::size_t length) noexcept;

}  // namespace xrayd
