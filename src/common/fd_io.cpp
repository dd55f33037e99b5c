// Whole writes and reads on file descriptors.
#include <xrayd/common/fd_io.h>

#include <sys/types.h>
#include <unistd.h>

#include <cerrno>

namespace xrayd {

int write_all(int fd, std::string_view data, std::uint64_t* written) noexcept {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        if (written != nullptr) {
            *written += static_cast<std::uint64_t>(n);
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

int pread_all(int fd, std::uint64_t offset, char* out, std::size_t length) noexcept {
    std::size_t got = 0;
    while (got < length) {
        const ssize_t n = ::pread(fd, out + got, length - got, static_cast<off_t>(offset + got));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        if (n == 0) {
            return EIO;
        }
        got += static_cast<std::size_t>(n);
    }
    return 0;
}

}  // namespace xrayd
