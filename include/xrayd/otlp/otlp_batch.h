// OtlpBatch: several accepted export requests of one encoding merged into one request for X-Ray,
// within X-Ray's per-request limits, with an exact span count.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <xrayd/otlp/otlp_request.h>

namespace xrayd::otlp {

// Merges requests without re-encoding their spans:
//   protobuf: the resource_spans fields of each request one after another (a repeated field
//             may come in any number of pieces: the result is one ExportTraceServiceRequest);
//   JSON:     {"resourceSpans":[ + the requests' elements joined by , + ]}.
// JSON stays JSON (X-Ray takes both encodings): turning it into protobuf would need the whole
// OTLP/JSON mapping (hex ids, int64 strings, enums by name) written by hand.
// Limits: a request is added only if the batch stays within max_request_bytes and max_spans.
// A request over a limit on its own is taken by an empty batch all the same and goes out alone
// (the caller seals the batch at once): it is never dropped silently here, and X-Ray's answer
// to it is counted like any other.
// Ownership: the batch copies the bytes it takes; a body need not outlive try_add.
// Thread-safety: one thread at a time.
class OtlpBatch {
public:
    OtlpBatch(OtlpEncoding encoding, const OtlpLimits& limits) noexcept
        : encoding_(encoding), limits_(limits) {}

    // Adds the parts of `request` (as read_export_request returned it from `body`). False, and
    // the batch unchanged, when they would take it past a limit: seal it and start another.
    // A request without accepted spans adds nothing and returns true.
    // IMPORTANT: the request must have the batch's encoding; one of another encoding is never
    // added (false), and a new batch of this encoding will not take it either. May throw
    // std::bad_alloc, like any growth of a string.
    [[nodiscard]] bool try_add(std::string_view body, const OtlpExportRequest& request);

    // The bytes the request body will have (JSON: with its closing brackets).
    [[nodiscard]] std::size_t size() const noexcept;
    [[nodiscard]] std::size_t spans() const noexcept { return spans_; }
    [[nodiscard]] std::size_t requests() const noexcept { return requests_; }
    [[nodiscard]] std::size_t resource_spans() const noexcept { return resource_spans_; }
    [[nodiscard]] bool empty() const noexcept { return resource_spans_ == 0; }
    // True when one request alone is past the limits: seal the batch now.
    [[nodiscard]] bool oversize() const noexcept;
    [[nodiscard]] OtlpEncoding encoding() const noexcept { return encoding_; }

    // The merged request body, and an empty batch again. An empty batch gives an empty
    // ExportTraceServiceRequest (protobuf: no bytes; JSON: {"resourceSpans":[]}).
    // May throw std::bad_alloc.
    [[nodiscard]] std::string take();

private:
    OtlpEncoding encoding_;
    OtlpLimits limits_;
    std::string body_;  // protobuf: the fields; JSON: the elements, joined by commas
    std::size_t spans_ = 0;
    std::size_t requests_ = 0;
    std::size_t resource_spans_ = 0;
};

}  // namespace xrayd::otlp
