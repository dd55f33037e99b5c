// RequestTemplate: an ExportTraceServiceRequest body of realistic spans, built once, whose ids and
// times are rewritten in place for every request, so the generator's cost per request is a few
// stores per span and not a protobuf or JSON encoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace xrayd::bench {

enum class BodyEncoding {
    protobuf,  // application/x-protobuf
    json,      // application/json (OTLP/JSON: hex ids, 64-bit integers as strings)
};

// What the SDKs' BatchSpanProcessor sends by default: one resource (service.name and a few
// attributes), one instrumentation scope, 512 spans; the spans are traces of eight spans
// (a server root and its children: internal, database, cache, HTTP client, messaging, cloud API,
// internal), each with ~6 attributes of mixed types, one in eight with an exception event.
class RequestTemplate {
public:
    // Builds the body. `spans` >= 1. Throws std::bad_alloc only.
    [[nodiscard]] static RequestTemplate build(BodyEncoding encoding, std::size_t spans,
                                               std::uint64_t run_id);

    // The body with placeholder ids and times: copy it once per buffer, then refresh() it.
    [[nodiscard]] const std::string& text() const noexcept { return text_; }
    [[nodiscard]] std::size_t spans() const noexcept { return slots_.size(); }
    [[nodiscard]] BodyEncoding encoding() const noexcept { return encoding_; }

    // Writes into `body` (a copy of text(), same size) ids unique to request number `request`
    // of this run (trace id = run id, request and trace number; span ids from the request and
    // span number) and span times ending around `now_unix_ns`. Touches only the id and time
    // bytes, so the layout and size never change. Thread: any, on distinct bodies.
    void refresh(std::string& body, std::uint64_t request,
                 std::uint64_t now_unix_ns) const noexcept;

private:
    // Where one span's variable bytes sit in text_ (npos: the span has no such field), and the
    // times relative to the request's time base.
    struct Slot {
        std::size_t trace_id = 0;
        std::size_t span_id = 0;
        std::size_t parent_id = 0;
        std::size_t start = 0;
        std::size_t end = 0;
        std::size_t event_time = 0;
        std::uint32_t span_number = 0;    // in the request
        std::uint32_t parent_number = 0;  // in the request (when parent_id is not npos)
        std::uint32_t trace_number = 0;   // in the request
        std::uint64_t start_offset_ns = 0;
        std::uint64_t duration_ns = 0;
    };
    friend class TemplateWriter;  // request_template.cpp: fills text_ and slots_

    BodyEncoding encoding_ = BodyEncoding::protobuf;
    std::uint64_t run_id_ = 0;
    std::string text_;
    std::vector<Slot> slots_;
};

}  // namespace xrayd::bench
