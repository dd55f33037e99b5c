// Counters and the exit summary: every counter is reported, and the identity is checked.
#include <xrayd/stats/counters.h>
#include <xrayd/stats/summary.h>

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace xrayd;

TEST_CASE("counter names are unique snake_case identifiers") {
    std::set<std::string_view> names;
    for (const CounterInfo& c : counter_infos) {
        CHECK_MESSAGE(names.insert(c.name).second, c.name);
        for (char ch : c.name) {
            CHECK_MESSAGE(((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'),
                          c.name);
        }
        CHECK_FALSE(c.help.empty());
    }
}

TEST_CASE("concurrent adds from several threads are all counted") {
    Counters counters;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&counters] {
            for (int i = 0; i < 100000; ++i) {
                counters.add(Counter::datagrams_received);
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    CHECK(counters.get(Counter::datagrams_received) == 400000);
}

TEST_CASE("snapshot totals group counters by their kind") {
    Counters c;
    c.add(Counter::datagrams_received, 10);
    c.add(Counter::segments_sent, 4);
    c.add(Counter::rejected_bad_header, 1);
    c.add(Counter::rejected_by_xray, 2);
    c.add(Counter::dropped_buffer_full, 1);
    c.add(Counter::upload_requests, 7);  // info: outside the identity
    const CounterSnapshot s = c.snapshot();
    CHECK(s.total(CounterKind::received) == 10);
    CHECK(s.total(CounterKind::sent) == 4);
    CHECK(s.total(CounterKind::rejected) == 3);
    CHECK(s.total(CounterKind::dropped) == 1);
    CHECK(accounting_balances(s, 2));
    CHECK_FALSE(accounting_balances(s, 1));
    CHECK_FALSE(accounting_balances(s, 3));
}

TEST_CASE("OTLP spans have an identity of their own, apart from the segments'") {
    Counters c;
    c.add(Counter::otlp_spans_received, 100);
    c.add(Counter::otlp_spans_sent, 60);
    c.add(Counter::otlp_spans_rejected_too_large, 5);
    c.add(Counter::otlp_spans_rejected_by_xray, 5);
    c.add(Counter::otlp_spans_dropped_buffer_full, 10);
    c.add(Counter::otlp_requests, 9);  // info
    const CounterSnapshot s = c.snapshot();
    CHECK(s.total(CounterKind::received) == 0);  // the segments' identity is untouched
    CHECK(s.total(CounterKind::rejected) == 0);
    CHECK(s.total(CounterKind::otlp_rejected) == 10);
    CHECK(otlp_accounting_balances(s, 20));
    CHECK_FALSE(otlp_accounting_balances(s, 19));
    CHECK(format_otlp_summary(s, 20) ==
          "otlp spans: received=100 sent=60 rejected=10 dropped=10 held=20");
    // Rejected and dropped OTLP counters name their reason after a fixed prefix (/metrics).
    for (const CounterInfo& info : counter_infos) {
        if (info.kind == CounterKind::otlp_rejected) {
            CHECK(info.name.starts_with("otlp_spans_rejected_"));
        }
        if (info.kind == CounterKind::otlp_dropped) {
            CHECK(info.name.starts_with("otlp_spans_dropped_"));
        }
    }
}

TEST_CASE("with a spool, the identity counts what it recovered in and what it holds out") {
    Counters c;
    c.add(Counter::datagrams_received, 10);
    c.add(Counter::spool_recovered, 5);  // found on disk at start: received by this run
    c.add(Counter::segments_sent, 8);
    c.add(Counter::dropped_spool_full, 2);
    c.add(Counter::spool_written, 6);  // info: where segments went, not an outcome
    const CounterSnapshot s = c.snapshot();
    CHECK(s.total(CounterKind::received) == 15);
    CHECK(accounting_balances(s, 1, 4));
    CHECK_FALSE(accounting_balances(s, 1, 3));
    const std::string line = format_summary(s, 1, 4);
    CHECK(line.rfind("received=15 sent=8 rejected=0 dropped=2 held=1 spooled=4 ", 0) == 0);
}

TEST_CASE("the summary line reports the identity and every declared counter") {
    Counters c;
    for (std::size_t i = 0; i < counter_count; ++i) {
        c.add(static_cast<Counter>(i), i + 1);
    }
    const CounterSnapshot snapshot = c.snapshot();
    const std::string line = format_summary(snapshot, 5);
    // received sums every counter of that kind: the datagrams and what the spool recovered.
    CHECK(line.rfind("received=" + std::to_string(snapshot.total(CounterKind::received)) + " sent=",
                     0) == 0);
    CHECK(line.find(" held=5 ") != std::string::npos);
    CHECK(line.find(" spooled=") == std::string::npos);  // no spool, no figure
    for (std::size_t i = 0; i < counter_count; ++i) {
        const std::string field =
            " " + std::string(counter_infos[i].name) + "=" + std::to_string(i + 1);
        CHECK_MESSAGE(line.find(field) != std::string::npos, field);
    }
}
