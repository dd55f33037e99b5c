// Re-sending part of a batch: a smaller batch rebuilt from chosen documents of a sent one.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <span>
#include <string_view>

#include <xrayd/batch/batch.h>
#include <xrayd/common/result.h>
#include <xrayd/queue/memory_budget.h>

namespace xrayd {

enum class RebuildErrc {
    bad_body,       // the body is not {"TraceSegmentDocuments":[<strings>]} (cannot happen for
                    // a body Batch built)
    bad_index,      // an index is past the batch's documents
    out_of_memory,  // the parser could not allocate
};

[[nodiscard]] std::string_view to_string(RebuildErrc errc) noexcept;

struct RebuiltBatch {
    Batch batch;           // sealed; empty when no document could be kept
    std::size_t lost = 0;  // documents given up: the budget had no room for them
};

// Builds a sealed batch of the documents at `indexes` (positions in `original`'s body, which
// are also positions in original.segments()) of the sealed batch `original`, byte-identical
// and with their ids and trace ids. The documents are read back from the body with `parser`,
// then `original` is released (emptied) BEFORE the new batch is charged, so the documents are
// never charged twice: room taken by another thread meanwhile is the only way to lose one
// (counted in `lost`; the caller counts it as dropped_buffer_full).
// On error `original` is unchanged. Duplicate indexes are taken once each time they appear.
// Never throws; allocates (a cold path: only X-Ray's retryable unprocessed segments get here).
// Threads: whoever owns `original`; `parser` is that thread's.
[[nodiscard]] Result<RebuiltBatch, RebuildErrc> rebuild_batch(simdjson::dom::parser& parser,
                                                              Batch& original,
                                                              std::span<const std::size_t> indexes,
                                                              MemoryBudget& budget) noexcept;

}  // namespace xrayd
