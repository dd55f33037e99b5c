// The spool on real files: append and read back in order, rotation, deletion once settled,
// recovery after a restart (torn tail, damaged record, another format version), the quota under
// both policies, a full disk (a small tmpfs), expiry, and the spool's own accounting.
#include <xrayd/spool/spool.h>

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/spool/record_format.h>

#include "captured_log.h"
#include "temp_dir.h"
#include "tmpfs_child.h"

namespace xrayd::spool {
namespace {

using test::CapturedLog;
using test::CaptureSink;
using test::TempDir;
namespace fs = std::filesystem;

std::uint64_t unix_now_ns() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

std::string doc(int k) {
    return fmt::format(R"({{"name":"svc","id":"{:016x}","trace_id":"1-5f000000-{:024x}","n":{}}})",
                       k, k, k);
}

struct Read {
    std::string document;
    std::string id;
    std::string trace_id;
    std::uint64_t arrival = 0;
    std::uint32_t origin = 0;
};

// A spool in a temporary directory, its counters and its log.
struct Fixture {
    TempDir dir{"xrayd-spool"};
    Counters counters;
    std::shared_ptr<CapturedLog> log = std::make_shared<CapturedLog>();
    Logger logger{LogLevel::debug, std::make_unique<CaptureSink>(*log)};

    SpoolOptions options(std::uint64_t max_bytes = 1u << 20, std::uint64_t file_bytes = 0) const {
        SpoolOptions o;
        o.dir = dir.path().string();
        o.max_bytes = max_bytes;
        o.file_bytes = file_bytes;
        o.sync = SpoolSync::none;
        return o;
    }
    std::unique_ptr<Spool> open(SpoolOptions o) {
        return Spool::open(std::move(o), counters, logger);
    }

    // Every spool file's name, sorted.
    std::vector<std::string> files() const {
        std::vector<std::string> names;
        for (const auto& entry : fs::directory_iterator(dir.path())) {
            if (entry.path().extension() == ".xrs") {
                names.push_back(entry.path().filename().string());
            }
        }
        std::sort(names.begin(), names.end());
        return names;
    }
};

void append_n(Spool& spool, int first, int n, std::uint64_t arrival = unix_now_ns()) {
    for (int k = first; k < first + n; ++k) {
        REQUIRE(spool.append(doc(k), fmt::format("{:016x}", k), "1-5f000000-abc", arrival));
    }
    spool.flush(Clock::now());
}

// Reads everything readable, settling nothing.
std::vector<Read> read_all(Spool& spool, std::size_t per_call = 50) {
    std::vector<Read> out;
    for (;;) {
        std::vector<Read> got;
        const std::uint32_t origin = spool.read(per_call, [&](const SpooledSegment& s) {
            got.push_back(Read{std::string(s.document), std::string(s.id), std::string(s.trace_id),
                               s.arrival_unix_ns, 0});
            return Take::taken;
        });
        if (origin == 0) {
            return out;
        }
        for (Read& r : got) {
            r.origin = origin;
            out.push_back(std::move(r));
        }
    }
}

// The spool's accounting: what it was given = read back + dropped by it + still spooled.
void check_balance(const Fixture& f, const Spool& spool, std::uint64_t given) {
    const auto c = [&](Counter x) { return f.counters.get(x); };
    CHECK(given == c(Counter::spool_replayed) + c(Counter::dropped_spool_full) +
                       c(Counter::dropped_spool_error) + c(Counter::dropped_spool_expired) +
                       c(Counter::dropped_spool_corrupt) + spool.gauges().segments.load());
}

}  // namespace

TEST_CASE("segments come back in order with their ids and arrival; the file is 0600 and is emptied "
          "once settled") {
    Fixture f;
    auto spool = f.open(f.options());
    const std::uint64_t arrival = unix_now_ns() - 5'000'000'000u;
    append_n(*spool, 0, 120, arrival);
    CHECK(f.counters.get(Counter::spool_written) == 120);
    CHECK(spool->gauges().segments == 120);
    REQUIRE(f.files().size() == 1);
    struct stat st {};
    REQUIRE(::stat((f.dir.path() / f.files()[0]).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    const std::vector<Read> got = read_all(*spool);
    REQUIRE(got.size() == 120);
    for (int k = 0; k < 120; ++k) {
        CHECK(got[k].document == doc(k));
        CHECK(got[k].id == fmt::format("{:016x}", k));
        CHECK(got[k].trace_id == "1-5f000000-abc");
        CHECK(got[k].arrival == arrival);
    }
    CHECK(spool->gauges().segments == 0);
    // Read back is not delivered: the file keeps every record until they are settled.
    const fs::path file = f.dir.path() / f.files().at(0);
    CHECK(fs::file_size(file) > 120 * 100);
    spool->settle(got[0].origin, 119);
    CHECK(fs::file_size(file) > 120 * 100);
    // All settled: the file being written is emptied (a restart must not send it again).
    spool->settle(got[0].origin, 1);
    CHECK(fs::file_size(file) == file_header_size);
    CHECK(spool->gauges().bytes == file_header_size);
    append_n(*spool, 1000, 1);
    CHECK(f.files().size() == 1);
    CHECK(read_all(*spool).at(0).document == doc(1000));
    check_balance(f, *spool, 121);
}

TEST_CASE(
    "rotation: files of bounded size, reads never cross a file, each file goes once settled") {
    Fixture f;
    auto spool = f.open(f.options(1u << 20, 4096));
    append_n(*spool, 0, 200);
    const auto names = f.files();
    CHECK(names.size() > 3);
    for (const auto& name : names) {
        CHECK(fs::file_size(f.dir.path() / name) <= 4096);
    }
    std::vector<std::pair<std::uint32_t, std::size_t>> reads;
    int next = 0;
    for (;;) {
        std::size_t n = 0;
        const std::uint32_t origin = spool->read(1000, [&](const SpooledSegment& s) {
            CHECK(s.document == doc(next));
            ++next;
            ++n;
            return Take::taken;
        });
        if (origin == 0) {
            break;
        }
        reads.emplace_back(origin, n);
    }
    CHECK(next == 200);
    CHECK(reads.size() == names.size());  // one read per file: none crosses a file
    for (const auto& [origin, n] : reads) {
        spool->settle(origin, n);
    }
    // Every file but the one still being written is gone.
    CHECK(f.files().size() == 1);
    check_balance(f, *spool, 200);
}

TEST_CASE("a consumer that says stop leaves the segment unread for the next read") {
    Fixture f;
    auto spool = f.open(f.options());
    append_n(*spool, 0, 10);
    int offered = 0;
    const std::uint32_t origin = spool->read(
        50, [&](const SpooledSegment&) { return ++offered <= 4 ? Take::taken : Take::stop; });
    CHECK(origin != 0);
    CHECK(spool->gauges().segments == 6);
    const auto rest = read_all(*spool);
    REQUIRE(rest.size() == 6);
    CHECK(rest.front().document == doc(4));
}

TEST_CASE(
    "a restart finds what was spooled, counts it as recovered and sends it; unread ones stay") {
    Fixture f;
    {
        auto spool = f.open(f.options(1u << 20, 8192));
        append_n(*spool, 0, 100);
        // Read some back and let them go unsettled (a shutdown): they stay on disk.
        const std::uint32_t origin =
            spool->read(20, [](const SpooledSegment&) { return Take::taken; });
        REQUIRE(origin != 0);
        spool->unread(origin, 20);
        CHECK(spool->gauges().segments == 100);
    }
    Fixture g;  // a new process's counters and log, on the same directory
    auto spool = Spool::open(f.options(1u << 20, 8192), g.counters, g.logger);
    CHECK(g.counters.get(Counter::spool_recovered) == 100);
    CHECK(g.log->contains("found 100 segments"));
    const auto got = read_all(*spool);
    REQUIRE(got.size() == 100);
    CHECK(got.front().document == doc(0));
    CHECK(got.back().document == doc(99));
}

TEST_CASE("a torn last record is cut at start; the records before it are kept") {
    Fixture f;
    {
        auto spool = f.open(f.options());
        append_n(*spool, 0, 10);
    }
    const fs::path file = f.dir.path() / f.files().at(0);
    const auto size = fs::file_size(file);
    fs::resize_file(file, size - 7);  // the last record, cut short as by a crash mid-write
    auto spool = f.open(f.options());
    CHECK(f.counters.get(Counter::spool_recovered) == 9);
    CHECK(f.log->contains("cut a torn last record"));
    CHECK(fs::file_size(file) < size - 7);
    const auto got = read_all(*spool);
    REQUIRE(got.size() == 9);
    CHECK(got.back().document == doc(8));
    // Appending after the cut continues a whole file.
    append_n(*spool, 50, 1);
    CHECK(read_all(*spool).at(0).document == doc(50));
}

TEST_CASE("a flipped byte in the middle skips that record only, counted, never fatal") {
    Fixture f;
    {
        auto spool = f.open(f.options());
        append_n(*spool, 0, 10);
    }
    const fs::path file = f.dir.path() / f.files().at(0);
    std::string bytes = test::read_file(file);
    const std::size_t at = bytes.find(doc(4));
    REQUIRE(at != std::string::npos);
    bytes[at + 3] ^= 0x20;
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
    auto spool = f.open(f.options());
    CHECK(f.counters.get(Counter::spool_recovered) == 9);
    CHECK(f.counters.get(Counter::spool_corrupt_regions) == 1);
    const auto got = read_all(*spool);
    REQUIRE(got.size() == 9);
    for (const Read& r : got) {
        CHECK(r.document != doc(4));
    }
}

TEST_CASE("a file of a newer format version is left in place, not read, with a warning") {
    Fixture f;
    std::string header = file_header();
    header[8] = 9;  // version 9
    f.dir.write("00000001.xrs", header + std::string(40, 'x'));
    auto spool = f.open(f.options());
    CHECK(f.log->contains("written by a newer xrayd"));
    CHECK(read_all(*spool).empty());
    append_n(*spool, 0, 3);
    CHECK(read_all(*spool).size() == 3);
    CHECK(fs::exists(f.dir.path() / "00000001.xrs"));
}

TEST_CASE("at the quota, drop-newest refuses new segments, counted, and logs") {
    Fixture f;
    auto spool = f.open(f.options(16 << 10, 4096));
    int accepted = 0;
    for (int k = 0; k < 400; ++k) {
        accepted += spool->append(doc(k), "id", "trace", unix_now_ns()) ? 1 : 0;
    }
    spool->flush(Clock::now());
    CHECK(accepted > 50);
    CHECK(accepted < 400);
    CHECK(f.counters.get(Counter::dropped_spool_full) == 400 - accepted);
    CHECK(spool->gauges().bytes <= 16 << 10);
    CHECK(f.log->contains("is full"));
    // The oldest are the ones kept.
    const auto got = read_all(*spool);
    REQUIRE(got.size() == static_cast<std::size_t>(accepted));
    CHECK(got.front().document == doc(0));
    check_balance(f, *spool, 400);
}

TEST_CASE("at the quota, drop-oldest deletes the oldest file and keeps the newest") {
    Fixture f;
    SpoolOptions o = f.options(16 << 10, 4096);
    o.at_quota = Backpressure::drop_oldest;
    auto spool = f.open(o);
    for (int k = 0; k < 400; ++k) {
        CHECK(spool->append(doc(k), "id", "trace", unix_now_ns()));
    }
    spool->flush(Clock::now());
    CHECK(f.counters.get(Counter::dropped_spool_full) > 0);
    CHECK(spool->gauges().bytes <= 16 << 10);
    const auto got = read_all(*spool);
    REQUIRE(!got.empty());
    CHECK(got.back().document == doc(399));
    CHECK(got.front().document != doc(0));
    check_balance(f, *spool, 400);
}

TEST_CASE("segments older than X-Ray accepts are dropped as expired when read back") {
    Fixture f;
    auto spool = f.open(f.options());
    const std::uint64_t day = 86'400'000'000'000u;
    append_n(*spool, 0, 3, unix_now_ns() - 31 * day);
    append_n(*spool, 3, 2, unix_now_ns() - 29 * day);
    const auto got = read_all(*spool);
    REQUIRE(got.size() == 2);
    CHECK(got[0].document == doc(3));
    CHECK(f.counters.get(Counter::dropped_spool_expired) == 3);
    check_balance(f, *spool, 5);
}

TEST_CASE("a full disk (a small tmpfs) drops what does not fit as spool_full and keeps going") {
    if (::geteuid() != 0) {
        MESSAGE("SKIP(environment: mounting a tmpfs needs root; CI runs as root)");
        return;
    }
    const TempDir dir("xrayd-spool-tmpfs");
    const std::string path = dir.path().string();
    const std::string message = test::run_on_tmpfs(path, 0, "size=64k", [&] {
        Counters counters;
        Logger logger(LogLevel::error);
        SpoolOptions o;
        o.dir = path;
        o.max_bytes = 64u << 20;  // far more than the disk: ENOSPC decides
        o.file_bytes = 16 << 10;
        o.sync = SpoolSync::none;
        auto spool = Spool::open(o, counters, logger);
        for (int k = 0; k < 2000; ++k) {
            (void)spool->append(doc(k), "id", "trace", unix_now_ns());
            if (k % 50 == 0) {
                spool->flush(Clock::now());
            }
        }
        spool->flush(Clock::now());
        const std::uint64_t full = counters.get(Counter::dropped_spool_full);
        const std::uint64_t error = counters.get(Counter::dropped_spool_error);
        const std::uint64_t kept = spool->gauges().segments;
        std::uint64_t read = 0;
        for (;;) {
            std::size_t n = 0;
            const auto origin = spool->read(50, [&](const SpooledSegment&) {
                ++n;
                return Take::taken;
            });
            if (origin == 0) {
                break;
            }
            read += n;
        }
        return fmt::format("full={} error={} kept={} read={}", full, error, kept, read);
    });
    INFO(message);
    unsigned long long full = 0, error = 0, kept = 0, read = 0;
    REQUIRE(std::sscanf(message.c_str(), "full=%llu error=%llu kept=%llu read=%llu", &full, &error,
                        &kept, &read) == 4);
    CHECK(full > 0);
    CHECK(error == 0);
    CHECK(kept > 0);
    CHECK(read == kept);  // what it kept is whole and readable
    CHECK(full + kept == 2000);
}

}  // namespace xrayd::spool

namespace xrayd::spool {

TEST_CASE(
    "--spool-sync interval asks for a turn when the fsync is due, and always fsyncs at once") {
    Fixture f;
    SpoolOptions o = f.options();
    o.sync = SpoolSync::interval;
    auto spool = f.open(o);
    CHECK_FALSE(spool->deadline().has_value());  // nothing written: nothing to sync
    REQUIRE(spool->append(doc(1), "id", "trace", unix_now_ns()));
    CHECK(spool->deadline() == TimePoint{});  // gathered, not yet written: due now
    const TimePoint t0 = Clock::now();
    spool->flush(t0);
    REQUIRE(spool->deadline().has_value());
    CHECK(*spool->deadline() == t0 + std::chrono::seconds(1));
    spool->flush(t0 + std::chrono::milliseconds(500));
    CHECK(spool->deadline().has_value());  // not yet a second
    spool->flush(t0 + std::chrono::milliseconds(1001));
    CHECK_FALSE(spool->deadline().has_value());  // synced

    Fixture g;
    SpoolOptions a = g.options();
    a.sync = SpoolSync::always;
    auto always = g.open(a);
    REQUIRE(always->append(doc(2), "id", "trace", unix_now_ns()));
    always->flush(Clock::now());
    CHECK_FALSE(always->deadline().has_value());  // synced with the write
    CHECK(read_all(*always).size() == 1);
    CHECK_FALSE(g.log->contains("fdatasync failed"));
}

}  // namespace xrayd::spool
