// Batch: up to 50 segment documents framed as one PutTraceSegments request body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <xrayd/common/time.h>
#include <xrayd/queue/block_pool.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/queue/segment.h>

namespace xrayd {

// What the uploader needs to report a segment X-Ray did not process, once its bytes are gone.
struct SegmentRef {
    char id[segment_id_max]{};
    char trace_id[segment_trace_id_max]{};
    std::uint8_t id_len = 0;
    std::uint8_t trace_id_len = 0;

    [[nodiscard]] std::string_view id_view() const noexcept { return {id, id_len}; }
    [[nodiscard]] std::string_view trace_id_view() const noexcept {
        return {trace_id, trace_id_len};
    }
};

// The body `{"TraceSegmentDocuments":["<doc>",...]}` with each document JSON-string-escaped
// (the document's bytes are otherwise forwarded verbatim). The body and the segment refs live
// in two blocks from the budget's batch pool (MemoryBudget::batch_blocks()), charged to the
// budget by their block size for as long as the batch lives; destroying the batch, on any
// thread (the uploader's), gives the blocks back for the next batches, so a steady stream of
// batches allocates nothing. Move-only; used by one thread at a time. A moved-from batch is
// empty, unsealed and charges nothing; it may be reused.
class Batch {
public:
    // `expected_body_bytes`: the body size this batch will probably reach (the Batcher passes
    // the last batch's), taken as the first body block's size so the body is rarely moved to
    // a bigger block while it grows. 0: start small.
    explicit Batch(MemoryBudget& budget, std::size_t expected_body_bytes = 0) noexcept
        : budget_(&budget), expected_body_bytes_(expected_body_bytes) {}
    ~Batch();
    Batch(Batch&& other) noexcept;
    Batch& operator=(Batch&& other) noexcept;
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

    // Escapes the segment's document into the body and records its id and trace id. The
    // caller then destroys the segment: its bytes now live (and are charged) here.
    // False only if memory could not be allocated; the batch is then unchanged.
    [[nodiscard]] bool append(const Segment& segment) noexcept;

    // Closes the JSON. After seal(), body() is a complete request body and append() is refused.
    // Never allocates once a document was appended; sealing an empty batch takes a block and,
    // if that fails, leaves body() empty.
    void seal() noexcept;
    [[nodiscard]] bool sealed() const noexcept { return sealed_; }

    [[nodiscard]] std::string_view body() const noexcept {
        return {static_cast<const char*>(body_.data), body_size_};
    }
    [[nodiscard]] std::size_t segment_count() const noexcept { return ref_count_; }
    [[nodiscard]] bool empty() const noexcept { return ref_count_ == 0; }
    [[nodiscard]] std::span<const SegmentRef> segments() const noexcept {
        return {static_cast<const SegmentRef*>(refs_.data), ref_count_};
    }
    // When the oldest segment in the batch was received (for linger and latency).
    [[nodiscard]] TimePoint oldest_received() const noexcept { return oldest_received_; }

    // Where the batch's segments came from: 0 for segments received in this run and held in
    // memory, else the number of the spool file they were read back from (the spool settles
    // that file's records when the batch reaches its outcome). Moves with the batch.
    [[nodiscard]] std::uint32_t origin() const noexcept { return origin_; }
    void set_origin(std::uint32_t origin) noexcept { origin_ = origin; }

    // Bytes the body grows by when `document` is appended (escaping, quotes, comma).
    [[nodiscard]] static std::size_t appended_size(std::string_view document) noexcept;

    // Bytes of the framing around the documents: `{"TraceSegmentDocuments":[` and `]}`. An
    // empty sealed body is this long; a sealed body with documents d1..dn is
    // framing_size + sum(appended_size(di)) - 1 (n - 1 commas).
    static constexpr std::size_t framing_size = 28;

private:
    // Makes `block` hold at least `needed` bytes, keeping its first `used` bytes. False (block
    // unchanged) when no block could be had.
    [[nodiscard]] bool grow(PoolBlock& block, std::size_t used, std::size_t needed) noexcept;
    // Charges or releases the difference between the blocks' sizes and what is charged.
    void charge_held() noexcept;
    void release_storage() noexcept;

    MemoryBudget* budget_;
    PoolBlock body_{nullptr, 0, BlockPool::unpooled};
    std::size_t body_size_ = 0;
    PoolBlock refs_{nullptr, 0, BlockPool::unpooled};  // SegmentRef array
    std::size_t ref_count_ = 0;
    std::size_t charged_ = 0;
    std::size_t expected_body_bytes_ = 0;
    TimePoint oldest_received_{};
    std::uint32_t origin_ = 0;
    bool sealed_ = false;
};

// Appends `text` to `out` escaped as the inside of a JSON string: `"` and `\` get a backslash,
// control characters below 0x20 become \n \r \t \b \f or \u00XX; every other byte (UTF-8
// included) passes through unchanged. Throws std::bad_alloc only if `out` must grow and cannot:
// reserve first (as Batch does) to use it on the data plane.
void append_json_escaped(std::string& out, std::string_view text);

}  // namespace xrayd
