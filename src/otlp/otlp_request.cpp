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

Result<std::string, OtlpErrc> gzip(std::string_view body, int level) noexcept {
    z_stream zs{};
    // windowBits 15 + 16: a gzip header and trailer around the deflate stream; memLevel 8 is
    // zlib's default.
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return fail(OtlpErrc::out_of_memory);
    }
    struct End {
        z_stream& zs;
        ~End() { deflateEnd(&zs); }
    } end{zs};
    try {
        // deflateBound is for one call with the whole input: bodies here are at most a few MB,
        // within uInt, so one deflate(Z_FINISH) does it.
        if (body.size() > UINT_MAX / 2) {
            return fail(OtlpErrc::out_of_memory);
        }
        std::string out(deflateBound(&zs, static_cast<uLong>(body.size())), '\0');
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
        zs.avail_in = static_cast<uInt>(body.size());
        zs.next_out = reinterpret_cast<Bytef*>(out.data());
        zs.avail_out = static_cast<uInt>(out.size());
        if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
            return fail(OtlpErrc::out_of_memory);
        }
        out.resize(zs.total_out);
        return out;
    } catch (const std::bad_alloc&) {
        return fail(OtlpErrc::out_of_memory);
    }
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
