// The spool's on-disk format (issue #15): a spool file is a file header and then records
// appended one after another, each one segment with its arrival time, framed so that a reader
// finds every intact record after a crash: a torn last record is told apart and cut, and a
// damaged one is skipped and counted, never fatal.
//
// File header (16 bytes): the magic "xrspool\n", the format version (u32), 4 reserved zero bytes.
// Record (20 bytes + payload), every integer little-endian:
//   marker  u32  "XRS1": where a record starts, so a reader can find the next one after damage
//   length  u32  payload bytes, at most max_record_payload
//   arrival u64  when the segment arrived, Unix nanoseconds (X-Ray's age limit is wall time)
//   crc     u32  zlib's CRC-32 of length, arrival and payload
//   payload      the segment document as received
// Ideas taken: Kafka's log segments (append-only files, a CRC per entry, recovery that truncates
// at the last valid entry) and Vector's disk buffer (a version in every file, so a newer format
// is refused instead of misread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <xrayd/common/result.h>

namespace xrayd::spool {

inline constexpr std::uint32_t format_version = 1;
inline constexpr std::size_t file_header_size = 16;
inline constexpr std::size_t record_header_size = 20;
// A segment fits a UDP datagram (64 KiB); the margin leaves room for OTLP spans (200 KB each).
inline constexpr std::size_t max_record_payload = 256 * 1024;

// The header that starts every spool file of this format version.
[[nodiscard]] std::string file_header();

// Checks the start of a spool file. The error says what is wrong: too short, not a spool file,
// or written by a newer xrayd (its version and the one this build reads). Never throws.
[[nodiscard]] Result<void, std::string> check_file_header(std::string_view file) noexcept;

// Appends one record to `out`. False (and `out` unchanged) when the payload is longer than
// max_record_payload. May throw std::bad_alloc, like any growth of a string.
[[nodiscard]] bool append_record(std::string& out, std::uint64_t arrival_unix_ns,
                                 std::string_view payload);

// One intact record; `payload` points into the reader's bytes.
struct SpoolRecord {
    std::uint64_t arrival_unix_ns = 0;
    std::string_view payload;
    std::size_t offset = 0;  // where its header starts, from the start of the reader's bytes
};

enum class ReadStatus {
    record,     // `out` holds the next intact record
    end,        // every byte was read: the records end where the bytes end
    torn_tail,  // the bytes from valid_end() on hold no intact record: a write cut short by a
                // crash (or damage at the very end, which looks the same); cut them off
};

// Reads the records of a spool file's body (the bytes after its header), in order. Damage in
// the middle (a flipped bit, a broken length) is skipped up to the next intact record and
// counted in corrupt_regions() and corrupt_bytes(). Never throws; allocates nothing.
// Thread-safety: one thread; the bytes must outlive the reader and every record it returned.
class RecordReader {
public:
    explicit RecordReader(std::string_view body) noexcept : body_(body) {}

    [[nodiscard]] ReadStatus next(SpoolRecord& out) noexcept;

    // The offset just past the last intact record (or 0): where a torn tail starts.
    [[nodiscard]] std::size_t valid_end() const noexcept { return valid_end_; }
    // Damaged stretches skipped so far, and their bytes.
    [[nodiscard]] std::size_t corrupt_regions() const noexcept { return corrupt_regions_; }
    [[nodiscard]] std::size_t corrupt_bytes() const noexcept { return corrupt_bytes_; }

private:
    std::string_view body_;
    std::size_t offset_ = 0;
    std::size_t valid_end_ = 0;
    std::size_t corrupt_regions_ = 0;
    std::size_t corrupt_bytes_ = 0;
};

}  // namespace xrayd::spool
