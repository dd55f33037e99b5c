// Ingest: each datagram ends queued or counted under exactly one named reason.
#include <xrayd/ingest/ingest.h>
#include <xrayd/queue/block_pool.h>
#include <xrayd/stats/summary.h>

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace xrayd;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

const std::string header = "{\"format\":\"json\",\"version\":1}\n";

std::string valid_datagram(int n) {
    return header + "{\"name\":\"svc\",\"id\":\"" + fmt::format("{:016x}", n) +
           "\",\"trace_id\":\"1-5f84c7a1-" + fmt::format("{:024x}", n) +
           "\",\"start_time\":1.0,\"end_time\":2.0}";
}

// Everything one Ingest needs, with datagrams copied into padded slots as the receiver does.
struct Harness {
    Logger logger{LogLevel::critical};
    Counters counters;
    MemoryBudget budget;
    SegmentQueue queue;
    IngestLogLimits limits;
    Ingest ingest;
    std::vector<std::string> slots;

    explicit Harness(std::size_t budget_bytes = 1 << 20, std::size_t queue_capacity = 64)
        : budget(budget_bytes),
          queue(queue_capacity),
          ingest(queue, budget, counters, logger, limits, 65536) {}

    void feed(const std::vector<std::string>& datagrams, bool truncated = false) {
        std::vector<Datagram> batch;
        slots.clear();
        slots.reserve(datagrams.size());
        for (const std::string& d : datagrams) {
            std::string& slot = slots.emplace_back(d);
            slot.append(datagram_padding, '\0');
            batch.push_back(Datagram{slot.data(), d.size(), truncated, Clock::now()});
        }
        ingest.on_datagrams(batch);
    }

    std::vector<std::string> drain_queue() {
        std::vector<std::string> bodies;
        SegmentPtr s;
        while (queue.pop(s)) {
            bodies.emplace_back(s->body());
        }
        return bodies;
    }
};

}  // namespace

TEST_CASE("valid datagrams are queued with their body bytes, id and trace id") {
    Harness h;
    const std::string sample = read_file(std::string(XRAYD_TEST_DATA_DIR) +
                                         "/segment-docs/node-sdk/http-200-with-subsegments.udp");
    h.feed({sample, valid_datagram(7)});
    CHECK(h.counters.get(Counter::datagrams_received) == 2);
    SegmentPtr s;
    REQUIRE(h.queue.pop(s));
    CHECK(s->body() == sample.substr(sample.find('\n') + 1));
    REQUIRE(h.queue.pop(s));
    CHECK(s->id() == "0000000000000007");
    CHECK(s->trace_id() == "1-5f84c7a1-000000000000000000000007");
    CHECK(h.counters.snapshot().total(CounterKind::rejected) == 0);
}

TEST_CASE("each kind of bad datagram is counted under its own reason and not queued") {
    Harness h;
    h.feed({
        "no newline at all",                       // missing header
        "{\"format\":\"xml\",\"version\":1}\n{}",  // bad header
        header,                                    // missing body
        header + "{\"name\":",                     // bad JSON
        header + "{\"name\":\"svc\",\"id\":\"0000000000000001\",\"start_time\":1,\"end_time\":"
                 "2}",  // no trace_id
        "",             // empty datagram
    });
    CHECK(h.counters.get(Counter::datagrams_received) == 6);
    CHECK(h.counters.get(Counter::rejected_missing_header) == 2);
    CHECK(h.counters.get(Counter::rejected_bad_header) == 1);
    CHECK(h.counters.get(Counter::rejected_missing_body) == 1);
    CHECK(h.counters.get(Counter::rejected_bad_json) == 1);
    CHECK(h.counters.get(Counter::rejected_invalid_segment) == 1);
    CHECK(h.drain_queue().empty());
    CHECK(accounting_balances(h.counters.snapshot(), 0));
}

TEST_CASE("OTLP-over-UDP documents are queued verbatim and counted; malformed ones rejected") {
    Harness h;
    const std::string otlp = read_file(std::string(XRAYD_TEST_DATA_DIR) + "/otlp-udp/adot-t1s.udp");
    h.feed({otlp, valid_datagram(3), header + "T1S", header + "T1SAA=A", header + "T1UCgA="});
    CHECK(h.counters.get(Counter::datagrams_received) == 5);
    CHECK(h.counters.get(Counter::received_otlp_udp) == 2);
    CHECK(h.counters.get(Counter::rejected_bad_otlp_udp) == 2);
    CHECK(h.counters.get(Counter::rejected_bad_json) == 0);
    SegmentPtr s;
    REQUIRE(h.queue.pop(s));
    CHECK(s->body() == otlp.substr(otlp.find('\n') + 1));
    CHECK(s->id().empty());
    CHECK(s->trace_id().empty());
    REQUIRE(h.queue.pop(s));
    CHECK(s->id() == "0000000000000003");
    REQUIRE(h.queue.pop(s));
    CHECK(s->body() == "T1UCgA=");
    CHECK_FALSE(h.queue.pop(s));
    // received_otlp_udp is informational: the accounting identity holds with 3 held.
    CHECK(accounting_balances(h.counters.snapshot(), 3));
}

TEST_CASE("a datagram the kernel truncated is counted as too large") {
    Harness h;
    h.feed({valid_datagram(1)}, /*truncated=*/true);
    CHECK(h.counters.get(Counter::rejected_too_large) == 1);
    CHECK(h.drain_queue().empty());
}

TEST_CASE(
    "when the memory limit is reached new segments are dropped and counted, and room returns") {
    // A segment is charged the size of the pool block that holds it.
    const std::size_t one =
        BlockPool(segment_pool_shape, 0)
            .block_size(sizeof(Segment) + valid_datagram(0).size() - header.size());
    Harness h(/*budget_bytes=*/3 * one);
    h.feed({valid_datagram(1), valid_datagram(2), valid_datagram(3), valid_datagram(4)});
    CHECK(h.counters.get(Counter::dropped_buffer_full) == 1);
    CHECK(h.drain_queue().size() == 3);  // destroying them returns their bytes
    CHECK(h.budget.used() == 0);
    h.feed({valid_datagram(5)});
    CHECK(h.drain_queue().size() == 1);
}

TEST_CASE("when the hand-off queue is full the segment is dropped, counted, and its bytes freed") {
    Harness h(1 << 20, /*queue_capacity=*/2);
    h.feed({valid_datagram(1), valid_datagram(2), valid_datagram(3)});
    CHECK(h.counters.get(Counter::dropped_queue_full) == 1);
    const std::size_t held = h.budget.used();
    CHECK(h.drain_queue().size() == 2);
    CHECK(held > 0);
    CHECK(h.budget.used() == 0);
}

TEST_CASE(
    "reject log lines are rate-limited per reason and never show datagram bytes above debug") {
    struct Capture final : LogSink {
        std::vector<std::string>* lines;
        explicit Capture(std::vector<std::string>* l) : lines(l) {}
        void write(std::string_view line) noexcept override { lines->emplace_back(line); }
    };
    std::vector<std::string> lines;
    Harness h;
    h.logger.set_sink(std::make_unique<Capture>(&lines));
    h.logger.set_level(LogLevel::info);
    const std::string secret =
        "{\"format\":\"xml\",\"version\":1}\n{\"user\":\"SECRET-CUSTOMER-DATA\"}";
    h.feed({secret, secret, secret, "no newline SECRET"});
    REQUIRE(lines.size() == 2);  // one per reason in this interval
    for (const std::string& l : lines) {
        CHECK(l.find("SECRET") == std::string::npos);
        CHECK(l.find("[Warn] Segment not accepted (") != std::string::npos);
    }
    CHECK(h.counters.get(Counter::rejected_bad_header) == 3);
}

TEST_CASE("Ingest paces its receiver by the consumer's hint, less what is already queued") {
    Harness h;
    CHECK(h.ingest.pace().wanted == 0);  // no hint: wake for every arrival
    DeliveryHint hint;
    hint.room.store(50);
    hint.full.store(50);
    hint.hold_limit.store(Duration(std::chrono::milliseconds(100)).count());
    h.ingest.pace_with(hint, 2);
    CHECK(h.ingest.pace().wanted == 25);  // its share of two receivers
    CHECK(h.ingest.pace().hold_limit == std::chrono::milliseconds(100));
    std::vector<std::string> ten;
    for (int n = 0; n < 10; ++n) {
        ten.push_back(valid_datagram(n));
    }
    h.feed(ten);  // queued, not yet taken by the consumer
    CHECK(h.ingest.pace().wanted == 20);
    CHECK(h.drain_queue().size() == 10);
}
