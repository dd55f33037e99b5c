// Batch: builds the PutTraceSegments body and keeps its bytes charged to the MemoryBudget.
#include <xrayd/batch/batch.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// The scan for bytes that need escaping works on blocks: 16 bytes with SSE2 (every x86-64),
// else 8 bytes in a 64-bit word (SWAR). first_escape() gives the index of the first byte of the
// block at `p` that needs escaping, or block_bytes when none does.
#if defined(__SSE2__)
constexpr std::size_t block_bytes = 16;

inline std::size_t first_escape(const char* p) noexcept {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    const __m128i backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    // Unsigned v <= 0x1f, i.e. max(v, 0x1f) == 0x1f (a signed compare would flag UTF-8 bytes).
    const __m128i limit = _mm_set1_epi8(0x1f);
    const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(v, limit), limit);
    const auto mask = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)));
    return mask == 0 ? block_bytes : static_cast<std::size_t>(std::countr_zero(mask));
}
#else
constexpr std::size_t block_bytes = 8;
constexpr std::uint64_t ones = 0x0101010101010101ull;
constexpr std::uint64_t highs = 0x8080808080808080ull;

inline std::size_t first_escape(const char* p) noexcept {
    std::uint64_t word = 0;
    std::memcpy(&word, p, sizeof word);
    if constexpr (std::endian::native == std::endian::big) {
        word = __builtin_bswap64(word);  // the first byte in the low bits, as below assumes
    }
    // SWAR "has byte less than / equal to": a byte's high bit is set for every byte that
    // matches, and borrows can only add false matches ABOVE a true one, so the lowest set bit
    // is exact (all this needs).
    const std::uint64_t control = (word - ones * 0x20) & ~word & highs;
    const std::uint64_t q = word ^ (ones * '"');
    const std::uint64_t b = word ^ (ones * '\\');
    const std::uint64_t mask = control | ((q - ones) & ~q & highs) | ((b - ones) & ~b & highs);
    return mask == 0 ? block_bytes : static_cast<std::size_t>(std::countr_zero(mask)) / 8;
}
#endif

// Bytes the escape of `byte` takes (it needs escaping): \X or \u00XX.
inline std::size_t escape_length(unsigned char byte) noexcept {
    return escape_table[byte] == 'u' ? 6 : 2;
}

// Bytes `text` takes once escaped.
std::size_t escaped_size(std::string_view text) noexcept {
    std::size_t size = text.size();
    const char* p = text.data();
    const char* const end = p + text.size();
    while (end - p >= static_cast<std::ptrdiff_t>(block_bytes)) {
        const std::size_t k = first_escape(p);
        p += k;
        if (k != block_bytes) {
            size += escape_length(static_cast<unsigned char>(*p)) - 1;
            ++p;
        }
    }
    for (; p != end; ++p) {
        const char escape = escape_table[static_cast<unsigned char>(*p)];
        if (escape != 0) {
            size += escape == 'u' ? 5 : 1;
        }
    }
    return size;
}

struct EscapeProgress {
    std::size_t read;
    std::size_t written;
};

// Escapes `text` into `dst`, one pass, as far as `room` bytes allow: returns how much of `text`
// was read and how many bytes were written. Stops early (read < text.size()) only when the next
// byte or its escape does not fit; never writes at or past dst + room. Clean blocks are copied
// whole, and a block with an escape is copied whole too and then overwritten from the escape
// on, so a document costs about one step per block plus one per escaped byte.
EscapeProgress escape_into(std::string_view text, char* dst, std::size_t room) noexcept {
    const char* p = text.data();
    const char* const end = p + text.size();
    char* out = dst;
    char* const out_end = dst + room;
    constexpr auto block = static_cast<std::ptrdiff_t>(block_bytes);
    while (p != end) {
        if (end - p >= block && out_end - out >= block) [[likely]] {
            std::memcpy(out, p, block_bytes);
            const std::size_t k = first_escape(p);
            p += k;
            out += k;
            if (k == block_bytes) {
                continue;
            }
        } else if (escape_table[static_cast<unsigned char>(*p)] == 0) {
            if (out == out_end) {
                break;
            }
            *out++ = *p++;
            continue;
        }
        // *p needs escaping.
        const auto byte = static_cast<unsigned char>(*p);
        const char escape = escape_table[byte];
        if (escape == 'u') {
            if (out_end - out < 6) {
                break;
            }
            const char seq[6] = {
                '\\', 'u', '0', '0', hex_digits[byte >> 4], hex_digits[byte & 0xf]};
            std::memcpy(out, seq, sizeof seq);
            out += sizeof seq;
        } else {
            if (out_end - out < 2) {
                break;
            }
            out[0] = '\\';
            out[1] = escape;
            out += 2;
        }
        ++p;
    }
    return {static_cast<std::size_t>(p - text.data()), static_cast<std::size_t>(out - dst)};
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view text) {
    const std::size_t old_size = out.size();
    // Room for the text unescaped; what escapes need on top is measured only if it runs out.
    out.resize(old_size + text.size());
    std::size_t read = 0;
    std::size_t written = 0;
    for (;;) {
        const EscapeProgress step = escape_into(text.substr(read), out.data() + old_size + written,
                                                out.size() - old_size - written);
        read += step.read;
        written += step.written;
        if (read == text.size()) {
            break;
        }
        out.resize(old_size + written + escaped_size(text.substr(read)));
    }
    out.resize(old_size + written);
}

std::size_t Batch::appended_size(std::string_view document) noexcept {
    return escaped_size(document) + 3;  // two quotes and a comma
}

Batch::~Batch() {
    release_storage();
}

Batch::Batch(Batch&& other) noexcept
    : budget_(other.budget_),
      body_(std::exchange(other.body_, PoolBlock{nullptr, 0, BlockPool::unpooled})),
      body_size_(std::exchange(other.body_size_, 0)),
      refs_(std::exchange(other.refs_, PoolBlock{nullptr, 0, BlockPool::unpooled})),
      ref_count_(std::exchange(other.ref_count_, 0)),
      charged_(std::exchange(other.charged_, 0)),
      expected_body_bytes_(other.expected_body_bytes_),
      oldest_received_(other.oldest_received_),
      origin_(std::exchange(other.origin_, 0)),
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
        origin_ = std::exchange(other.origin_, 0);
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
    // The first document brings the prefix instead of a comma; then the opening quote.
    const std::size_t lead = first ? body_prefix.size() + 1 : 2;
    // The closing quote, and room for the suffix so that seal() never allocates.
    constexpr std::size_t tail = 1 + body_suffix.size();
    // Escaping is one pass into the block: reserve for the document unescaped (a lower bound),
    // and only if the escapes do not fit in the block's slack measure the rest exactly and grow.
    const std::size_t needed = body_size_ + lead + document.size() + tail;
    const std::size_t first_body = body_.data == nullptr ? expected_body_bytes_ : 0;
    // Room for a typical batch's refs at once (50 refs take 2.6 KiB: one 4 KiB block).
    constexpr std::size_t initial_refs = 64;
    const std::size_t refs_needed =
        (ref_count_ == 0 ? initial_refs : ref_count_ + 1) * sizeof(SegmentRef);
    // Both blocks first: if either cannot be had, the batch is unchanged (a block that did
    // grow keeps its contents and is simply bigger; bytes past body_size_ are scratch).
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
    *out = '"';
    std::size_t written = lead;
    std::size_t read = 0;
    for (;;) {
        char* const start = static_cast<char*>(body_.data) + body_size_;
        const EscapeProgress step = escape_into(document.substr(read), start + written,
                                                body_.size - body_size_ - written - tail);
        read += step.read;
        written += step.written;
        if (read == document.size()) {
            break;
        }
        const std::size_t rest = escaped_size(document.substr(read));
        if (!grow(body_, body_size_ + written, body_size_ + written + rest + tail)) {
            charge_held();
            return false;
        }
    }
    static_cast<char*>(body_.data)[body_size_ + written] = '"';
    body_size_ += written + 1;

    SegmentRef* ref = std::construct_at(static_cast<SegmentRef*>(refs_.data) + ref_count_);
    ++ref_count_;
    const std::string_view id = segment.id();
    const std::string_view trace_id = segment.trace_id();
    ref->id_len = static_cast<std::uint8_t>(std::min(id.size(), segment_id_max));
    ref->trace_id_len = static_cast<std::uint8_t>(std::min(trace_id.size(), segment_trace_id_max));
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
