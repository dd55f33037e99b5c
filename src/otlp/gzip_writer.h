// Private to otlp/: GzipWriter, a gzip compressor kept across requests by the exporter thread.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <string>
#include <string_view>

#include <xrayd/common/result.h>
#include <xrayd/otlp/otlp_request.h>

namespace xrayd::otlp {

// One zlib deflate stream, reset between bodies, and one output buffer that only grows: once
// warm, compressing a body allocates only its result, of exactly the compressed size. zlib's
// state (~270 KB at memLevel 8) and a zero-filled buffer of deflateBound() bytes were allocated
// and freed for every request before, and their page faults were most of the exporter's
// variable cost (bench/README.md, OTLP). One per thread; never throws.
class GzipWriter {
public:
    explicit GzipWriter(int level) noexcept : level_(level) {}
    ~GzipWriter();
    GzipWriter(const GzipWriter&) = delete;
    GzipWriter& operator=(const GzipWriter&) = delete;

    // `body` as one gzip member (Content-Encoding: gzip). Errors: out_of_memory only.
    [[nodiscard]] Result<std::string, OtlpErrc> compress(std::string_view body) noexcept;

private:
    // The output buffer kept for the next body, at most: what merged requests at everyday rates
    // need (5000 spans/s: 0.3-0.7 MB); a larger one is freed after use.
    static constexpr std::size_t kept_scratch_bytes = std::size_t{1} << 20;

    int level_;
    z_stream stream_{};
    bool ready_ = false;  // deflateInit2 succeeded; deflateReset before each later body
    std::string scratch_;
};

}  // namespace xrayd::otlp
