// Tests for Batch: the PutTraceSegments body, JSON string escaping and budget charging.
#include <xrayd/batch/batch.h>

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <xrayd/common/time.h>
#include <xrayd/queue/memory_budget.h>
#include <xrayd/queue/segment.h>

namespace xrayd {
namespace {

constexpr std::string_view prefix = R"({"TraceSegmentDocuments":[)";

std::string escaped(std::string_view text) {
    std::string out;
    append_json_escaped(out, text);
    return out;
}

// A strict reader of what Batch writes: parses the body and unescapes every document. nullopt
// if the body is not exactly `{"TraceSegmentDocuments":["...",...]}` with valid escapes.
std::optional<std::vector<std::string>> parse_body(std::string_view body) {
    if (body.substr(0, prefix.size()) != prefix || body.size() < prefix.size() + 2 ||
        body.substr(body.size() - 2) != "]}") {
        return std::nullopt;
    }
    std::string_view rest = body.substr(prefix.size(), body.size() - prefix.size() - 2);
    std::vector<std::string> docs;
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        if (c >= 'A' && c <= 'F') {
            return c - 'A' + 10;
        }
        return -1;
    };
    while (!rest.empty()) {
        if (!docs.empty()) {
            if (rest.front() != ',') {
                return std::nullopt;
            }
            rest.remove_prefix(1);
        }
        if (rest.empty() || rest.front() != '"') {
            return std::nullopt;
        }
        rest.remove_prefix(1);
        std::string doc;
        bool closed = false;
        while (!rest.empty()) {
            const char c = rest.front();
            rest.remove_prefix(1);
            if (c == '"') {
                closed = true;
                break;
            }
            if (static_cast<unsigned char>(c) < 0x20) {
                return std::nullopt;  // raw control characters are not valid JSON
            }
            if (c != '\\') {
                doc.push_back(c);
                continue;
            }
            if (rest.empty()) {
                return std::nullopt;
            }
            const char e = rest.front();
            rest.remove_prefix(1);
            switch (e) {
            case '"': doc.push_back('"'); break;
            case '\\': doc.push_back('\\'); break;
            case '/': doc.push_back('/'); break;
            case 'n': doc.push_back('\n'); break;
            case 'r': doc.push_back('\r'); break;
            case 't': doc.push_back('\t'); break;
            case 'b': doc.push_back('\b'); break;
            case 'f': doc.push_back('\f'); break;
            case 'u': {
                // Batch only writes \u00XX (bytes below 0x20).
                if (rest.size() < 4 || rest[0] != '0' || rest[1] != '0' || hex(rest[2]) < 0 ||
                    hex(rest[3]) < 0) {
                    return std::nullopt;
                }
                doc.push_back(static_cast<char>(hex(rest[2]) * 16 + hex(rest[3])));
                rest.remove_prefix(4);
                break;
            }
            default: return std::nullopt;
            }
        }
        if (!closed) {
            return std::nullopt;
        }
        docs.push_back(std::move(doc));
    }
    return docs;
}

SegmentPtr make_segment(MemoryBudget& budget, std::string_view body, std::string_view id = "id",
                        std::string_view trace_id = "trace", TimePoint received = TimePoint{}) {
    return Segment::make(budget, body, id, trace_id, received);
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_CASE("append_json_escaped escapes quote, backslash and the short control escapes") {
    CHECK(escaped(R"(a"b)") == R"(a\"b)");
    CHECK(escaped(R"(a\b)") == R"(a\\b)");
    CHECK(escaped("\n\r\t\b\f") == R"(\n\r\t\b\f)");
}

TEST_CASE("append_json_escaped writes other control characters as \\u00XX") {
    CHECK(escaped(std::string_view("\0", 1)) == R"(\u0000)");
    CHECK(escaped("\x01\x1f") == R"(\u0001\u001f)");
    CHECK(escaped("\x0b") == R"(\u000b)");
}

TEST_CASE("append_json_escaped passes UTF-8, DEL, slash and plain ASCII through unchanged") {
    const std::string_view utf8 = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE4\xB8\xAD";
    CHECK(escaped(utf8) == utf8);
    CHECK(escaped("\x7f") == "\x7f");
    CHECK(escaped("a/b <x> {}[]:,") == "a/b <x> {}[]:,");
    CHECK(escaped("") == "");
}

TEST_CASE("append_json_escaped appends to what the string already holds") {
    std::string out = "head:";
    append_json_escaped(out, "\"x\"");
    CHECK(out == R"(head:\"x\")");
}

// The escaping rule byte by byte, as the spec states it: the reference the fast path is held to.
std::string reference_escaped(std::string_view text) {
    constexpr std::string_view hex = "0123456789abcdef";
    std::string out;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (byte < 0x20) {
                out += "\\u00";
                out += hex[byte >> 4];
                out += hex[byte & 0xf];
            } else {
                out += c;
            }
        }
    }
    return out;
}

// Documents that put every kind of byte at every offset of the scan's 8- and 16-byte blocks and
// of the tail after them, plus pseudo-random ones dense in escapes (fixed seed).
std::vector<std::string> escaping_corpus() {
    std::vector<std::string> docs;
    const std::string_view specials("\"\\\n\x01\x1f\x00\x7f\x80\xff /", 11);
    for (std::size_t length = 0; length <= 40; ++length) {
        for (std::size_t at = 0; at < length; ++at) {
            for (const char c : specials) {
                std::string doc(length, 'a');
                doc[at] = c;
                docs.push_back(std::move(doc));
            }
        }
    }
    std::uint32_t state = 12345;
    auto next = [&state] {
        state = state * 1664525u + 1013904223u;
        return state >> 24;
    };
    for (int i = 0; i < 500; ++i) {
        std::string doc(next() * 4 + next() % 7, ' ');
        for (char& c : doc) {
            const std::uint32_t r = next();
            c = r < 40 ? specials[r % specials.size()] : static_cast<char>(r);
        }
        docs.push_back(std::move(doc));
    }
    return docs;
}

TEST_CASE("append_json_escaped and appended_size agree with the byte-by-byte rule everywhere") {
    for (const std::string& doc : escaping_corpus()) {
        CAPTURE(doc.size());
        const std::string expected = reference_escaped(doc);
        REQUIRE(escaped(doc) == expected);
        REQUIRE(Batch::appended_size(doc) == expected.size() + 3);
        std::string out = "x";
        append_json_escaped(out, doc);
        REQUIRE(out == "x" + expected);
    }
}

TEST_CASE("Batch bodies round-trip escape-dense documents across body block growth") {
    MemoryBudget budget(64u << 20);
    const std::vector<std::string> docs = escaping_corpus();
    // Batches of varying length, each starting small, so documents land at every offset of
    // body blocks and escapes often overflow a block's slack mid-document.
    std::size_t next = 0;
    for (std::size_t per_batch = 1; next < docs.size(); per_batch = per_batch % 37 + 1) {
        Batch batch(budget);
        std::vector<std::string> expected;
        std::size_t expected_size = Batch::framing_size - 1;
        for (std::size_t i = 0; i < per_batch && next < docs.size(); ++i, ++next) {
            SegmentPtr s = make_segment(budget, docs[next]);
            REQUIRE(s != nullptr);
            REQUIRE(batch.append(*s));
            expected.push_back(docs[next]);
            expected_size += Batch::appended_size(docs[next]);
        }
        batch.seal();
        CHECK(batch.body().size() == expected_size);
        const auto parsed = parse_body(batch.body());
        REQUIRE(parsed.has_value());
        CHECK(*parsed == expected);
    }
    CHECK(budget.used() == 0);
}

TEST_CASE("appended_size is the escaped length plus two quotes and a comma") {
    for (const std::string_view doc : {std::string_view(""), std::string_view(R"({"a":"b\n"})"),
                                       std::string_view("\x01\"\\"), std::string_view("plain")}) {
        CHECK(Batch::appended_size(doc) == escaped(doc).size() + 3);
    }
}

TEST_CASE("An empty sealed batch is a body with no documents") {
    MemoryBudget budget(1 << 20);
    {
        Batch batch(budget);
        CHECK(batch.empty());
        batch.seal();
        CHECK(batch.sealed());
        CHECK(batch.body() == R"({"TraceSegmentDocuments":[]})");
        CHECK(batch.body().size() == Batch::framing_size);
    }
    CHECK(budget.used() == 0);
}

TEST_CASE("Batch frames documents as escaped strings separated by commas, in append order") {
    MemoryBudget budget(1 << 20);
    Batch batch(budget);
    SegmentPtr a = make_segment(budget, R"({"id":"a"})", "aaaa", "1-a");
    SegmentPtr b = make_segment(budget, R"({"id":"b","x":"1\n2"})", "bbbb", "1-b");
    REQUIRE(batch.append(*a));
    REQUIRE(batch.append(*b));
    batch.seal();
    CHECK(batch.body() ==
          R"({"TraceSegmentDocuments":["{\"id\":\"a\"}","{\"id\":\"b\",\"x\":\"1\\n2\"}"]})");
    CHECK(batch.segment_count() == 2);
    REQUIRE(batch.segments().size() == 2);
    CHECK(batch.segments()[0].id_view() == "aaaa");
    CHECK(batch.segments()[0].trace_id_view() == "1-a");
    CHECK(batch.segments()[1].id_view() == "bbbb");
    CHECK(batch.segments()[1].trace_id_view() == "1-b");
}

TEST_CASE("A sealed body's size is framing plus the appended sizes minus one comma") {
    MemoryBudget budget(1 << 20);
    Batch batch(budget);
    std::size_t expected = Batch::framing_size - 1;
    for (const std::string_view doc : {R"({"a":1})", "{\"b\":\"\\t\x01\"}", "{}"}) {
        SegmentPtr s = make_segment(budget, doc);
        REQUIRE(batch.append(*s));
        expected += Batch::appended_size(doc);
    }
    batch.seal();
    CHECK(batch.body().size() == expected);
}

TEST_CASE("Batch refuses append after seal and sealing twice changes nothing") {
    MemoryBudget budget(1 << 20);
    Batch batch(budget);
    SegmentPtr s = make_segment(budget, "{}");
    REQUIRE(batch.append(*s));
    batch.seal();
    const std::string body(batch.body());
    CHECK_FALSE(batch.append(*s));
    batch.seal();
    CHECK(batch.body() == body);
    CHECK(batch.segment_count() == 1);
}

TEST_CASE("Batch records the oldest receive time of its segments") {
    MemoryBudget budget(1 << 20);
    Batch batch(budget);
    const TimePoint t0 = TimePoint{} + std::chrono::seconds(100);
    SegmentPtr a = make_segment(budget, "{}", "a", "t", t0 + std::chrono::milliseconds(5));
    SegmentPtr b = make_segment(budget, "{}", "b", "t", t0);
    SegmentPtr c = make_segment(budget, "{}", "c", "t", t0 + std::chrono::milliseconds(9));
    REQUIRE(batch.append(*a));
    CHECK(batch.oldest_received() == t0 + std::chrono::milliseconds(5));
    REQUIRE(batch.append(*b));
    REQUIRE(batch.append(*c));
    CHECK(batch.oldest_received() == t0);
}

TEST_CASE("Batch charges its bytes to the budget and returns them when destroyed") {
    MemoryBudget budget(1 << 20);
    {
        Batch batch(budget);
        SegmentPtr s = make_segment(budget, std::string(1000, 'x'));
        const std::size_t segment_bytes = s->charged_bytes();
        REQUIRE(batch.append(*s));
        CHECK(budget.used() >= segment_bytes + 1000);  // both hold the document for now
        s.reset();
        CHECK(budget.used() >= 1000 + 3 + prefix.size());  // the body is charged
        batch.seal();
    }
    CHECK(budget.used() == 0);
}

TEST_CASE("Batch appends past the budget limit: data already held is never lost") {
    MemoryBudget budget(sizeof(Segment) + 100);
    Batch batch(budget);
    SegmentPtr s = make_segment(budget, std::string(100, '"'));  // escapes to 200 bytes
    REQUIRE(s != nullptr);
    REQUIRE(batch.append(*s));
    CHECK(budget.used() > budget.limit());
    s.reset();
    batch.seal();
    auto docs = parse_body(batch.body());
    REQUIRE(docs.has_value());
    CHECK(docs->at(0) == std::string(100, '"'));
}

TEST_CASE("Moving a batch transfers its charge; move-assign releases the target's own") {
    MemoryBudget budget(1 << 20);
    SegmentPtr s = make_segment(budget, std::string(500, 'a'));
    const std::size_t segment_bytes = s->charged_bytes();
    Batch a(budget);
    REQUIRE(a.append(*s));
    const std::size_t with_a = budget.used();

    Batch b(std::move(a));
    CHECK(budget.used() == with_a);
    CHECK(b.segment_count() == 1);
    CHECK(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract

    Batch c(budget);
    REQUIRE(c.append(*s));
    CHECK(budget.used() > with_a);
    c = std::move(b);  // c's own body is released, b's charge moves over
    CHECK(budget.used() == with_a);
    CHECK(c.segment_count() == 1);
    s.reset();
    CHECK(budget.used() == with_a - segment_bytes);
    { Batch sink = std::move(c); }
    CHECK(budget.used() == 0);
}

TEST_CASE("A moved-from batch can be reused for a new batch") {
    MemoryBudget budget(1 << 20);
    Batch a(budget);
    SegmentPtr s = make_segment(budget, R"({"n":1})");
    REQUIRE(a.append(*s));
    a.seal();
    Batch b(std::move(a));
    CHECK_FALSE(a.sealed());  // NOLINT(bugprone-use-after-move)
    REQUIRE(a.append(*s));
    a.seal();
    CHECK(a.body() == R"({"TraceSegmentDocuments":["{\"n\":1}"]})");
    CHECK(b.body() == a.body());
}

TEST_CASE("Every sample segment document round-trips through a batch body byte for byte") {
    const std::filesystem::path root = std::filesystem::path(XRAYD_TEST_DATA_DIR) / "segment-docs";
    std::vector<std::string> originals;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
        if (entry.is_regular_file() && entry.path().extension() == ".json") {
            originals.push_back(read_file(entry.path()));
        }
    }
    REQUIRE(originals.size() >= 10);
    // Escaping stress on top of the real samples: every control byte, quotes, UTF-8.
    std::string every_byte;
    for (int c = 0; c < 256; ++c) {
        every_byte.push_back(static_cast<char>(c));
    }
    originals.push_back(every_byte);

    MemoryBudget budget(64u << 20);
    {
        Batch batch(budget);
        std::size_t expected_size = Batch::framing_size - 1;
        for (const std::string& doc : originals) {
            SegmentPtr s = make_segment(budget, doc);
            REQUIRE(s != nullptr);
            REQUIRE(batch.append(*s));
            expected_size += Batch::appended_size(doc);
        }
        batch.seal();
        CHECK(batch.body().size() == expected_size);
        const auto docs = parse_body(batch.body());
        REQUIRE(docs.has_value());
        REQUIRE(docs->size() == originals.size());
        for (std::size_t i = 0; i < originals.size(); ++i) {
            CAPTURE(i);
            CHECK((*docs)[i] == originals[i]);
        }
    }
    CHECK(budget.used() == 0);
}

}  // namespace
}  // namespace xrayd
