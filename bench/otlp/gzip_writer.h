// GzipWriter: one zlib deflate stream (gzip wrapper) reused for every body, so compressing a
// request allocates nothing once the output buffer has grown to its size.
#pragma once

#include <zlib.h>

#include <memory>
#include <string>
#include <string_view>

namespace xrayd::bench {

// Owns a z_stream. Move-only; one thread at a time.
class GzipWriter {
public:
    GzipWriter() noexcept = default;  // empty, like a moved-from one
    // An empty writer (false) when zlib cannot initialise (out of memory, bad level). The
    // z_stream lives on the heap because zlib's state points back at it: it must not move.
    [[nodiscard]] static GzipWriter create(int level) {
        auto stream = std::make_unique<z_stream>();
        *stream = z_stream{};
        if (deflateInit2(stream.get(), level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            return GzipWriter(nullptr);
        }
        return GzipWriter(stream.release());
    }

    explicit operator bool() const noexcept { return stream_ != nullptr; }

    // `data` as one gzip member in `out` (resized to fit; throws std::bad_alloc only). False on
    // a zlib error; `out` is then unspecified.
    [[nodiscard]] bool compress(std::string_view data, std::string& out) {
        if (!stream_ || deflateReset(stream_.get()) != Z_OK) {
            return false;
        }
        const uLong bound = deflateBound(stream_.get(), data.size());
        if (out.size() < bound) {
            out.resize(bound);
        }
        stream_->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
        stream_->avail_in = static_cast<uInt>(data.size());
        stream_->next_out = reinterpret_cast<Bytef*>(out.data());
        stream_->avail_out = static_cast<uInt>(out.size());
        const int rc = deflate(stream_.get(), Z_FINISH);
        out.resize(stream_->total_out);
        return rc == Z_STREAM_END;
    }

private:
    struct Deleter {
        void operator()(z_stream* stream) const noexcept {
            (void)deflateEnd(stream);
            delete stream;
        }
    };
    explicit GzipWriter(z_stream* stream) noexcept : stream_(stream) {}
    std::unique_ptr<z_stream, Deleter> stream_;
};

}  // namespace xrayd::bench
