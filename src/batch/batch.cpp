// Batch: builds the PutTraceSegments body and keeps its bytes charged to the MemoryBudget.
#include <xrayd/batch/batch.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <new>
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

Batch::~Batch() { release_charge(); }

Batch::Batch(Batch&& other) noexcept
    : budget_(other.budget_),
      body_(std::move(other.body_)),
      refs_(std::move(other.refs_)),
      charged_(std::exchange(other.charged_, 0)),
      oldest_received_(other.oldest_received_),
      sealed_(std::exchange(other.sealed_, false)) {
    other.body_.clear();
    other.refs_.clear();
}

Batch& Batch::operator=(Batch&& other) noexcept {
    if (this != &other) {
        release_charge();
        budget_ = other.budget_;
        body_ = std::move(other.body_);
        refs_ = std::move(other.refs_);
        charged_ = std::exchange(other.charged_, 0);
        oldest_received_ = other.oldest_received_;
        sealed_ = std::exchange(other.sealed_, false);
        other.body_.clear();
        other.refs_.clear();
    }
    return *this;
}

bool Batch::append(const Segment& segment) noexcept {
    if (sealed_) {
        return false;
    }
    const std::string_view document = segment.body();
    const bool first = refs_.empty();
    // The first document brings the prefix instead of a comma.
    const std::size_t growth = appended_size(document) + (first ? body_prefix.size() - 1 : 0);
    // Room for the suffix too, so that seal() never allocates.
    const std::size_t needed = body_.size() + growth + body_suffix.size();
    const std::size_t old_size = body_.size();
    bool ref_added = false;
    try {
        refs_.emplace_back();  // strong guarantee: unchanged if it throws
        ref_added = true;
        if (needed > body_.capacity()) {
            // Geometric growth keeps a batch of many documents linear in copying.
            body_.reserve(std::max(needed, body_.capacity() * 2));
        }
        // Within the reserved capacity from here on: nothing below allocates.
        body_.resize(old_size + growth);
        char* out = body_.data() + old_size;
        if (first) {
            out = std::copy(body_prefix.begin(), body_prefix.end(), out);
        } else {
            *out++ = ',';
        }
        *out++ = '"';
        out = write_escaped(out, document);
        *out = '"';
    } catch (...) {
        // Only std::bad_alloc can get here; undo so the batch is unchanged.
        body_.resize(old_size);  // shrinking: cannot throw
        if (ref_added) {
            refs_.pop_back();
        }
        return false;
    }

    SegmentRef& ref = refs_.back();
    const std::string_view id = segment.id();
    const std::string_view trace_id = segment.trace_id();
    ref.id_len = static_cast<std::uint8_t>(std::min(id.size(), segment_id_max));
    ref.trace_id_len = static_cast<std::uint8_t>(std::min(trace_id.size(), segment_trace_id_max));
    std::copy_n(id.data(), ref.id_len, ref.id);
    std::copy_n(trace_id.data(), ref.trace_id_len, ref.trace_id);

    if (first || segment.received_at() < oldest_received_) {
        oldest_received_ = segment.received_at();
    }

    // Charge what the batch now holds on the heap, growing only: the bytes stay charged until
    // the batch is destroyed (the caller releases the segment's own charge by destroying it).
    const std::size_t held = body_.capacity() + refs_.capacity() * sizeof(SegmentRef);
    if (held > charged_) {
        budget_->force_reserve(held - charged_);
        charged_ = held;
    }
    return true;
}

void Batch::seal() noexcept {
    if (sealed_) {
        return;
    }
    sealed_ = true;
    try {
        if (body_.empty()) {
            body_.reserve(framing_size);
            body_.append(body_prefix);
        }
        body_.append(body_suffix);  // capacity reserved by append() or just above
    } catch (...) {
        body_.clear();
        return;
    }
    const std::size_t held = body_.capacity() + refs_.capacity() * sizeof(SegmentRef);
    if (held > charged_) {
        budget_->force_reserve(held - charged_);
        charged_ = held;
    }
}

void Batch::release_charge() noexcept {
    if (charged_ != 0) {
        budget_->release(charged_);
        charged_ = 0;
    }
}

}  // namespace xrayd
