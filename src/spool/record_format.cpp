// Spool file header and record framing: encode, check, and read with recovery.
#include <xrayd/spool/record_format.h>

#include <zlib.h>

#include <array>
#include <cstring>

#include <fmt/format.h>

namespace xrayd::spool {

namespace {

constexpr std::string_view magic{"xrspool\n", 8};
constexpr std::string_view marker{"XRS1", 4};  // as bytes on disk

void put_u32(char* at, std::uint32_t v) noexcept {
    for (int i = 0; i < 4; ++i) {
        at[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    }
}

void put_u64(char* at, std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i) {
        at[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    }
}

std::uint32_t get_u32(const char* at) noexcept {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) {
        v = (v << 8) | static_cast<unsigned char>(at[i]);
    }
    return v;
}

std::uint64_t get_u64(const char* at) noexcept {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | static_cast<unsigned char>(at[i]);
    }
    return v;
}

// zlib's CRC-32 of the length and arrival fields (8..20 of the header) and the payload.
std::uint32_t record_crc(const char* length_and_arrival, std::string_view payload) noexcept {
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(length_and_arrival), 12);
    // max_record_payload fits zlib's uInt, so one call covers the payload.
    crc = crc32(crc, reinterpret_cast<const Bytef*>(payload.data()),
                static_cast<uInt>(payload.size()));
    return static_cast<std::uint32_t>(crc);
}

// Whether an intact record starts at `offset`; fills `out` when it does.
bool record_at(std::string_view body, std::size_t offset, SpoolRecord& out) noexcept {
    if (body.size() - offset < record_header_size) {
        return false;
    }
    const char* h = body.data() + offset;
    if (std::memcmp(h, marker.data(), marker.size()) != 0) {
        return false;
    }
    const std::uint32_t length = get_u32(h + 4);
    if (length > max_record_payload ||
        body.size() - offset - record_header_size < static_cast<std::size_t>(length)) {
        return false;
    }
    const std::string_view payload = body.substr(offset + record_header_size, length);
    if (record_crc(h + 4, payload) != get_u32(h + 16)) {
        return false;
    }
    out.arrival_unix_ns = get_u64(h + 8);
    out.payload = payload;
    out.offset = offset;
    return true;
}

}  // namespace

std::string file_header() {
    std::string header(file_header_size, '\0');
    std::memcpy(header.data(), magic.data(), magic.size());
    put_u32(header.data() + 8, format_version);
    return header;
}

Result<void, std::string> check_file_header(std::string_view file) noexcept {
    try {
        if (file.size() < file_header_size) {
            return fail(fmt::format("{} bytes, shorter than the {}-byte spool file header",
                                    file.size(), file_header_size));
        }
        if (file.substr(0, magic.size()) != magic) {
            return fail(std::string("not an xrayd spool file (no \"xrspool\" header)"));
        }
        const std::uint32_t version = get_u32(file.data() + 8);
        if (version != format_version) {
            return fail(fmt::format("spool format version {}, but this xrayd reads version {}{}",
                                    version, format_version,
                                    version > format_version ? " (written by a newer xrayd)" : ""));
        }
        return {};
    } catch (...) {
        return fail(std::string("out of memory"));
    }
}

bool append_record(std::string& out, std::uint64_t arrival_unix_ns, std::string_view payload) {
    if (payload.size() > max_record_payload) {
        return false;
    }
    std::array<char, record_header_size> header{};
    std::memcpy(header.data(), marker.data(), marker.size());
    put_u32(header.data() + 4, static_cast<std::uint32_t>(payload.size()));
    put_u64(header.data() + 8, arrival_unix_ns);
    put_u32(header.data() + 16, record_crc(header.data() + 4, payload));
    out.reserve(out.size() + header.size() + payload.size());
    out.append(header.data(), header.size());
    out.append(payload);
    return true;
}

ReadStatus RecordReader::next(SpoolRecord& out) noexcept {
    if (offset_ == body_.size()) {
        return ReadStatus::end;
    }
    if (record_at(body_, offset_, out)) {
        offset_ += record_header_size + out.payload.size();
        valid_end_ = offset_;
        return ReadStatus::record;
    }
    // No intact record here: the next marker that starts one ends a damaged stretch; with none,
    // the rest is a torn tail.
    for (std::size_t at = body_.find(marker, offset_ + 1); at != std::string_view::npos;
         at = body_.find(marker, at + 1)) {
        if (record_at(body_, at, out)) {
            ++corrupt_regions_;
            corrupt_bytes_ += at - offset_;
            offset_ = at + record_header_size + out.payload.size();
            valid_end_ = offset_;
            return ReadStatus::record;
        }
    }
    return ReadStatus::torn_tail;
}

}  // namespace xrayd::spool
