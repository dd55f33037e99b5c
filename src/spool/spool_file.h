// Private to the spool's implementation (spool.cpp, spool_recovery.cpp, spool_replay.cpp): a
// file's state, its name, the record payload of a segment entry, and the failure log.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include <xrayd/common/fd_io.h>
#include <xrayd/spool/record_format.h>
#include <xrayd/spool/spool.h>

namespace xrayd::spool {

// A record's payload is one segment entry: u8 id length, u8 trace id length, the id, the trace
// id, then the document as received. The ids ride along so that a segment read back can be
// batched (and named when X-Ray refuses it) without parsing its document again.
inline constexpr std::size_t entry_prefix = 2;

// A spool file's name, without allocating (the data plane names files when it logs).
struct FileName {
    char text[16]{};
    [[nodiscard]] const char* c_str() const noexcept { return text; }
};

inline FileName file_name(std::uint32_t number) noexcept {
    FileName name;
    (void)std::snprintf(name.text, sizeof name.text, "%08x.xrs", number);
    return name;
}

// Reads `length` bytes at `offset` into `out`; the errno on failure, EIO for a short file.
inline int read_at(int fd, std::uint64_t offset, std::size_t length, std::string& out) noexcept {
    try {
        out.resize(length);
    } catch (...) {
        return ENOMEM;
    }
    return pread_all(fd, offset, out.data(), length);
}

struct Spool::File {
    std::uint32_t number = 0;
    UniqueFd fd;
    std::uint64_t size = 0;  // bytes in the file (what flush() wrote; not the pending ones)
    std::uint64_t read_offset = file_header_size;
    std::uint64_t records = 0;       // records it holds: found at start, or appended
    std::uint64_t records_read = 0;  // read back, or dropped unread (expired, damaged)
    std::uint64_t outstanding = 0;   // read back and not yet settled
    std::uint64_t returned = 0;      // read back, then let go unsettled: they stay on disk
    bool writing = false;
    bool foreign = false;  // another format version: never read, written or deleted
};

template <typename... Args>
void Spool::log_write_failure(int err, fmt::format_string<Args...> what, Args&&... args) noexcept {
    std::uint64_t suppressed = 0;
    if (!failure_log_.allow(Clock::now(), &suppressed)) {
        return;
    }
    try {
        const std::string text = fmt::format(what, std::forward<Args>(args)...);
        if (suppressed > 0) {
            logger_.error("Spool {}: {}: {} ({} similar failures not logged)", path(), text,
                          std::strerror(err), suppressed);
        } else {
            logger_.error("Spool {}: {}: {}", path(), text, std::strerror(err));
        }
    } catch (...) {
        // Out of memory: the failure is still counted where it happened.
    }
}

}  // namespace xrayd::spool
