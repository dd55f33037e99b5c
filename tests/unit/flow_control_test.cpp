// Flow control: the pipeline's delivery hint, read by the receivers, and the pace it becomes.
#include <xrayd/flow/flow_control.h>

#include <doctest/doctest.h>

#include <chrono>

#include <xrayd/common/time.h>

namespace xrayd {
namespace {

class FixedPace final : public PaceSource {
public:
    explicit FixedPace(DeliveryPace pace) : pace_(pace) {}
    [[nodiscard]] DeliveryPace pace() const noexcept override { return pace_; }

private:
    DeliveryPace pace_;
};

}  // namespace

TEST_CASE("DeliveryHint: nothing is wanted before the consumer published a hint") {
    DeliveryHint hint;
    CHECK(hint.wanted(0, 1) == 0);
    CHECK(hint.hold() == Duration::zero());
}

TEST_CASE("DeliveryHint: what completes the open batch, less what is already queued") {
    DeliveryHint hint;
    hint.full.store(50);
    hint.room.store(50);
    hint.hold_limit.store(Duration(std::chrono::milliseconds(100)).count());
    CHECK(hint.wanted(0, 1) == 50);
    CHECK(hint.wanted(20, 1) == 30);
    CHECK(hint.hold() == std::chrono::milliseconds(100));
    // Queued past the open batch's room: the rest of the next whole batch.
    hint.room.store(20);
    CHECK(hint.wanted(20, 1) == 50);
    CHECK(hint.wanted(35, 1) == 35);
    // Shared by receivers: each gathers its share, rounded up.
    hint.room.store(50);
    CHECK(hint.wanted(0, 4) == 13);
}

TEST_CASE("DeliveryHint: the open batch's room wins over the whole-batch size while it lasts") {
    DeliveryHint hint;
    hint.full.store(50);
    hint.room.store(7);  // an open batch nearly full: 7 complete it, not 50
    CHECK(hint.wanted(0, 1) == 7);
    CHECK(hint.wanted(6, 1) == 1);
    CHECK(hint.wanted(7, 1) == 50);  // exactly completes it: the next whole batch
    hint.full.store(0);              // no batch size yet: no hint, whatever the room
    CHECK(hint.wanted(0, 1) == 0);
}

TEST_CASE("pace_of: no source means no pacing; a source's pace is passed through") {
    const DeliveryPace none = pace_of(nullptr);
    CHECK(none.wanted == 0);
    CHECK(none.hold_limit == Duration::zero());
    const FixedPace fixed(DeliveryPace{40, std::chrono::milliseconds(25)});
    const DeliveryPace got = pace_of(&fixed);
    CHECK(got.wanted == 40);
    CHECK(got.hold_limit == std::chrono::milliseconds(25));
}

}  // namespace xrayd
