// Tests of the OTLP spool on a real directory: order, settle and delete, restart, damaged and
// interrupted files, both quota policies, expiry, and its accounting
// (given = replayed + dropped + spooled).
#include <xrayd/otlp/otlp_spool.h>

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <xrayd/common/startup_error.h>

#include "captured_log.h"
#include "temp_dir.h"

using namespace std::chrono_literals;
using namespace xrayd;
using namespace xrayd::otlp;
using namespace xrayd::test;
namespace fs = std::filesystem;

namespace {

struct Fixture {
    TempDir tmp{"xrayd-otlp-spool"};
    Counters counters;
    std::shared_ptr<CapturedLog> log = std::make_shared<CapturedLog>();
    Logger logger{LogLevel::debug, std::make_unique<CaptureSink>(*log)};

    [[nodiscard]] std::string dir() const { return (tmp.path() / "otlp").string(); }

    std::unique_ptr<OtlpSpool> open(OtlpSpoolOptions options = {}) {
        options.dir = dir();
        return OtlpSpool::open(std::move(options), counters, logger);
    }

    [[nodiscard]] std::size_t files_named(std::string_view suffix) const {
        std::size_t n = 0;
        for (const auto& e : fs::directory_iterator(dir())) {
            n += e.path().filename().string().ends_with(suffix) ? 1 : 0;
        }
        return n;
    }

    std::uint64_t handed = 0;  // spans passed to write()

    bool write(OtlpSpool& spool, std::string_view body, std::size_t spans, std::uint64_t arrival,
               OtlpEncoding encoding = OtlpEncoding::protobuf) {
        handed += spans;
        return spool.write(encoding, body, spans, arrival);
    }

    // With nothing read back unsettled: spans handed to write() and found at open = replayed
    // (settled) + dropped by the spool + on disk unread.
    void check_identity(const OtlpSpool& spool) const {
        const CounterSnapshot s = counters.snapshot();
        CHECK(handed + s[Counter::otlp_spans_spool_recovered] ==
              s[Counter::otlp_spans_replayed] + s[Counter::otlp_spans_dropped_spool_full] +
                  s[Counter::otlp_spans_dropped_spool_error] +
                  s[Counter::otlp_spans_dropped_spool_expired] + spool.gauges().spans.load());
    }
};

std::uint64_t unix_ns_ago(std::chrono::nanoseconds age) {
    return static_cast<std::uint64_t>(
        (std::chrono::duration_cast<std::chrono::nanoseconds>(WallClock::now().time_since_epoch()) -
         age)
            .count());
}

}  // namespace

TEST_CASE("requests come back oldest first, byte for byte, and go once settled") {
    Fixture f;
    auto spool = f.open();
    REQUIRE(f.write(*spool, "first-body", 3, unix_ns_ago(1s), OtlpEncoding::protobuf));
    REQUIRE(f.write(*spool, R"({"resourceSpans":[]})", 5, unix_ns_ago(0s), OtlpEncoding::json));
    CHECK(spool->gauges().spans == 8);
    CHECK(spool->gauges().files == 2);
    CHECK(f.files_named(".otlp") == 2);

    auto a = spool->read_oldest();
    REQUIRE(a);
    CHECK(a->encoding == OtlpEncoding::protobuf);
    CHECK(a->body == "first-body");
    CHECK(a->spans == 3);
    auto b = spool->read_oldest();
    REQUIRE(b);
    CHECK(b->encoding == OtlpEncoding::json);
    CHECK(b->spans == 5);
    CHECK_FALSE(spool->read_oldest().has_value());
    CHECK_FALSE(spool->has_unread());
    CHECK(spool->gauges().spans == 0);  // read back: in memory now, not spooled

    spool->settle(a->number);
    CHECK(f.files_named(".otlp") == 1);
    spool->unread(b->number);  // let go at shutdown: spooled again, offered again
    CHECK(spool->gauges().spans == 5);
    auto again = spool->read_oldest();
    REQUIRE(again);
    CHECK(again->number == b->number);
    spool->settle(again->number);
    CHECK(f.files_named(".otlp") == 0);
    CHECK(spool->gauges().bytes == 0);
    f.check_identity(*spool);
}

TEST_CASE("a restart finds what an earlier run left, counts it received, and sends it") {
    Fixture f;
    {
        auto spool = f.open();
        REQUIRE(f.write(*spool, "kept", 4, unix_ns_ago(0s), OtlpEncoding::protobuf));
        REQUIRE(f.write(*spool, "read-not-settled", 2, unix_ns_ago(0s), OtlpEncoding::protobuf));
        REQUIRE(spool->read_oldest());  // "kept" read, never settled: a kill before the answer
    }
    // A write cut short by a crash leaves only its temporary file.
    std::ofstream(fs::path(f.dir()) / "00000000000000ff.otlp.tmp") << "partial";
    Counters fresh;
    OtlpSpoolOptions options;
    options.dir = f.dir();
    auto spool = OtlpSpool::open(options, fresh, f.logger);
    CHECK(fresh.get(Counter::otlp_spans_spool_recovered) == 6);
    CHECK(spool->gauges().spans == 6);
    CHECK(f.files_named(".tmp") == 0);
    CHECK(f.log->contains("found 6 spans in 2 requests"));
    auto first = spool->read_oldest();
    REQUIRE(first);
    CHECK(first->body == "kept");
    // A new request is numbered after the old ones.
    REQUIRE(f.write(*spool, "new", 1, unix_ns_ago(0s), OtlpEncoding::protobuf));
    REQUIRE(spool->read_oldest()->body == "read-not-settled");
    REQUIRE(spool->read_oldest()->body == "new");
}

TEST_CASE("a damaged file is set aside and counted; the others are read") {
    Fixture f;
    {
        auto spool = f.open();
        REQUIRE(f.write(*spool, "will-be-damaged", 4, unix_ns_ago(0s), OtlpEncoding::protobuf));
        REQUIRE(f.write(*spool, "intact", 2, unix_ns_ago(0s), OtlpEncoding::protobuf));
    }
    const fs::path damaged = fs::path(f.dir()) / "0000000000000001.otlp";
    {
        std::fstream file(damaged, std::ios::in | std::ios::out | std::ios::binary);
        file.seekp(40);
        file.put('X');  // a flipped byte in the body: the CRC no longer matches
    }
    auto spool = f.open();
    CHECK(f.counters.get(Counter::otlp_spool_corrupt_files) == 1);
    CHECK(f.files_named(".bad") == 1);
    CHECK(f.counters.get(Counter::otlp_spans_spool_recovered) == 2);
    auto only = spool->read_oldest();
    REQUIRE(only);
    CHECK(only->body == "intact");
    CHECK_FALSE(spool->read_oldest().has_value());
}

TEST_CASE("at the quota, drop-newest refuses the new request and drop-oldest deletes old ones") {
    const std::string body(1000, 'b');
    SUBCASE("drop-newest") {
        Fixture f;
        OtlpSpoolOptions options;
        options.max_bytes = 2500;  // two files of 1032 bytes, not three
        auto spool = f.open(options);
        CHECK(f.write(*spool, body, 10, unix_ns_ago(0s), OtlpEncoding::protobuf));
        CHECK(f.write(*spool, body, 20, unix_ns_ago(0s), OtlpEncoding::protobuf));
        CHECK_FALSE(f.write(*spool, body, 30, unix_ns_ago(0s), OtlpEncoding::protobuf));
        CHECK(f.counters.get(Counter::otlp_spans_dropped_spool_full) == 30);
        CHECK(spool->gauges().spans == 30);
        f.check_identity(*spool);
    }
    SUBCASE("drop-oldest") {
        Fixture f;
        OtlpSpoolOptions options;
        options.max_bytes = 2500;
        options.at_quota = Backpressure::drop_oldest;
        auto spool = f.open(options);
        CHECK(f.write(*spool, body, 10, unix_ns_ago(0s), OtlpEncoding::protobuf));
        CHECK(f.write(*spool, body, 20, unix_ns_ago(0s), OtlpEncoding::protobuf));
        CHECK(f.write(*spool, body, 30, unix_ns_ago(0s), OtlpEncoding::protobuf));
        CHECK(f.counters.get(Counter::otlp_spans_dropped_spool_full) == 10);
        CHECK(spool->gauges().spans == 50);
        f.check_identity(*spool);
        CHECK(spool->read_oldest()->spans == 20);
    }
}

TEST_CASE("requests older than X-Ray takes are dropped as expired when read back") {
    Fixture f;
    OtlpSpoolOptions options;
    options.max_age = 1h;
    auto spool = f.open(options);
    REQUIRE(f.write(*spool, "old", 7, unix_ns_ago(2h), OtlpEncoding::protobuf));
    REQUIRE(f.write(*spool, "fresh", 1, unix_ns_ago(0s), OtlpEncoding::protobuf));
    auto back = spool->read_oldest();
    REQUIRE(back);
    CHECK(back->body == "fresh");
    CHECK(f.counters.get(Counter::otlp_spans_dropped_spool_expired) == 7);
    CHECK(f.files_named(".otlp") == 1);
    spool->settle(back->number);
    f.check_identity(*spool);
}

TEST_CASE("a directory that cannot be created is a start-up error naming it") {
    Fixture f;
    OtlpSpoolOptions options;
    options.dir = (f.tmp.path() / "missing-parent" / "otlp").string();
    CHECK_THROWS_WITH_AS((void)OtlpSpool::open(options, f.counters, f.logger),
                         doctest::Contains("cannot create the OTLP spool directory"), StartupError);
}
