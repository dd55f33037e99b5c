// SpoolStage with the real Uploader against a real HTTP server on loopback and a real spool
// directory: batches past their retry budget are spilled, replayed once X-Ray answers again and
// their files emptied; write-ahead appends before anything is held; replay stays under half
// the memory limit and waits for an answer after a failure.
#include <xrayd/spool/spool_stage.h>

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include <simdjson.h>

#include <xrayd/spool/record_format.h>
#include <xrayd/spool/spool.h>
#include <xrayd/upload/uploader.h>

#include "http_test_server.h"
#include "temp_dir.h"
#include "upload_fixture.h"

using namespace std::chrono_literals;
using xrayd::Clock;
using xrayd::Counter;
using xrayd::TimePoint;
using xrayd::test::document;
using xrayd::test::Harness;
using xrayd::test::HttpTestServer;
using xrayd::test::TempDir;
namespace spool = xrayd::spool;

namespace {

struct Rig {
    explicit Rig(spool::SpoolMode mode, std::size_t budget_bytes = 64 << 20) : h(budget_bytes) {
        spool::SpoolOptions o;
        o.dir = dir.path().string();
        o.sync = spool::SpoolSync::none;
        store = spool::Spool::open(o, h.counters, h.logger);
        xrayd::BatchLimits limits;
        limits.linger = 50ms;
        stage = std::make_unique<spool::SpoolStage>(*store, mode, h.budget, limits);
        auto options = h.options(server);
        options.retry_budget = 150ms;
        options.spill = stage.get();
        uploader = h.uploader(options);
    }

    // One pipeline turn: the stage, then the uploader's I/O.
    void turn() {
        stage->on_turn(*uploader, Clock::now(), false);
        uploader->run_once(10ms);
    }
    bool drive(const std::function<bool()>& done, std::chrono::seconds limit = 20s) {
        const auto until = Clock::now() + limit;
        while (!done()) {
            if (Clock::now() > until) {
                return false;
            }
            turn();
        }
        return true;
    }

    // Every document in the requests recorded (since the last take_requests()).
    std::multiset<std::string> received() {
        std::multiset<std::string> out;
        simdjson::dom::parser parser;
        for (const auto& request : server.requests()) {
            simdjson::dom::element root;
            REQUIRE(parser.parse(request.body).get(root) == simdjson::SUCCESS);
            for (auto item : root["TraceSegmentDocuments"].get_array()) {
                out.emplace(std::string_view(item.get_string()));
            }
        }
        return out;
    }

    Harness h;
    TempDir dir{"xrayd-stage"};
    HttpTestServer server;
    std::unique_ptr<spool::Spool> store;
    std::unique_ptr<spool::SpoolStage> stage;
    std::unique_ptr<xrayd::Uploader> uploader;
};

}  // namespace

TEST_CASE("overflow: batches past their retry budget are spilled, then replayed once X-Ray is "
          "back, each document once, and the spool emptied") {
    Rig r(spool::SpoolMode::overflow);
    r.server.set_default_response({.status = 503, .body = "{}"});
    for (int i = 0; i < 4; ++i) {
        r.uploader->submit(r.h.make_batch(10));
    }
    REQUIRE(r.drive([&] { return r.h.get(Counter::spool_written) == 40; }));
    CHECK(r.h.get(Counter::dropped_gave_up) == 0);
    CHECK(r.uploader->held_segments() <= 50);  // at most one replayed batch, probing
    (void)r.server.take_requests();            // from now on every answer is a 200
    r.server.set_default_response({.status = 200});
    REQUIRE(r.drive([&] {
        return r.h.get(Counter::segments_sent) == 40 && r.store->gauges().segments == 0 &&
               r.uploader->held_segments() == 0;
    }));
    CHECK(r.h.get(Counter::spool_replayed) == 40);
    const auto got = r.received();
    CHECK(got.size() == 40);
    for (int k = 0; k < 40; ++k) {
        CHECK(got.count(document(k)) == 1);
    }
    CHECK(r.store->gauges().bytes == spool::file_header_size);
    CHECK(r.h.accounted() + r.uploader->held_segments() + r.store->gauges().segments == 40);
}

TEST_CASE("write-ahead: every segment is on disk before it is held; batches come back after the "
          "linger or when 50 are waiting") {
    Rig r(spool::SpoolMode::write_ahead);
    const TimePoint t0 = Clock::now();
    for (int k = 0; k < 3; ++k) {
        auto segment = xrayd::Segment::make(r.h.budget, document(k), xrayd::test::segment_id(k),
                                            xrayd::test::trace_id(k), t0);
        REQUIRE(segment);
        r.stage->accept(*segment, t0);
    }
    CHECK(r.h.budget.used() == 0);  // the segments' memory went back: they live on disk
    r.stage->on_turn(*r.uploader, t0, false);
    CHECK(r.h.get(Counter::spool_written) == 3);
    CHECK(r.uploader->held_segments() == 0);  // three are not a batch: the linger runs
    REQUIRE(r.stage->deadline().has_value());
    CHECK(*r.stage->deadline() <= t0 + 50ms);
    r.stage->on_turn(*r.uploader, t0 + 60ms, false);
    CHECK(r.uploader->held_segments() == 3);
    REQUIRE(r.drive([&] { return r.h.get(Counter::segments_sent) == 3; }));

    // 50 waiting make a batch at once.
    for (int k = 3; k < 53; ++k) {
        auto segment = xrayd::Segment::make(r.h.budget, document(k), xrayd::test::segment_id(k),
                                            xrayd::test::trace_id(k), Clock::now());
        r.stage->accept(*segment, Clock::now());
    }
    r.stage->on_turn(*r.uploader, Clock::now(), false);
    CHECK(r.uploader->held_segments() == 50);
    REQUIRE(r.drive([&] { return r.h.get(Counter::segments_sent) == 53; }));
    CHECK(r.received().size() == 53);
}

TEST_CASE("replay reads no more once half the memory limit is in use") {
    Rig r(spool::SpoolMode::overflow, 3 << 20);
    const std::string big(40000, 'x');
    const auto now_ns = static_cast<std::uint64_t>(
        std::chrono::system_clock::now().time_since_epoch() / std::chrono::nanoseconds(1));
    for (int k = 0; k < 200; ++k) {  // 8 MB spooled, more than the whole limit
        REQUIRE(r.store->append(fmt::format(R"({{"k":{},"pad":"{}"}})", k, big), "id", "trace",
                                now_ns));
    }
    r.server.set_default_response({.status = 503, .body = "{}"});
    r.stage->on_turn(*r.uploader, Clock::now(), false);
    // One batch went out as a probe (nothing was held); none follows until it succeeds.
    CHECK(r.uploader->held_segments() > 0);
    const auto held = r.uploader->held_segments();
    r.stage->on_turn(*r.uploader, Clock::now(), false);
    CHECK(r.uploader->held_segments() == held);
    CHECK(r.h.budget.used() <= r.h.budget.limit() / 2 + (2 << 20));
    r.server.set_default_response({.status = 200});
    REQUIRE(r.drive([&] { return r.h.get(Counter::segments_sent) == 200; }, 60s));
    CHECK(r.store->gauges().segments == 0);
}
