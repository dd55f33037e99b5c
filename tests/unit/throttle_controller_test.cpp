// Tests of the ThrottleController: the AIMD limit on requests in flight, driven by hand.
#include <xrayd/upload/throttle_controller.h>

#include <doctest/doctest.h>

#include <chrono>

using namespace std::chrono_literals;

TEST_CASE("throttle controller halves per round of throttles, floors at 1 and grows back by 1 "
          "per N successes") {
    xrayd::ThrottleController c(8, 3);
    const xrayd::TimePoint t0{};
    CHECK(c.limit() == 8);
    CHECK_FALSE(c.throttling());
    CHECK(c.on_success() == xrayd::ThrottleEvent::none);  // calm: nothing changes

    CHECK(c.on_throttled(t0, t0 + 10ms) == xrayd::ThrottleEvent::started);
    CHECK(c.limit() == 4);
    CHECK(c.throttling());
    // Answers to requests sent before the halving are the same round trip: no second halving.
    CHECK(c.on_throttled(t0 + 1ms, t0 + 11ms) == xrayd::ThrottleEvent::none);
    CHECK(c.on_throttled(t0 + 9ms, t0 + 12ms) == xrayd::ThrottleEvent::none);
    CHECK(c.limit() == 4);
    // A request sent after it was throttled again: halve.
    CHECK(c.on_throttled(t0 + 10ms, t0 + 20ms) == xrayd::ThrottleEvent::none);
    CHECK(c.limit() == 2);
    CHECK(c.on_throttled(t0 + 25ms, t0 + 30ms) == xrayd::ThrottleEvent::none);
    CHECK(c.limit() == 1);
    CHECK(c.on_throttled(t0 + 35ms, t0 + 40ms) == xrayd::ThrottleEvent::none);
    CHECK(c.limit() == 1);  // floor
    CHECK(c.episode().throttled == 6);
    CHECK(c.episode().lowest_limit == 1);

    // +1 per 3 successes; a throttle in between restarts the count.
    CHECK(c.on_success() == xrayd::ThrottleEvent::none);
    CHECK(c.on_success() == xrayd::ThrottleEvent::none);
    CHECK(c.limit() == 1);
    CHECK(c.on_success() == xrayd::ThrottleEvent::none);
    CHECK(c.limit() == 2);
    int successes = 3;
    xrayd::ThrottleEvent event = xrayd::ThrottleEvent::none;
    while (event == xrayd::ThrottleEvent::none && successes < 100) {
        event = c.on_success();
        ++successes;
    }
    CHECK(event == xrayd::ThrottleEvent::ended);
    CHECK(successes == 3 * 7);  // from 1 to 8
    CHECK(c.limit() == 8);
    CHECK_FALSE(c.throttling());
    CHECK(c.episode().succeeded == 21);
    CHECK(c.limit() <= c.ceiling());
    // A new episode starts from the ceiling again.
    CHECK(c.on_throttled(t0 + 1s, t0 + 2s) == xrayd::ThrottleEvent::started);
    CHECK(c.limit() == 4);
    CHECK(c.episode().throttled == 1);
}

TEST_CASE("throttle controller with a ceiling of 1 starts and ends an episode without going "
          "below 1") {
    xrayd::ThrottleController c(1, 0);  // 0 successes per increase is taken as 1
    const xrayd::TimePoint t0{};
    CHECK(c.on_throttled(t0, t0 + 1ms) == xrayd::ThrottleEvent::started);
    CHECK(c.limit() == 1);
    CHECK(c.on_success() == xrayd::ThrottleEvent::ended);
    CHECK(c.limit() == 1);
}

TEST_CASE("throttle controller set_ceiling moves a calm limit at once and only caps a "
          "throttled one") {
    xrayd::ThrottleController c(8, 1);
    const xrayd::TimePoint t0{};
    c.set_ceiling(3);
    CHECK(c.ceiling() == 3);
    CHECK(c.limit() == 3);
    c.set_ceiling(12);
    CHECK(c.limit() == 12);
    c.set_ceiling(0);
    CHECK(c.ceiling() == 1);
    CHECK(c.limit() == 1);

    c.set_ceiling(8);
    CHECK(c.on_throttled(t0, t0 + 1ms) == xrayd::ThrottleEvent::started);
    CHECK(c.limit() == 4);
    c.set_ceiling(16);  // throttling: the limit stays and grows back to the new ceiling
    CHECK(c.limit() == 4);
    c.set_ceiling(2);
    CHECK(c.limit() == 2);
    CHECK(c.episode().lowest_limit == 2);
    CHECK(c.throttling());
    CHECK(c.on_success() == xrayd::ThrottleEvent::ended);
    CHECK(c.limit() == 2);
}
