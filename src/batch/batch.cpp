// Batch: builds the PutTraceSegments body and keeps its bytes charged to the MemoryBudget.
#include <xrayd/batch/batch.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace xrayd {
namespace {

constexpr std::string_view body_prefix = R"({"TraceSegmentDocuments":[)";
constexpr std::string_view body_suffix = "]}";
static_assert(Batch::framing_size == body_prefix.size() + body_suffix.size());

// For each byte: 0 when it is copied as is, otherwise the character that follows the backslash
// ('u' for the \u00XX form).
constexpr std::array<char, 256> escape_table = [] {
    std::array<char, 256> table{};
    for (std::size_t c = 0; c < 0x20; ++c) {
        table[c] = 'u';
    }
    table['\n'] = 'n';
    table['\r'] = 'r';
    table['\t'] = 't';
    table['\b'] = 'b';
    table['\f'] = 'f';
    table['"'] = '"';
    table['\\'] = '\\';
    return table;
}();

constexpr std::string_view hex_digits = "0123456789abcdef";

constexpr std::uint64_t ones = 0x0101010101010101ull;
constexpr std::uint64_t highs = 0x8080808080808080ull;

// Whether any of the 8 bytes in `word` needs escaping (< 0x20, '"' or '\\'). SWAR: exact for
// "any byte", so a false answer lets the caller copy all 8 bytes at once.
constexpr bool needs_escape(std::uint64_t word) noexcept {
    const std::uint64_t control = (word - ones * 0x20) & ~word & highs;
    const std::uint64_t q = word ^ (ones * '"');
    const std::uint64_t b = word ^ (ones * '\\');
    return (control | ((q - ones) & ~q & highs) | ((b - ones) & ~b & highs)) != 0;
}

inline std::uint64_t load_word(const char* p) noexcept {
    std::uint64_t word = 0;
    std::memcpy(&word, p, sizeof word);
    return word;
}

// Bytes `text` takes once escaped.
std::size_t escaped_size(std::string_view text) noexcept {
    std::size_t size = text.size();
    const char* p = text.data();
    const char* const end = p + text.size();
    while (p != end) {
        if (end - p >= 8 && !needs_escape(load_word(p))) [[likely]] {
            p += 8;
            continue;
        }
        const char* const stop = end - p >= 8 ? p + 8 : end;
        for (; p != stop; ++p) {
            const char escape = escape_table[static_cast<unsigned char>(*p)];
            if (escape != 0) {
                size += escape == 'u' ? 5 : 1;
            }
        }
    }
    return size;
}

// Writes `text` escaped at `dst`, which has room for escaped_size(text) bytes; returns the end.
char* write_escaped(char* dst, std::string_view text) noexcept {
    const char* p = text.data();
    const char* const end = p + text.size();
    while (p != end) {
        if (end - p >= 8 && !needs_escape(load_word(p))) [[likely]] {
            std::memcpy(dst, p, 8);
            dst += 8;
            p += 8;
            continue;
        }
        const char* const stop = end - p >= 8 ? p + 8 : end;
        for (; p != stop; ++p) {
            const auto byte = static_cast<unsigned char>(*p);
            const char escape = escape_table[byte];
            if (escape == 0) {
                *dst++ = static_cast<char>(byte);
            } else if (escape == 'u') {
                const char seq[6] = {'\\', 'u', '0', '0', hex_digits[byte >> 4],
                                     hex_digits[byte & 0xf]};
                std::memcpy(dst, seq, sizeof seq);
                dst += sizeof seq;
            } else {
                dst[0] = '\\';
                dst[1] = escape;
                dst += 2;
            }
        }
    }
    return dst;
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view text) {
    const std::size_t old_size = out.size();
    out.resize(old_size + escaped_size(text));
    char* const end = write_escaped(out.data() + old_size, text);
    out.resize(static_cast<std::size_t>(end - out.data()));  // a no-op: sizes agree
}

std::size_t Batch::appended_size(std::string_view document) noexcept {
    return escaped_size(document) + 3;  // two quotes and a comma
}

Batch::~Batch() { release_storage(); }

Batch::Batch(Batch&& other) noexcept
    : budget_(other.budget_),
      body_(std::exchange(other.body_, PoolBlock{nullptr, 0, BlockPool::unpooled})),
      body_size_(std::exchange(other.body_size_, 0)),
      refs_(std::exchange(other.refs_, PoolBlock{nullptr, 0, BlockPool::unpooled})),
      ref_count_(std::exchange(other.ref_count_, 0)),
      charged_(std::exchange(other.charged_, 0)),
      expected_body_bytes_(other.expected_body_bytes_),
      oldest_received_(other.oldest_received_),
      sealed_(std::exchange(other.sealed_, false)) {}

Batch& Batch::operator=(Batch&& other) noexcept {
    if (this != &other) {
        release_storage();
        budget_ = other.budget_;
        body_ = std::exchange(other.body_, PoolBlock{nullptr, 0, BlockPool::unpooled});
        body_size_ = std::exchange(other.body_size_, 0);
        refs_ = std::exchange(other.refs_, PoolBlock{nullptr, 0, BlockPool::unpooled});
        ref_count_ = std::exchange(other.ref_count_, 0);
        charged_ = std::exchange(other.charged_, 0);
        expected_body_bytes_ = other.expected_body_bytes_;
        oldest_received_ = other.oldest_received_;
        sealed_ = std::exchange(other.sealed_, false);
    }
    return *this;
}

bool Batch::grow(PoolBlock& block, std::size_t used, std::size_t needed) noexcept {
    if (needed <= block.size) {
        return true;
    }
    // Geometric growth keeps a batch of many documents linear in copying (the pool's classes
    // are powers of two anyway; this matters past its largest class).
    const PoolBlock bigger = budget_->batch_blocks().acquire(std::max(needed, block.size * 2));
    if (bigger.data == nullptr) {
        return false;
    }
    if (used != 0) {
        std::memcpy(bigger.data, block.data, used);
    }
    budget_->batch_blocks().recycle(block);
    block = bigger;
    return true;
}

bool Batch::append(const Segment& segment) noexcept {
    static_assert(std::is_trivially_copyable_v<SegmentRef> &&
                  std::is_trivially_destructible_v<SegmentRef>);
    if (sealed_) {
        return false;
    }
    const std::string_view document = segment.body();
    const bool first = ref_count_ == 0;
    // The first document brings the prefix instead of a comma.
    const std::size_t growth = appended_size(document) + (first ? body_prefix.size() - 1 : 0);
    // Room for the suffix too, so that seal() never allocates.
    const std::size_t needed = body_size_ + growth + body_suffix.size();
    const std::size_t first_body = body_.data == nullptr ? expected_body_bytes_ : 0;
    // Room for a typical batch's refs at once (50 refs take 2.6 KiB: one 4 KiB block).
    constexpr std::size_t initial_refs = 64;
    const std::size_t refs_needed =
        (ref_count_ == 0 ? initial_refs : ref_count_ + 1) * sizeof(SegmentRef);
    // Both blocks first: if either cannot be had, the batch is unchanged (a block that did
    // grow keeps its contents and is simply bigger).
    if (!grow(body_, body_size_, std::max(needed, first_body)) ||
        !grow(refs_, ref_count_ * sizeof(SegmentRef), refs_needed)) {
        charge_held();
        return false;
    }

    char* out = static_cast<char*>(body_.data) + body_size_;
    if (first) {
        out = std::copy(body_prefix.begin(), body_prefix.end(), out);
    } else {
        *out++ = ',';
    }
    *out++ = '"';
    out = write_escaped(out, document);
    *out = '"';
    body_size_ += growth;

    SegmentRef* ref = std::construct_at(static_cast<SegmentRef*>(refs_.data) + ref_count_);
    ++ref_count_;
    const std::string_view id = segment.id();
    const std::string_view trace_id = segment.trace_id();
    ref->id_len = static_cast<std::uint8_t>(std::min(id.size(), segment_id_max));
    ref->trace_id_len =
        static_cast<std::uint8_t>(std::min(trace_id.size(), segment_trace_id_max));
    std::copy_n(id.data(), ref->id_len, ref->id);
    std::copy_n(trace_id.data(), ref->trace_id_len, ref->trace_id);

    if (first || segment.received_at() < oldest_received_) {
        oldest_received_ = segment.received_at();
    }

    // Charge what the batch now holds, even past the limit: the caller releases the segment's
    // own charge by destroying it.
    charge_held();
    return true;
}

void Batch::seal() noexcept {
    if (sealed_) {
        return;
    }
    sealed_ = true;
    if (body_size_ == 0) {
        if (!grow(body_, 0, framing_size)) {
            return;  // body() stays empty
        }
        std::memcpy(body_.data, body_prefix.data(), body_prefix.size());
        body_size_ = body_prefix.size();
        charge_held();
    }
    // Room reserved by append() or just above.
    std::memcpy(static_cast<char*>(body_.data) + body_size_, body_suffix.data(),
                body_suffix.size());
    body_size_ += body_suffix.size();
}

void Batch::charge_held() noexcept {
    const std::size_t held = body_.size + refs_.size;
    if (held > charged_) {
        budget_->force_reserve(held - charged_);
    } else if (held < charged_) {
        budget_->release(charged_ - held);
    }
    charged_ = held;
}

void Batch::release_storage() noexcept {
    BlockPool& pool = budget_->batch_blocks();
    pool.recycle(body_);
    pool.recycle(refs_);
    body_ = PoolBlock{nullptr, 0, BlockPool::unpooled};
    refs_ = PoolBlock{nullptr, 0, BlockPool::unpooled};
    body_size_ = 0;
    ref_count_ = 0;
    if (charged_ != 0) {
        budget_->release(charged_);
        charged_ = 0;
    }
}

}  // namespace xrayd
