// Tests for Validator: the Go header table (spec §3.2), every real sample, and broken variants.
#include <xrayd/ingest/validator.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>
#include <simdjson.h>

// Counts every operator new in this test binary, to prove validate() does not allocate.
// Kept out of line: inlined into simdjson's new[] and delete[], g++ 12 at -O1 sees malloc() and
// free() paired with new[] and delete[] and warns of a mismatch (-Wmismatched-new-delete).
namespace {
std::atomic<std::size_t> allocation_count{0};
}  // namespace

[[gnu::noinline]] void* operator new(std::size_t n) {
    allocation_count.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) {
        return p;
    }
    throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t n) {
    return operator new(n);
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
    std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p) noexcept {
    std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
// The nothrow forms too (simdjson allocates with them): every new and delete of this binary
// must come from the same pair, or a sanitizer sees malloc'd memory freed by another allocator.
[[gnu::noinline]] void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    allocation_count.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n == 0 ? 1 : n);
}
[[gnu::noinline]] void* operator new[](std::size_t n, const std::nothrow_t& tag) noexcept {
    return operator new(n, tag);
}
[[gnu::noinline]] void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}

// Found by argument-dependent lookup, so failed checks print verdicts by name; static, since
// ADL does not look into an anonymous namespace's members.
namespace xrayd {
static doctest::String toString(Verdict v) {
    return std::string(to_string(v)).c_str();
}
}  // namespace xrayd

namespace {

using xrayd::Validation;
using xrayd::Validator;
using xrayd::Verdict;

namespace fs = std::filesystem;

const fs::path samples_dir = fs::path(XRAYD_TEST_DATA_DIR) / "segment-docs";
constexpr std::string_view good_header = R"({"format":"json","version":1})";

// A datagram in a buffer shaped like a receive slot: datagram_padding bytes after the end,
// filled with leftovers (quotes, braces, LFs) as a reused slot would hold, so that nothing may
// depend on the padding's content.
class Slot {
public:
    explicit Slot(std::string_view datagram)
        : bytes_(datagram.begin(), datagram.end()), size_(datagram.size()) {
        bytes_.resize(size_ + xrayd::datagram_padding, '"');
        for (std::size_t i = size_; i < bytes_.size(); i += 3) {
            bytes_[i] = (i % 2 == 0) ? '}' : '\n';
        }
    }
    [[nodiscard]] const char* data() const noexcept { return bytes_.data(); }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool contains(std::string_view v) const noexcept {
        return v.data() >= bytes_.data() && v.data() + v.size() <= bytes_.data() + size_;
    }

private:
    std::vector<char> bytes_;
    std::size_t size_;
};

// A Validation with its views copied, so it outlives the Slot.
struct Outcome {
    Verdict verdict;
    std::string body;
    std::string id;
    std::string trace_id;
    std::string problem;
};

Outcome run(Validator& validator, std::string_view datagram) {
    const Slot slot(datagram);
    const Validation r = validator.validate(slot.data(), slot.size());
    // `problem` is a static string: never a view of the datagram.
    CHECK_FALSE(slot.contains(r.problem));
    const bool accepted = r.verdict == Verdict::accepted || r.verdict == Verdict::accepted_otlp_udp;
    CHECK(accepted == r.problem.empty());
    if (!r.body.empty()) {
        CHECK(slot.contains(r.body));
    }
    return {r.verdict, std::string(r.body), std::string(r.id), std::string(r.trace_id),
            std::string(r.problem)};
}

std::string with_header(std::string_view body) {
    return std::string(good_header) + "\n" + std::string(body);
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), path.string());
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::string sample_body(std::string_view name) {
    return read_file(samples_dir / "node-sdk" / (std::string(name) + ".json"));
}

// ADOT's OtlpUdpSpanExporter datagram: header, "T1S", base64 of an ExportTraceServiceRequest
// with two spans (built from the OTLP field numbers by tests/data/otlp-udp/make_sample.py).
std::string otlp_udp_datagram() {
    return read_file(fs::path(XRAYD_TEST_DATA_DIR) / "otlp-udp" / "adot-t1s.udp");
}

// Rebuilds a JSON object with member `key` removed (no value) or replaced by the JSON text
// `value` (appended when absent). Keys of the samples need no escaping.
std::string edit(std::string_view body, std::string_view key,
                 std::optional<std::string_view> value) {
    simdjson::dom::parser parser;
    const std::string input(body);
    simdjson::dom::object obj;
    REQUIRE(parser.parse(input).get(obj) == simdjson::SUCCESS);
    std::string out = "{";
    bool found = false;
    const auto append = [&out](std::string_view k, std::string_view v) {
        if (out.size() > 1) {
            out += ',';
        }
        out += '"';
        out += k;
        out += "\":";
        out += v;
    };
    for (const simdjson::dom::key_value_pair member : obj) {
        REQUIRE(member.key.find_first_of("\"\\") == std::string_view::npos);
        if (member.key == key) {
            found = true;
            if (value) {
                append(member.key, *value);
            }
        } else {
            append(member.key, simdjson::minify(member.value));
        }
    }
    if (!found && value) {
        append(key, *value);
    }
    out += '}';
    return out;
}

std::string without(std::string_view body, std::string_view key) {
    return edit(body, key, std::nullopt);
}

// Every sample as a whole datagram, named for messages.
std::vector<std::pair<std::string, std::string>> all_sample_datagrams() {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& entry : fs::recursive_directory_iterator(samples_dir)) {
        const fs::path& path = entry.path();
        const std::string name = path.lexically_relative(samples_dir).string();
        if (path.extension() == ".udp") {
            out.emplace_back(name, read_file(path));
        } else if (path.extension() == ".json") {
            out.emplace_back(name, with_header(read_file(path)));
        } else if (path.extension() == ".jsonl") {
            // One captured run: {"bytes": N, "header": "...", "body": "..."} per line.
            std::istringstream lines(read_file(path));
            std::string line;
            simdjson::dom::parser parser;
            for (int n = 1; std::getline(lines, line); ++n) {
                simdjson::dom::element e;
                REQUIRE(parser.parse(line).get(e) == simdjson::SUCCESS);
                std::string_view header;
                std::string_view body;
                std::uint64_t bytes = 0;
                REQUIRE(e["header"].get(header) == simdjson::SUCCESS);
                REQUIRE(e["body"].get(body) == simdjson::SUCCESS);
                REQUIRE(e["bytes"].get(bytes) == simdjson::SUCCESS);
                std::string datagram = std::string(header) + "\n" + std::string(body);
                REQUIRE(datagram.size() == bytes);
                out.emplace_back(name + ":" + std::to_string(n), std::move(datagram));
            }
        }
    }
    return out;
}

}  // namespace

TEST_CASE("to_string names every verdict") {
    CHECK(xrayd::to_string(Verdict::accepted) == "accepted");
    CHECK(xrayd::to_string(Verdict::missing_header) == "missing header");
    CHECK(xrayd::to_string(Verdict::bad_header) == "bad header");
    CHECK(xrayd::to_string(Verdict::missing_body) == "missing body");
    CHECK(xrayd::to_string(Verdict::bad_json) == "bad json");
    CHECK(xrayd::to_string(Verdict::invalid_segment) == "invalid segment");
    CHECK(xrayd::to_string(Verdict::too_large) == "too large");
    CHECK(xrayd::to_string(Verdict::accepted_otlp_udp) == "accepted otlp udp");
    CHECK(xrayd::to_string(Verdict::bad_otlp_udp) == "bad otlp udp");
}

TEST_CASE("headers are accepted exactly as the Go daemon's table in spec 3.2 says") {
    struct Row {
        std::string_view header;
        Verdict expected;
    };
    using enum Verdict;
    const Row rows[] = {
        // The documented form and any JSON whitespace (leading, inside, a trailing CR).
        {R"({"format": "json", "version": 1})", accepted},
        {R"({"format":"json","version":1})", accepted},
        {" \t {\t\"format\" :\t\"json\" , \"version\" : 1 } \r", accepted},
        {"{\"format\":\"json\",\"version\":1}\r", accepted},
        // Keys and the format value in any case (Go folds, including U+017F for 's').
        {R"({"FORMAT":"JSON","Version":1})", accepted},
        {R"({"fOrMaT":"jSoN","VERSION":1})", accepted},
        {R"({"format":"j\u017fon","ver\u017fion":1})", accepted},
        {"{\"format\":\"j\xC5\xBFon\",\"version\":1}", accepted},
        {R"({"\u0066ormat":"js\u006fn","version":1})", accepted},
        // Extra members are fine, wherever they are.
        {R"({"format":"json","version":1,"x":true})", accepted},
        {R"({"x":{"format":"xml","version":2},"format":"json","y":[1,2],"version":1})", accepted},
        // Duplicate keys: the last one wins...
        {R"({"format":"xml","format":"json","version":2,"version":1})", accepted},
        {R"({"format":"json","version":1,"version":2})", bad_header},
        {R"({"format":"json","version":1,"VERSION":2})", bad_header},
        {R"({"format":"json","FORMAT":"xml","version":1})", bad_header},
        // ...unless it has the wrong type: Go then keeps the earlier value.
        {R"({"format":"json","version":1,"version":"2"})", accepted},
        {R"({"format":"json","version":1,"version":1.5})", accepted},
        {R"({"format":"json","version":1,"version":null})", accepted},
        {R"({"format":"json","format":7,"version":1})", accepted},
        {R"({"format":"json","format":null,"version":1})", accepted},
        {R"({"format":"json","version":1,"version":18446744073709551615})", accepted},
        // version must be exactly the integer 1.
        {R"({"format":"json","version":1.0})", bad_header},
        {R"({"format":"json","version":1e0})", bad_header},
        {R"({"format":"json","version":1.5})", bad_header},
        {R"({"format":"json","version":"1"})", bad_header},
        {R"({"format":"json","version":2})", bad_header},
        {R"({"format":"json","version":true})", bad_header},
        {R"({"format":"json"})", bad_header},
        // format must be "json".
        {R"({"format":"xml","version":1})", bad_header},
        {R"({"format":"json ","version":1})", bad_header},
        {R"({"version":1})", bad_header},
        // Anything that is not one complete JSON object.
        {R"({"format":"json","version":1}x)", bad_header},
        {R"({"format":"json","version":1}{"format":"json","version":1})", bad_header},
        {"\xEF\xBB\xBF{\"format\":\"json\",\"version\":1}", bad_header},
        {"", bad_header},
        {"null", bad_header},
        {R"([{"format":"json","version":1}])", bad_header},
        {R"({"format":"json","version":1,})", bad_header},
        {R"({"format":"json","version":01})", bad_header},
        {R"({format:"json",version:1})", bad_header},
        // One byte off the two spellings check_header accepts by comparing: parsed and judged.
        {R"({"format": "json", "version": 2})", bad_header},
        {R"({"format": "json", "version": 1} )", accepted},
        {R"({"format":"xson","version":1})", bad_header},
        {R"({"format":"json","version":1 })", accepted},
    };
    Validator validator;
    const std::string body = sample_body("streamed-subsegment");
    for (const Row& row : rows) {
        const Outcome out = run(validator, std::string(row.header) + "\n" + body);
        CHECK_MESSAGE(out.verdict == row.expected, "header: ", std::string(row.header));
    }
}

TEST_CASE("a bad header is rejected with a reason naming what is wrong") {
    Validator validator;
    const std::string body = sample_body("streamed-subsegment");
    CHECK(run(validator, "{\"format\":\"xml\",\"version\":1}\n" + body).problem.find("format") !=
          std::string::npos);
    CHECK(run(validator, "{\"format\":\"json\",\"version\":2}\n" + body).problem.find("version") !=
          std::string::npos);
    CHECK(run(validator, "{\"format\":\"json\"\n" + body).problem.find("JSON") !=
          std::string::npos);
}

TEST_CASE("a CRLF-terminated header is accepted, as in Go") {
    Validator validator;
    const Outcome out =
        run(validator, std::string(good_header) + "\r\n" + sample_body("streamed-subsegment"));
    CHECK(out.verdict == Verdict::accepted);
}

TEST_CASE("every sample datagram and document is accepted") {
    Validator validator;
    const auto samples = all_sample_datagrams();
    CHECK(samples.size() >= 40);  // 14 + 3 .udp, 14 + 3 .json, 21 captured datagrams
    for (const auto& entry : samples) {
        const std::string& name = entry.first;
        const std::string& datagram = entry.second;
        const Outcome out = run(validator, datagram);
        CHECK_MESSAGE(out.verdict == Verdict::accepted, name, ": ", out.problem);
        CHECK_MESSAGE(out.id.size() == 16, name);
        CHECK_MESSAGE(out.trace_id.size() == 35, name);
    }
}

TEST_CASE("an accepted datagram yields its body, id and trace id") {
    Validator validator;
    const std::string datagram =
        read_file(samples_dir / "node-sdk" / "continues-upstream-trace-parent-id.udp");
    const Slot slot(datagram);
    const Validation r = validator.validate(slot.data(), slot.size());
    REQUIRE(r.verdict == Verdict::accepted);
    CHECK(r.body.data() == slot.data() + good_header.size() + 1);
    CHECK(r.body.size() == datagram.size() - good_header.size() - 1);
    CHECK(r.id == "fb4cab8a50de175f");
    CHECK(r.trace_id == "1-6b023bdc-eee6cc3995b47ec3be47ef17");
    CHECK(r.problem.empty());
}

TEST_CASE("validate does not allocate") {
    Validator validator;
    std::vector<Slot> slots;
    for (const auto& sample : all_sample_datagrams()) {
        slots.emplace_back(sample.second);
    }
    slots.emplace_back("{\"format\":\"json\",\"version\":1}\n[1,2");
    slots.emplace_back("{\"format\":\"json\",\"version\":1}\n{\"id\":\"x\"}");
    slots.emplace_back("{\"format\":\"xml\",\"version\":1}\n{}");
    slots.emplace_back(otlp_udp_datagram());
    slots.emplace_back(with_header("T1SAA=A"));
    // Warm up once (simdjson picks its implementation on first use).
    (void)validator.validate(slots[0].data(), slots[0].size());
    const std::size_t before = allocation_count.load();
    std::size_t accepted = 0;
    for (const Slot& slot : slots) {
        const Verdict verdict = validator.validate(slot.data(), slot.size()).verdict;
        accepted += verdict == Verdict::accepted || verdict == Verdict::accepted_otlp_udp;
    }
    CHECK(allocation_count.load() == before);
    CHECK(accepted == slots.size() - 4);
    // The counting hook is live: making a string does count.
    const std::string probe(100, 'x');
    CHECK(allocation_count.load() > before);
}

TEST_CASE("removing each required field makes the segment invalid, naming the field") {
    Validator validator;
    const std::string ended = sample_body("http-200-with-subsegments");
    REQUIRE(run(validator, with_header(ended)).verdict == Verdict::accepted);
    for (const std::string_view field : {"name", "id", "trace_id", "start_time", "end_time"}) {
        const Outcome out = run(validator, with_header(without(ended, field)));
        CHECK_MESSAGE(out.verdict == Verdict::invalid_segment, field);
        CHECK_MESSAGE(
            out.problem.find("missing field \"" + std::string(field) + "\"") != std::string::npos,
            out.problem);
    }
}

TEST_CASE("ids and parent ids must be 16 hex digits of either case") {
    Validator validator;
    const std::string doc = sample_body("continues-upstream-trace-parent-id");
    struct Row {
        std::string_view value;
        bool valid;
    };
    const Row rows[] = {
        {R"("fb4cab8a50de175f")", true},
        {R"("FB4CAB8A50DE175F")", true},
        {R"("fb4cab8a50de175")", false},
        {R"("fb4cab8a50de175f0")", false},
        {R"("fb4cab8a50de175g")", false},
        {R"("fb4cab8a-0de175f")", false},
        {R"("")", false},
        {"1234567890123456", false},
        {"null", false},
        {R"(["fb4cab8a50de175f"])", false},
    };
    for (const std::string_view field : {"id", "parent_id"}) {
        for (const Row& row : rows) {
            const Outcome out = run(validator, with_header(edit(doc, field, row.value)));
            const Verdict expected = row.valid ? Verdict::accepted : Verdict::invalid_segment;
            CHECK_MESSAGE(out.verdict == expected, field, " = ", std::string(row.value));
            if (!row.valid) {
                CHECK(out.problem == "\"" + std::string(field) + "\" is not 16 hex digits");
            }
        }
    }
}

TEST_CASE("an invalid segment still reports its id and trace id when they are strings") {
    Validator validator;
    const std::string doc = sample_body("continues-upstream-trace-parent-id");
    Outcome out = run(validator, with_header(edit(doc, "id", R"("0123456789abcdefXYZ")")));
    CHECK(out.verdict == Verdict::invalid_segment);
    CHECK(out.id == "0123456789abcdef");  // cut to 16 bytes
    CHECK(out.trace_id == "1-6b023bdc-eee6cc3995b47ec3be47ef17");

    out = run(validator, with_header(edit(doc, "start_time", R"("soon")")));
    CHECK(out.verdict == Verdict::invalid_segment);
    CHECK(out.id == "fb4cab8a50de175f");

    out = run(validator, with_header(edit(doc, "id", "42")));
    CHECK(out.verdict == Verdict::invalid_segment);
    CHECK(out.id.empty());
}

TEST_CASE("trace ids must be 1-, 8 hex digits, -, 24 hex digits") {
    Validator validator;
    const std::string doc = sample_body("continues-upstream-trace-parent-id");
    struct Row {
        std::string_view value;
        bool valid;
    };
    const Row rows[] = {
        {R"("1-6b023bdc-eee6cc3995b47ec3be47ef17")", true},
        {R"("1-6B023BDC-EEE6CC3995B47EC3BE47EF17")", true},
        {R"("2-6b023bdc-eee6cc3995b47ec3be47ef17")", false},
        {R"("6b023bdc-eee6cc3995b47ec3be47ef17")", false},
        {R"("1-6b023bd-eee6cc3995b47ec3be47ef17a")", false},
        {R"("1-6b023bdce-ee6cc3995b47ec3be47ef17")", false},
        {R"("1-6b023bdc-eee6cc3995b47ec3be47ef1")", false},
        {R"("1-6b023bdc-eee6cc3995b47ec3be47ef170")", false},
        {R"("1-6b023bdc_eee6cc3995b47ec3be47ef17")", false},
        {R"("1-6b023bdx-eee6cc3995b47ec3be47ef17")", false},
        {R"("1-6b023bdc-eee6cc3995b47ec3be47efzz")", false},
        {R"("")", false},
        {"1", false},
    };
    for (const Row& row : rows) {
        const Outcome out = run(validator, with_header(edit(doc, "trace_id", row.value)));
        const Verdict expected = row.valid ? Verdict::accepted : Verdict::invalid_segment;
        CHECK_MESSAGE(out.verdict == expected, std::string(row.value));
        if (!row.valid) {
            CHECK(out.problem.find("\"trace_id\"") != std::string::npos);
        }
    }
}

TEST_CASE("name must be a non-empty string and times must be numbers") {
    Validator validator;
    const std::string doc = sample_body("http-200-with-subsegments");
    struct Row {
        std::string_view field;
        std::string_view value;
        bool valid;
    };
    const Row rows[] = {
        {"name", R"("x")", true},
        {"name", R"("")", false},
        {"name", "5", false},
        {"name", "null", false},
        {"start_time", "1795308508", true},
        {"start_time", "1.795308508155e9", true},
        {"start_time", R"("1795308508.155")", false},
        {"start_time", "null", false},
        {"start_time", "true", false},
        {"end_time", "1795308509", true},
        {"end_time", R"("1795308509.2")", false},
        {"end_time", "null", false},
    };
    for (const Row& row : rows) {
        const Outcome out = run(validator, with_header(edit(doc, row.field, row.value)));
        const Verdict expected = row.valid ? Verdict::accepted : Verdict::invalid_segment;
        CHECK_MESSAGE(out.verdict == expected, std::string(row.field), " = ",
                      std::string(row.value));
        if (!row.valid) {
            CHECK(out.problem.find("\"" + std::string(row.field) + "\"") != std::string::npos);
        }
    }
}

TEST_CASE("without end_time a segment needs in_progress to be the boolean true") {
    Validator validator;
    const std::string doc = sample_body("in-progress");
    REQUIRE(run(validator, with_header(doc)).verdict == Verdict::accepted);
    for (const std::string_view value : {"false", R"("true")", "1", "null"}) {
        const Outcome out = run(validator, with_header(edit(doc, "in_progress", value)));
        CHECK_MESSAGE(out.verdict == Verdict::invalid_segment, std::string(value));
        CHECK(out.problem.find("\"end_time\"") != std::string::npos);
    }
    const Outcome out = run(validator, with_header(without(doc, "in_progress")));
    CHECK(out.verdict == Verdict::invalid_segment);
    CHECK(out.problem.find("\"end_time\"") != std::string::npos);
    // An end_time, even alongside in_progress, completes it.
    CHECK(run(validator, with_header(edit(doc, "end_time", "1795308509"))).verdict ==
          Verdict::accepted);
}

TEST_CASE("a subsegment without parent_id is invalid; a segment without one is fine") {
    Validator validator;
    const std::string sub = sample_body("streamed-subsegment");
    const Outcome out = run(validator, with_header(without(sub, "parent_id")));
    CHECK(out.verdict == Verdict::invalid_segment);
    CHECK(out.problem.find("\"parent_id\"") != std::string::npos);
    // The same document typed as a segment needs no parent.
    CHECK(run(validator, with_header(without(without(sub, "parent_id"), "type"))).verdict ==
          Verdict::accepted);
    CHECK(run(validator, with_header(edit(without(sub, "parent_id"), "type", R"("segment")")))
              .verdict == Verdict::accepted);
}

TEST_CASE("body member names are case-sensitive and the last duplicate counts") {
    Validator validator;
    const std::string doc = sample_body("streamed-subsegment");
    const std::string renamed = edit(without(doc, "name"), "NAME", R"("x")");
    CHECK(run(validator, with_header(renamed)).verdict == Verdict::invalid_segment);

    const std::string body_without_last_brace = doc.substr(0, doc.rfind('}'));
    CHECK(run(validator, with_header(body_without_last_brace + R"(,"id":"zz"})")).verdict ==
          Verdict::invalid_segment);
    CHECK(run(validator, with_header(body_without_last_brace + R"(,"id":"0123456789abcdef"})"))
              .verdict == Verdict::accepted);
}

TEST_CASE("a body that is not exactly one valid JSON object is bad_json") {
    Validator validator;
    const std::string doc = sample_body("http-200-with-subsegments");
    struct Row {
        std::string name;
        std::string body;
        std::string_view problem;  // a substring of the expected problem
    };
    std::string bad_utf8 = doc;
    const std::size_t name_at = bad_utf8.find("orders-app");
    REQUIRE(name_at != std::string::npos);
    bad_utf8[name_at] = '\xFF';
    std::string overlong = doc;  // "/" as an overlong two-byte sequence
    overlong.replace(name_at, 2, "\xC0\xAF");
    const Row rows[] = {
        {"truncated", doc.substr(0, doc.size() / 2), ""},
        {"cut before the last brace", doc.substr(0, doc.rfind('}')), ""},
        {"trailing byte", doc + "x", ""},
        {"second object", doc + "{}", ""},
        {"top-level array", "[" + doc + "]", "object"},
        {"top-level string", R"("x")", "object"},
        {"invalid UTF-8", bad_utf8, "UTF-8"},
        {"overlong UTF-8", overlong, "UTF-8"},
        {"BOM", "\xEF\xBB\xBF" + doc, "byte order mark"},
        {"whitespace only", " \n", ""},
        {"lone surrogate", R"({"name":"\ud800"})", ""},
    };
    for (const Row& row : rows) {
        const Outcome out = run(validator, with_header(row.body));
        CHECK_MESSAGE(out.verdict == Verdict::bad_json, row.name);
        CHECK_MESSAGE(out.problem.find(row.problem) != std::string::npos, row.name, ": ",
                      out.problem);
    }
    // Trailing whitespace, including more LFs, is fine.
    CHECK(run(validator, with_header(doc + "\n\r\n \t")).verdict == Verdict::accepted);
}

TEST_CASE("no LF is missing_header; nothing after the LF is missing_body") {
    Validator validator;
    const std::string doc = sample_body("streamed-subsegment");
    CHECK(run(validator, "").verdict == Verdict::missing_header);
    CHECK(run(validator, good_header).verdict == Verdict::missing_header);
    CHECK(run(validator, doc).verdict == Verdict::missing_header);
    const Outcome empty_body = run(validator, std::string(good_header) + "\n");
    CHECK(empty_body.verdict == Verdict::missing_body);
    CHECK(empty_body.body.empty());
    // As in Go, an empty body is reported before a bad header.
    CHECK(run(validator, "garbage\n").verdict == Verdict::missing_body);
    // The split is at the first LF: a header with an LF inside is cut there.
    CHECK(run(validator, "{\"format\":\"json\",\n\"version\":1}\n" + doc).verdict ==
          Verdict::bad_header);
    CHECK(run(validator, "\n" + doc).verdict == Verdict::bad_header);
}

TEST_CASE("datagrams longer than the maximum are too_large; the maximum itself is fine") {
    Validator small(1024);
    std::string datagram = with_header(sample_body("streamed-subsegment"));
    datagram.append(1024 - datagram.size(), ' ');  // trailing whitespace is allowed
    REQUIRE(datagram.size() == 1024);
    CHECK(run(small, datagram).verdict == Verdict::accepted);
    datagram += ' ';
    const Outcome out = run(small, datagram);
    CHECK(out.verdict == Verdict::too_large);
    CHECK(out.body.empty());

    const std::string big = read_file(samples_dir / "node-sdk" / "big-60KB.udp");
    CHECK(run(small, big).verdict == Verdict::too_large);
    Validator standard;
    CHECK(standard.max_datagram_bytes() == 65536);
    CHECK(run(standard, big).verdict == Verdict::accepted);
    // The whole document is validated: one bad byte near the end of 60 KB is found.
    std::string big_broken = big;
    const std::size_t last_x = big_broken.rfind("xxxx");
    REQUIRE(last_x != std::string::npos);
    big_broken[last_x] = '\xFF';
    CHECK(run(standard, big_broken).verdict == Verdict::bad_json);
    // A small one after a big one: the reused parser holds nothing over.
    CHECK(run(standard, with_header(sample_body("streamed-subsegment"))).verdict ==
          Verdict::accepted);
}

TEST_CASE("an ADOT OTLP-over-UDP datagram (T1S or T1U) is accepted with its body verbatim") {
    Validator validator;
    const std::string datagram = otlp_udp_datagram();
    const std::size_t lf = datagram.find('\n');
    REQUIRE(lf != std::string::npos);
    const std::string body = datagram.substr(lf + 1);
    REQUIRE(body.starts_with("T1S"));
    const Outcome sampled = run(validator, datagram);
    CHECK(sampled.verdict == Verdict::accepted_otlp_udp);
    CHECK(sampled.body == body);
    CHECK(sampled.id.empty());
    CHECK(sampled.trace_id.empty());
    std::string unsampled = body;
    unsampled[2] = 'U';
    CHECK(run(validator, with_header(unsampled)).body == unsampled);
    CHECK(run(validator, with_header(unsampled)).verdict == Verdict::accepted_otlp_udp);
    // Java's exporter writes the header with spaces; any header Go accepts will do.
    CHECK(run(validator, R"({"format": "json", "version": 1})"
                         "\n" +
                             body)
              .verdict == Verdict::accepted_otlp_udp);
    // The smallest plausible request: tag of resource_spans and a zero length (0x0a 0x00).
    CHECK(run(validator, with_header("T1SCgA=")).verdict == Verdict::accepted_otlp_udp);
    // A JSON segment right after an OTLP one: the scratch buffer holds nothing over.
    CHECK(run(validator, with_header(sample_body("streamed-subsegment"))).verdict ==
          Verdict::accepted);
}

TEST_CASE("a T1S/T1U body that is not padded base64 of an OTLP request is bad_otlp_udp") {
    Validator validator;
    const std::string good = otlp_udp_datagram();
    const std::string payload = good.substr(good.find('\n') + 1 + 3);
    struct Row {
        std::string body;
        std::string_view problem;  // a word the reason must contain
    };
    const Row rows[] = {
        {"T1S", "nothing after"},
        {"T1U", "nothing after"},
        {"T1S" + payload.substr(0, payload.size() - 1), "multiple of 4"},  // cut short
        {"T1S" + payload + "\n", "multiple of 4"},                         // trailing LF
        {"T1S    " + payload, "whitespace"},                               // OpenSSL would trim
        {"T1S" + payload + "    ", "whitespace"},
        {"T1SCg==CgA=", "'='"},   // padding inside
        {"T1SC===", "'='"},       // three '='
        {"T1SCg-_", "alphabet"},  // base64url
        {"T1SCg\x80"
         "A",
         "alphabet"},
        {"T1SeyJpZCI6IngifQ==", "ExportTraceServiceRequest"},  // base64 of {"id":"x"}
        {"T1SAAAA", "ExportTraceServiceRequest"},              // zeros
        {"T1SCg==", "ExportTraceServiceRequest"},              // a tag and no length
        // The first 9 bytes lost (the first three are all 0x0a tags of nested messages).
        {"T1S" + payload.substr(12), "ExportTraceServiceRequest"},
    };
    for (const Row& row : rows) {
        CAPTURE(row.body.substr(0, 40));
        const Outcome out = run(validator, with_header(row.body));
        CHECK(out.verdict == Verdict::bad_otlp_udp);
        CHECK(out.body == row.body);
        CHECK(out.problem.find(row.problem) != std::string::npos);
    }
    // Other prefixes are not OTLP: ADOT's "M1" metrics and a lower-case "t1s" are bad JSON.
    CHECK(run(validator, with_header("M1" + payload)).verdict == Verdict::bad_json);
    CHECK(run(validator, with_header("t1s" + payload)).verdict == Verdict::bad_json);
}

TEST_CASE("an OTLP-over-UDP datagram over the maximum size is too_large; at the maximum fine") {
    const std::string datagram = otlp_udp_datagram();
    Validator exact(datagram.size());
    CHECK(run(exact, datagram).verdict == Verdict::accepted_otlp_udp);
    Validator small(datagram.size() - 1);
    CHECK(run(small, datagram).verdict == Verdict::too_large);
}
