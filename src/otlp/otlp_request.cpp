// OTLP trace export requests: gunzip, and the choice of reader by encoding (the readers are
// otlp_protobuf_reader.cpp and otlp_json_reader.cpp).
#include <xrayd/otlp/otlp_request.h>

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <new>
#include <optional>
#include <span>

#include "gzip_writer.h"
#include "request_readers.h"

namespace xrayd::otlp {

std::string_view to_string(OtlpErrc errc) noexcept {
    switch (errc) {
    case OtlpErrc::gzip_invalid: return "the body is not valid gzip";
    case OtlpErrc::gzip_too_large: return "the body inflates past the size limit";
    case OtlpErrc::too_large: return "the body is too large";
    case OtlpErrc::truncated: return "a protobuf field is truncated";
    case OtlpErrc::malformed: return "a protobuf field tag is malformed";
    case OtlpErrc::wrong_wire_type: return "an OTLP field has the wrong protobuf wire type";
    case OtlpErrc::too_deep: return "protobuf messages are nested too deep";
    case OtlpErrc::json_invalid: return "the body is not valid JSON";
    case OtlpErrc::json_not_object: return "the JSON body is not an object";
    case OtlpErrc::json_wrong_type:
        return "resourceSpans, scopeSpans or spans is not an array of objects";
    case OtlpErrc::json_duplicate_key: return "resourceSpans, scopeSpans or spans appears twice";
    case OtlpErrc::out_of_memory: return "out of memory";
    }
    return "invalid request";
}

namespace {

// Owns a zlib inflate stream.
class Inflater {
public:
    Inflater() noexcept = default;
    Inflater(const Inflater&) = delete;
    Inflater& operator=(const Inflater&) = delete;
    ~Inflater() {
        if (ready_) {
            inflateEnd(&stream_);
        }
    }
    // windowBits 15 + 16: gzip framing only (header and CRC-32 checked by zlib).
    [[nodiscard]] bool init() noexcept {
        ready_ = inflateInit2(&stream_, 15 + 16) == Z_OK;
        return ready_;
    }
    z_stream& stream() noexcept { return stream_; }

private:
    z_stream stream_{};
    bool ready_ = false;
};

// The size a gzip body's last member says it inflates to (its ISIZE trailer, RFC 1952: the
// length mod 2^32), 0 when the body is too short to have one. A hint for the first allocation
// only: zlib checks it against what it inflated, and the limit is enforced as before. With it,
// a single-member body (what every SDK sends) is inflated into one buffer of the right size
// instead of a doubling series of zero-filled copies.
std::size_t inflated_size_hint(std::string_view body) noexcept {
    constexpr std::size_t smallest_member = 20;  // 10-byte header, empty deflate block, trailer
    if (body.size() < smallest_member) {
        return 0;
    }
    const auto* isize = reinterpret_cast<const unsigned char*>(body.data() + body.size() - 4);
    return std::size_t{isize[0]} | std::size_t{isize[1]} << 8 | std::size_t{isize[2]} << 16 |
           std::size_t{isize[3]} << 24;
}

}  // namespace

Result<std::string, OtlpErrc> gunzip(std::string_view body, std::size_t max_output) noexcept {
    try {
        Inflater inflater;
        if (!inflater.init()) {
            return fail(OtlpErrc::out_of_memory);
        }
        z_stream& zs = inflater.stream();
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
        zs.avail_in = 0;
        std::size_t in_left = body.size();
        std::string out;
        // The output grows geometrically but never past max_output + 1: one byte more than the
        // limit is how "too large" is told from "exactly at the limit".
        const std::size_t cap = max_output < SIZE_MAX ? max_output + 1 : max_output;
        std::size_t produced = 0;
        // One byte past the hint, so that an exact hint never needs a second buffer.
        out.resize(std::min(cap, inflated_size_hint(body) + 1));
        while (true) {
            if (zs.avail_in == 0 && in_left > 0) {
                const std::size_t step = std::min<std::size_t>(in_left, UINT_MAX);
                zs.avail_in = static_cast<uInt>(step);
                in_left -= step;
            }
            if (produced == out.size()) {
                if (out.size() >= cap) {
                    return fail(OtlpErrc::gzip_too_large);
                }
                out.resize(std::min(cap, std::max<std::size_t>(out.size() * 2, 16 * 1024)));
            }
            const std::size_t room = std::min<std::size_t>(out.size() - produced, UINT_MAX);
            zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
            zs.avail_out = static_cast<uInt>(room);
            const int rc = inflate(&zs, Z_NO_FLUSH);
            produced += room - zs.avail_out;
            if (produced > max_output) {
                return fail(OtlpErrc::gzip_too_large);
            }
            if (rc == Z_STREAM_END) {
                if (zs.avail_in == 0 && in_left == 0) {
                    break;
                }
                if (inflateReset(&zs) != Z_OK) {  // the next gzip member
                    return fail(OtlpErrc::gzip_invalid);
                }
                continue;
            }
            if (rc == Z_MEM_ERROR) {
                return fail(OtlpErrc::out_of_memory);
            }
            if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0) {
                return fail(OtlpErrc::gzip_invalid);  // the input ends inside a member
            }
            if (rc != Z_OK && rc != Z_BUF_ERROR) {
                return fail(OtlpErrc::gzip_invalid);
            }
        }
        out.resize(produced);
        return out;
    } catch (const std::bad_alloc&) {
        return fail(OtlpErrc::out_of_memory);
    }
}

GzipWriter::~GzipWriter() {
    if (ready_) {
        deflateEnd(&stream_);
    }
}

Result<std::string, OtlpErrc> GzipWriter::compress(std::string_view body) noexcept {
    // windowBits 15 + 16: a gzip header and trailer around the deflate stream; memLevel 8 is
    // zlib's default.
    if (!ready_) {
        if (deflateInit2(&stream_, level_, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            return fail(OtlpErrc::out_of_memory);
        }
        ready_ = true;
    } else if (deflateReset(&stream_) != Z_OK) {
        return fail(OtlpErrc::out_of_memory);
    }
    try {
        // deflateBound is for one call with the whole input: bodies here are at most a few MB,
        // within uInt, so one deflate(Z_FINISH) does it.
        if (body.size() > UINT_MAX / 2) {
            return fail(OtlpErrc::out_of_memory);
        }
        const std::size_t bound = deflateBound(&stream_, static_cast<uLong>(body.size()));
        if (scratch_.size() < bound) {
            scratch_.resize(bound);
        }
        stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
        stream_.avail_in = static_cast<uInt>(body.size());
        stream_.next_out = reinterpret_cast<Bytef*>(scratch_.data());
        stream_.avail_out = static_cast<uInt>(bound);
        if (deflate(&stream_, Z_FINISH) != Z_STREAM_END) {
            return fail(OtlpErrc::out_of_memory);
        }
        std::string out(scratch_.data(), bound - stream_.avail_out);
        if (scratch_.size() > kept_scratch_bytes) {
            std::string().swap(scratch_);  // a rare large request: its buffer is not kept
        }
        return out;
    } catch (const std::bad_alloc&) {
        return fail(OtlpErrc::out_of_memory);
    }
}

Result<std::string, OtlpErrc> gzip(std::string_view body, int level) noexcept {
    GzipWriter writer(level);
    return writer.compress(body);
}

Result<OtlpExportRequest, OtlpErrc> read_export_request(std::string_view body,
                                                        OtlpEncoding encoding,
                                                        const OtlpLimits& limits) noexcept {
    try {
        return encoding == OtlpEncoding::protobuf ? read_protobuf(body, limits)
                                                  : read_json(body, limits);
    } catch (const std::bad_alloc&) {
        return fail(OtlpErrc::out_of_memory);
    }
}

}  // namespace xrayd::otlp
