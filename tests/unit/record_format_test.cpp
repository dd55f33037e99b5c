// The spool's record framing: records read back as written, a torn tail at any byte is told
// apart and cut at the last intact record, damage in the middle is skipped and counted, and a
// file of another format version is refused with both versions named.
#include <xrayd/spool/record_format.h>

#include <cstdint>
#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace xrayd::spool {
namespace {

struct Written {
    std::string body;
    std::vector<std::size_t> ends;  // the offset after each record
    std::vector<std::string> payloads;
};

// Three records: a small segment, an empty payload and one of the largest size.
Written three_records() {
    Written w;
    const std::vector<std::string> payloads = {
        R"({"name":"svc","id":"0000000000000001","trace_id":"1-5759e988-bd862e3fe1be46a994272793"})",
        "", std::string(max_record_payload, 's')};
    std::uint64_t arrival = 1'765'000'000'000'000'000ULL;
    for (const std::string& p : payloads) {
        REQUIRE(append_record(w.body, arrival++, p));
        w.ends.push_back(w.body.size());
        w.payloads.push_back(p);
    }
    return w;
}

struct ReadBack {
    std::vector<SpoolRecord> records;
    ReadStatus last = ReadStatus::end;
};

ReadBack read_all(RecordReader& reader) {
    ReadBack r;
    SpoolRecord rec;
    while ((r.last = reader.next(rec)) == ReadStatus::record) {
        r.records.push_back(rec);
    }
    return r;
}

}  // namespace

TEST_CASE("records read back in order with their arrival times and payloads") {
    const Written w = three_records();
    RecordReader reader(w.body);
    const ReadBack r = read_all(reader);
    CHECK(r.last == ReadStatus::end);
    REQUIRE(r.records.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CAPTURE(i);
        CHECK(r.records[i].payload == w.payloads[i]);
        CHECK(r.records[i].arrival_unix_ns == 1'765'000'000'000'000'000ULL + i);
        CHECK(r.records[i].offset == (i == 0 ? 0 : w.ends[i - 1]));
    }
    CHECK(reader.valid_end() == w.body.size());
    CHECK(reader.corrupt_regions() == 0);
    // Again on the same reader: still the end, nothing more.
    SpoolRecord rec;
    CHECK(reader.next(rec) == ReadStatus::end);
}

TEST_CASE("a payload above the maximum is refused and nothing is written") {
    std::string out = "keep";
    CHECK_FALSE(append_record(out, 1, std::string(max_record_payload + 1, 'x')));
    CHECK(out == "keep");
}

TEST_CASE("a write cut short at any byte leaves the intact records and a torn tail at the last") {
    const Written w = three_records();
    // Every cut inside the first two records (and a sample through the large third one).
    for (std::size_t cut = 0; cut < w.body.size(); cut += cut < w.ends[1] + 64 ? 1 : 4093) {
        CAPTURE(cut);
        RecordReader reader(std::string_view(w.body).substr(0, cut));
        const ReadBack r = read_all(reader);
        std::size_t whole = 0;
        while (whole < w.ends.size() && w.ends[whole] <= cut) {
            ++whole;
        }
        REQUIRE(r.records.size() == whole);
        const std::size_t intact_end = whole == 0 ? 0 : w.ends[whole - 1];
        CHECK(r.last == (cut == intact_end ? ReadStatus::end : ReadStatus::torn_tail));
        CHECK(reader.valid_end() == intact_end);
        CHECK(reader.corrupt_regions() == 0);
    }
}

TEST_CASE("a flipped byte in a middle record skips that record only, and counts it") {
    const Written w = three_records();
    // A byte of each field of the first record: marker, length, arrival, crc, payload.
    for (const std::size_t at :
         {std::size_t{1}, std::size_t{5}, std::size_t{9}, std::size_t{17}, std::size_t{30}}) {
        CAPTURE(at);
        std::string damaged = w.body;
        damaged[at] = static_cast<char>(damaged[at] ^ 0x40);
        RecordReader reader(damaged);
        const ReadBack r = read_all(reader);
        CHECK(r.last == ReadStatus::end);
        REQUIRE(r.records.size() == 2);
        CHECK(r.records[0].payload == w.payloads[1]);
        CHECK(r.records[1].payload == w.payloads[2]);
        CHECK(reader.corrupt_regions() == 1);
        CHECK(reader.corrupt_bytes() == w.ends[0]);
    }
}

TEST_CASE("a length broken to claim the whole file still finds the records after it") {
    const Written w = three_records();
    std::string damaged = w.body;
    damaged[6] = '\x03';  // the first record's length becomes 0x30000 + its own: past its end
    RecordReader reader(damaged);
    const ReadBack r = read_all(reader);
    REQUIRE(r.records.size() == 2);
    CHECK(r.records[1].payload.size() == max_record_payload);
    CHECK(reader.corrupt_regions() == 1);
}

TEST_CASE("bytes that hold no record are a torn tail from the start, never a record") {
    std::string noise;
    for (int i = 0; i < 5000; ++i) {
        noise += static_cast<char>((i * 7919) & 0xff);
    }
    noise += "XRS1";  // a marker with nothing valid after it
    noise += std::string(40, '\0');
    RecordReader reader(noise);
    const ReadBack r = read_all(reader);
    CHECK(r.records.empty());
    CHECK(r.last == ReadStatus::torn_tail);
    CHECK(reader.valid_end() == 0);
}

TEST_CASE("the file header is checked: length, magic and version") {
    const std::string header = file_header();
    REQUIRE(header.size() == file_header_size);
    CHECK(check_file_header(header).ok());

    auto short_file = check_file_header(header.substr(0, 10));
    REQUIRE_FALSE(short_file.ok());
    CHECK(short_file.error() == "10 bytes, shorter than the 16-byte spool file header");

    std::string other = header;
    other[0] = 'X';
    auto not_spool = check_file_header(other);
    REQUIRE_FALSE(not_spool.ok());
    CHECK(not_spool.error() == "not an xrayd spool file (no \"xrspool\" header)");

    std::string newer = header;
    newer[8] = static_cast<char>(format_version + 1);
    auto from_newer = check_file_header(newer);
    REQUIRE_FALSE(from_newer.ok());
    CHECK(from_newer.error() == "spool format version 2, but this xrayd reads version 1 (written "
                                "by a newer xrayd)");
}

}  // namespace xrayd::spool
