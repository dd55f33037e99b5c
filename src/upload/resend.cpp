// Re-sending part of a batch.
#include <xrayd/upload/resend.h>

#include <vector>

#include <xrayd/queue/segment.h>

namespace xrayd {

std::string_view to_string(RebuildErrc errc) noexcept {
    switch (errc) {
    case RebuildErrc::bad_body: return "request body is not a TraceSegmentDocuments array";
    case RebuildErrc::bad_index: return "segment index outside the batch";
    case RebuildErrc::out_of_memory: return "out of memory";
    }
    return "unknown";
}

Result<RebuiltBatch, RebuildErrc> rebuild_batch(simdjson::dom::parser& parser, Batch& original,
                                                std::span<const std::size_t> indexes,
                                                MemoryBudget& budget) noexcept {
    try {
        const std::string_view body = original.body();
        simdjson::dom::element root;
        if (parser.parse(body.data(), body.size(), true).get(root) != simdjson::SUCCESS) {
            return fail(RebuildErrc::bad_body);
        }
        simdjson::dom::array documents;
        if (root["TraceSegmentDocuments"].get_array().get(documents) != simdjson::SUCCESS) {
            return fail(RebuildErrc::bad_body);
        }
        std::vector<std::string_view> all;
        all.reserve(original.segment_count());
        for (simdjson::dom::element item : documents) {
            std::string_view text;
            if (item.get_string().get(text) != simdjson::SUCCESS) {
                return fail(RebuildErrc::bad_body);
            }
            all.push_back(text);
        }
        const auto refs = original.segments();
        if (all.size() != refs.size()) {
            return fail(RebuildErrc::bad_body);
        }
        struct Kept {
            std::string_view document;  // unescaped, in the parser's buffer
            SegmentRef ref;
        };
        std::vector<Kept> kept;
        kept.reserve(indexes.size());
        for (const std::size_t i : indexes) {
            if (i >= all.size()) {
                return fail(RebuildErrc::bad_index);
            }
            kept.push_back(Kept{all[i], refs[i]});
        }
        const TimePoint received = original.oldest_received();
        const std::uint32_t origin = original.origin();

        // The strings live in the parser, not in the body: the original's charge can go first.
        original = Batch(budget);
        RebuiltBatch out{Batch(budget), 0};
        for (const Kept& k : kept) {
            SegmentPtr segment =
                Segment::make(budget, k.document, k.ref.id_view(), k.ref.trace_id_view(), received);
            if (!segment || !out.batch.append(*segment)) {
                ++out.lost;
            }
        }
        out.batch.seal();
        out.batch.set_origin(origin);
        return out;
    } catch (...) {
        return fail(RebuildErrc::out_of_memory);
    }
}

}  // namespace xrayd
